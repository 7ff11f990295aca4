package actors

import (
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
}

func newLearnerActor(r *Replica) actor.Actor { return &learnerActor{r: r} }

func (a *learnerActor) Receive(ctx actor.Context) {
	l := a.r.learner
	now := time.Now()
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.proposer = a.r.pid(a.r.cfg.NodeID, ProposerName)
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
	}
}

func (a *learnerActor) handle(ctx actor.Context, out paxos.LearnerOutput) {
	if len(out.Records) > 0 {
		a.r.persistLazy(out.Records)
	}
	a.r.send(ctx, out.Messages)
	a.r.knownChosen.Store(a.r.learner.KnownChosen())
	if len(out.Apply) == 0 || a.r.stopped.Load() {
		return
	}
	self := a.r.cfg.NodeID
	for _, e := range out.Apply {
		results := a.r.applyEntry(e)
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
	a.r.publishProgress()
	ctx.Send(a.proposer, &learnerProgress{applied: a.r.learner.Contiguous()})
}
