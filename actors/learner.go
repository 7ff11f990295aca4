package actors

import (
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

type learnerTick struct{}

// learnerProgress tells the local proposer how far the log is applied.
type learnerProgress struct{ applied uint64 }

// learnerActor is the learner's shell: it applies chosen values to the state
// machine in order and answers the clients whose commands this node
// proposed.
type learnerActor struct {
	r        *Replica
	proposer *actor.PID
	stopTick func()
	tally    *paxos.ChecksumTally
}

func newLearnerActor(r *Replica) actor.Actor { return &learnerActor{r: r} }

func (a *learnerActor) Receive(ctx actor.Context) {
	l := a.r.learner
	now := time.Now()
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.proposer = a.r.pid(a.r.cfg.NodeID, ProposerName)
		a.tally = paxos.NewChecksumTally(a.r.cfg.NodeID, len(a.r.view().addrs), 16)
		a.stopTick = ticker(ctx.ActorSystem(), ctx.Self(), 2*a.r.cfg.TickInterval, learnerTick{})
	case *actor.Stopping:
		if a.stopTick != nil {
			a.stopTick()
		}
	case *learnMsg:
		a.handle(ctx, l.HandleLearn(m.entries))
	case *messages.Chosen:
		a.handle(ctx, l.HandleChosen(m, now))
	case *messages.CatchupRequest:
		a.handle(ctx, l.HandleCatchupRequest(m))
	case *messages.CatchupResponse:
		a.handle(ctx, l.HandleCatchupResponse(m, now))
	case learnerTick:
		a.handle(ctx, l.Tick(now))
	case *checksumDone:
		a.ownChecksum(ctx, m)
	case *messages.ChecksumReport:
		a.peerChecksum(m)
	case *beginSnapshot:
		a.beginSnapshot(ctx)
	case *snapshotTaken:
		l.SnapshotTaken(m.instance)
		ctx.Send(a.r.pid(a.r.cfg.NodeID, AcceptorName), &truncateLog{upto: l.SnapshotInstance()})
	case *installSnapshot:
		a.install(ctx, m, now)
	}
}

// beginSnapshot freezes the state machine between two instances (§5.5):
// the snapshotter writes it on a goroutine of its own while this actor
// goes on applying.
func (a *learnerActor) beginSnapshot(ctx actor.Context) {
	res := &snapshotBegun{}
	sm, ok := a.r.cfg.StateMachine.(Snapshotter)
	if !ok {
		res.err = errors.New("actors: the state machine cannot snapshot")
	} else {
		// The state machine may not have seen the last instances (no-ops
		// reach no state machine): the snapshot is as of the log.
		_, res.write, res.err = sm.BeginSnapshot()
		res.instance = a.r.learner.Contiguous()
		epoch, master := a.r.epochs.Epoch()
		res.meta = &messages.SnapshotMeta{Instance: res.instance, Epoch: epoch, EpochMaster: master}
		res.meta.Members = a.r.memberList()
		res.meta.MembershipVersion = a.r.view().version
	}
	ctx.Respond(res)
}

// install replaces the state machine with a peer's snapshot the
// snapshotter fetched and verified, if it is still ahead of this replica.
func (a *learnerActor) install(ctx actor.Context, m *installSnapshot, now time.Time) {
	l := a.r.learner
	if m.info.Instance <= l.Contiguous() {
		return
	}
	sm, ok := a.r.cfg.StateMachine.(Snapshotter)
	if !ok {
		return
	}
	meta, err := loadSnapshot(sm, m.info.Path)
	if err != nil {
		// Restore changed nothing: keep learning from the log.
		a.r.cfg.Logger.Warn("snapshot install failed", "node", a.r.cfg.NodeID, "err", err)
		return
	}
	a.r.epochs.Reset(meta.Epoch, meta.EpochMaster)
	a.r.publishEpoch()
	a.r.restoreMembership(meta)
	a.passOnMembership(ctx)
	a.r.installs.Add(1)
	a.r.snapshotAt.Store(m.info.Instance)
	a.r.cfg.Logger.Info("snapshot installed", "node", a.r.cfg.NodeID, "instance", m.info.Instance, "bytes", m.info.Bytes)
	out := l.InstallSnapshot(m.info.Instance, now)
	a.r.publishProgress()
	ctx.Send(a.proposer, &learnerProgress{applied: l.Contiguous()})
	ctx.Send(a.r.pid(a.r.cfg.NodeID, AcceptorName), &truncateLog{upto: m.info.Instance})
	a.handle(ctx, out)
}

func (a *learnerActor) handle(ctx actor.Context, out paxos.LearnerOutput) {
	if out.Violation != nil {
		a.r.fatal(out.Violation) // stop rather than spread bad state
		return
	}
	if len(out.Records) > 0 {
		a.r.persistLazy(out.Records)
	}
	a.r.send(ctx, out.Messages)
	if out.Install != nil {
		ctx.Send(a.r.pid(a.r.cfg.NodeID, SnapshotterName), &installFrom{peer: out.Install.From, instance: out.Install.Instance})
	}
	if len(out.Apply) == 0 || a.r.stopped.Load() {
		a.r.knownChosen.Store(a.r.learner.KnownChosen())
		a.r.noteBehind()
		return
	}
	self := a.r.cfg.NodeID
	for _, e := range out.Apply {
		results := a.r.applyEntry(e)
		if e.Value.GetChecksum() {
			a.startChecksum(ctx, e.Instance)
		}
		for i, res := range results {
			cmd := e.Value.Commands[i]
			if cmd.Origin != self || cmd.ReplyAddress == "" {
				continue
			}
			var resp *messages.ClientResponse
			switch {
			case res.refused:
				resp = paxos.MasterChanged(cmd, e.Instance)
			default:
				resp = &messages.ClientResponse{RequestId: cmd.RequestId, Result: res.result, Instance: e.Instance,
					Epoch: a.r.epoch.Load()}
				if res.err != nil {
					resp.Code, resp.Error = messages.ErrorCode_ERROR_CODE_INVALID, res.err.Error()
				}
			}
			ctx.Send(actor.NewPID(cmd.ReplyAddress, cmd.ReplyId), resp)
		}
	}
	a.passOnMembership(ctx)
	a.r.publishProgress()
	ctx.Send(a.proposer, &learnerProgress{applied: a.r.learner.Contiguous()})
}

// passOnMembership tells the proposer the learners of a membership just
// applied (§5.4): it sends them the log from then on.
func (a *learnerActor) passOnMembership(ctx actor.Context) {
	if !a.r.membersChanged {
		return
	}
	a.r.membersChanged = false
	a.r.learner.SetPeers(a.r.view().ids())
	ctx.Send(a.proposer, &membershipApplied{members: a.r.view().membership(), at: a.r.membersAt})
}

// membershipApplied carries the membership now in force, and the instance
// it was applied at, to the proposer actor.
type membershipApplied struct {
	members *messages.Membership
	at      uint64
}
