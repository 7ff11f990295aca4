package actors

import (
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// ErrTooLarge marks a command refused for its size. A ValidateCommand
// error that wraps it reaches the client as ERROR_CODE_TOO_LARGE.
var ErrTooLarge = errors.New("too large")

type proposerTick struct{}

// flushMsg is what the proposer sends itself to batch: it arrives after
// every request already in the mailbox, so one flush proposes them together.
type flushMsg struct{}

// proposerActor is the proposer's shell. It takes client requests, runs the
// timers, and batches proposals by flushing once per mailbox drain.
type proposerActor struct {
	r         *Replica
	stopTick  func()
	flushSent bool
	lease     *actor.PID
	published leaseUpdate // what the lease manager was last told
	// checkWaiters asked for a consistency check; answered with the
	// checksum value's instance once it is proposed.
	checkWaiters []checkWaiter
}

type checkWaiter struct {
	pid *actor.PID
	id  uint64
}

func newProposerActor(r *Replica) actor.Actor { return &proposerActor{r: r} }

func (a *proposerActor) Receive(ctx actor.Context) {
	p := a.r.proposer
	now := time.Now()
	var out paxos.ProposerOutput
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.stopTick = ticker(ctx.ActorSystem(), ctx.Self(), a.r.cfg.TickInterval, proposerTick{})
		a.lease = a.r.pid(a.r.cfg.NodeID, LeaseName)
	case *actor.Stopping:
		if a.stopTick != nil {
			a.stopTick()
		}
	case *messages.ClientRequest:
		a.submit(ctx, m)
	case *messages.StatusRequest:
		ctx.Respond(a.status())
	case *messages.MembersRequest:
		a.changeMembers(ctx, m)
	case *acceptorProven:
		p.AcceptorProven()
		return
	case *membershipApplied:
		a.emit(ctx, p.MembershipApplied(m.members, m.at, time.Now()))
		return
	case *messages.CheckRequest:
		if ctx.Sender() == nil {
			return
		}
		if !p.RequestCheck() {
			ctx.Respond(&messages.CheckResponse{RequestId: m.RequestId, Error: "not master"})
			return
		}
		a.checkWaiters = append(a.checkWaiters, checkWaiter{pid: ctx.Sender(), id: m.RequestId})
	case *messages.Promise, *messages.Accepted, *messages.Heartbeat, *messages.Confirmed:
		out = p.Step(m.(proto.Message), now)
	case *quorumRead:
		out = p.Read(m.id, now)
	case proposerTick:
		out = p.Tick(now)
	case flushMsg:
		a.flushSent = false
		out = p.Flush(now)
	case *learnerProgress:
		out = p.LearnerApplied(m.applied, now)
	default:
		return
	}
	a.emit(ctx, out)
	switch {
	case !p.NeedsFlush() || a.flushSent:
	case p.InflightLen() == 0:
		// Nothing in flight, so nothing to batch with: propose (or send the
		// chosen notice) now rather than after a trip through the mailbox.
		a.emit(ctx, p.Flush(now))
	default:
		a.flushSent = true
		ctx.Send(ctx.Self(), flushMsg{})
	}
	a.publishLease(ctx, now)
	a.r.status.Store(a.status())
}

// publishLease tells the lease manager when the lease or mastership moved.
func (a *proposerActor) publishLease(ctx actor.Context, now time.Time) {
	p := a.r.proposer
	until, _ := p.LeaseUntil(now)
	u := leaseUpdate{until: until, master: p.IsMaster(), masterID: p.MasterID()}
	if u != a.published {
		a.published = u
		a.r.lease.Store(&u)
		ctx.Send(a.lease, &u)
	}
}

// changeMembers turns a membership request into a membership command
// carrying the whole next configuration (§5.4); it goes through the log
// like any command and is answered when applied.
func (a *proposerActor) changeMembers(ctx actor.Context, m *messages.MembersRequest) {
	sender := ctx.Sender()
	if sender == nil {
		return
	}
	cmd := &messages.Command{Origin: a.r.cfg.NodeID, ReplyAddress: sender.Address, ReplyId: sender.Id,
		RequestId: m.RequestId, Membership: true}
	next, err := a.r.view().changed(m)
	if err == nil {
		cmd.Payload, err = proto.Marshal(next)
	}
	if err != nil {
		a.reply(ctx, paxos.Reply{Cmd: cmd, Response: &messages.ClientResponse{
			RequestId: m.RequestId, Code: messages.ErrorCode_ERROR_CODE_INVALID, Error: err.Error()}})
		return
	}
	a.emit(ctx, a.r.proposer.Submit(cmd))
}

