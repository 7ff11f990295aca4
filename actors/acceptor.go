package actors

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// learnMsg carries entries the local acceptor has made durable to the local
// learner. It never leaves the process.
type learnMsg struct{ entries []*messages.Entry }

// acceptorActor is the acceptor's shell. Its one rule: records reach the
// disk before the reply leaves (Replica.persist orders that).
type acceptorActor struct {
	r *Replica
	// root sends from the log's goroutine, through the configured sender
	// middleware if any.
	root    *actor.RootContext
	learner *actor.PID
}

func newAcceptorActor(r *Replica) actor.Actor { return &acceptorActor{r: r} }

func (a *acceptorActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.root = a.r.rootContext(ctx.ActorSystem())
		a.learner = a.r.pid(a.r.cfg.NodeID, LearnerName)
	case *messages.Prepare:
		a.handle(a.r.acceptor.HandlePrepare(m, time.Now()))
	case *messages.Accept:
		a.handle(a.r.acceptor.HandleAccept(m, time.Now()))
	case *releaseLease:
		a.r.acceptor.ReleaseLease(a.r.cfg.NodeID)
	case *truncateLog:
		a.truncate(m.upto)
	case *messages.Confirm:
		// Nothing to persist: the answer reports state already on disk.
		out := a.r.acceptor.HandleConfirm(m)
		a.proven(out)
		a.r.send(ctx, []paxos.Envelope{*out.Reply})
	}
}

// proven records durably, before any answer leaves, that this data
// directory's acceptor has been asked for a vote under its own incarnation
// (§5.1): it is no longer fresh. Once per directory.
func (a *acceptorActor) proven(out paxos.AcceptorOutput) {
	if !out.Proven {
		return
	}
	if err := markProven(a.r.cfg.DataDir, a.r.acceptor.Bootstrap()); err != nil {
		a.r.fatal(fmt.Errorf("actors: recording the incarnation as proven: %w", err))
		return
	}
	a.root.Send(a.r.pid(a.r.cfg.NodeID, ProposerName), &acceptorProven{})
}

// acceptorProven tells the proposer actor that its acceptor is no longer
// fresh (paxos.Proposer.AcceptorProven).
type acceptorProven struct{}

func (a *acceptorActor) handle(out paxos.AcceptorOutput) {
	a.proven(out)
	if out.Lazy {
		// A lazy accept: nobody counts it, so it waits for no fsync.
		a.r.persistLazy(out.Records)
		if len(out.Learn) > 0 {
			a.root.Send(a.learner, &learnMsg{entries: out.Learn})
		}
		return
	}
	a.r.persist(out.Records, func() {
		root := a.root
		if out.Reply != nil {
			a.r.send(root, []paxos.Envelope{*out.Reply})
		}
		if len(out.Learn) > 0 {
			root.Send(a.learner, &learnMsg{entries: out.Learn})
		}
	})
}

// truncateLog asks the acceptor actor to let go of the log up to upto, which
// a durable snapshot covers (§5.5).
type truncateLog struct{ upto uint64 }

// truncate writes the acceptor's checkpoint above upto; once it is durable
// the log segments before it are deleted. Running on the acceptor actor
// orders it after every record the acceptor appended before it.
func (a *acceptorActor) truncate(upto uint64) {
	if upto <= a.r.acceptor.Truncated() {
		return
	}
	bufs, ok := a.r.encode(a.r.acceptor.Truncate(upto))
	if !ok {
		return
	}
	a.r.unsynced.Add(1)
	a.r.wal.Checkpoint(bufs, func(err error) {
		a.r.unsynced.Add(-1)
		if err != nil {
			a.r.fatal(err)
			return
		}
		a.r.truncated.Store(upto)
	})
}