// submit checks a client request and hands it to the role logic.
func (a *proposerActor) submit(ctx actor.Context, m *messages.ClientRequest) {
	sender := ctx.Sender()
	if sender == nil {
		return // nobody to answer, and an unanswerable write helps nobody
	}
	cmd := &messages.Command{Origin: a.r.cfg.NodeID, ReplyAddress: sender.Address,
		ReplyId: sender.Id, RequestId: m.RequestId, Payload: m.Command}
	refuse := func(code messages.ErrorCode, err error) {
		a.reply(ctx, paxos.Reply{Cmd: cmd, Response: &messages.ClientResponse{
			RequestId: m.RequestId, Code: code, Error: err.Error()}})
	}
	switch {
	case a.r.stopped.Load():
		refuse(messages.ErrorCode_ERROR_CODE_NOT_MASTER, errors.New("replica stopped"))
		return
	case len(m.Command) > a.r.cfg.MaxCommandBytes:
		refuse(messages.ErrorCode_ERROR_CODE_TOO_LARGE, fmt.Errorf("command is %d bytes, limit %d",
			len(m.Command), a.r.cfg.MaxCommandBytes))
		return
	}
	if v := a.r.cfg.ValidateCommand; v != nil {
		if err := v(m.Command); err != nil {
			code := messages.ErrorCode_ERROR_CODE_INVALID
			if errors.Is(err, ErrTooLarge) {
				code = messages.ErrorCode_ERROR_CODE_TOO_LARGE
			}
			refuse(code, err)
			return
		}
	}
	a.emit(ctx, a.r.proposer.Submit(cmd))
}

func (a *proposerActor) emit(ctx actor.Context, out paxos.ProposerOutput) {
	a.r.send(ctx, out.Messages)
	for _, rep := range out.Replies {
		a.reply(ctx, rep)
	}
	for _, rd := range out.Reads {
		ctx.Send(a.lease, &readReady{id: rd.ID, code: rd.Code, err: rd.Err})
	}
	if out.ReleaseLease {
		ctx.Send(a.r.pid(a.r.cfg.NodeID, AcceptorName), &releaseLease{})
	}
	if len(out.Checks) > 0 {
		for _, w := range a.checkWaiters {
			ctx.Send(w.pid, &messages.CheckResponse{RequestId: w.id, Instance: out.Checks[0]})
		}
		a.checkWaiters = nil
	}
	if len(a.checkWaiters) > 0 && !a.r.proposer.IsMaster() {
		for _, w := range a.checkWaiters {
			ctx.Send(w.pid, &messages.CheckResponse{RequestId: w.id, Error: "mastership lost"})
		}
		a.checkWaiters = nil
	}
}

// releaseLease tells the local acceptor that this node stepped down with
// no lease left to serve reads on (paxos.ProposerOutput.ReleaseLease).
type releaseLease struct{}

func (a *proposerActor) reply(ctx actor.Context, rep paxos.Reply) {
	if rep.Cmd.ReplyAddress == "" {
		return
	}
	resp := rep.Response
	if resp.MasterId == 0 {
		resp.MasterId = a.r.proposer.MasterID()
	}
	resp.MasterAddress = a.r.view().addrs[resp.MasterId]
	ctx.Send(actor.NewPID(rep.Cmd.ReplyAddress, rep.Cmd.ReplyId), resp)
}

func (a *proposerActor) status() *messages.StatusResponse {
	p := a.r.proposer
	s := &messages.StatusResponse{
		NodeId:              a.r.cfg.NodeID,
		Address:             a.r.cfg.Address(),
		IsMaster:            p.IsMaster() && !a.r.stopped.Load(),
		MasterId:            p.MasterID(),
		MasterAddress:       a.r.view().addrs[p.MasterID()],
		ClientAddress:       a.r.cfg.ClientAddress,
		MasterClientAddress: a.r.view().clients[p.MasterID()],
		Ballot:              p.Ballot(),
		LastChosen:          p.ChosenUpto(),
		LastApplied:         p.Applied(),
		ClusterId:           a.r.cfg.ClusterID,
		Epoch:               a.r.epoch.Load(),
		EpochMaster:         a.r.epochMaster.Load(),
		Boosts:              p.Stats().Boosts,
		BoostedInstances:    p.Stats().Boosted,
		ProposedInstances:   p.Stats().Proposed,
		CheckedInstance:     a.r.checkedInstance.Load(),
		Checks:              a.r.checks.Load(),
		Divergence:          a.r.divergenceText(),
		CatchingUp:          a.r.catchingUp(),
		Role:                a.r.role(),
		MembershipVersion:   a.r.view().version,
		SnapshotInstance:    a.r.snapshotAt.Load(),
		LogTruncated:        a.r.truncated.Load(),
		LogSegments:         a.r.wal.Stats().Segments,
		Snapshots:           a.r.snapshots.Load(),
		Installs:            a.r.installs.Load(),
	}
	if until, ok := p.LeaseUntil(time.Now()); ok {
		s.LeaseRemainingUs = time.Until(until).Microseconds()
	}
	s.Members = a.r.memberList()
	return s
}
