package core

import (
	"fmt"
	"math"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// Replica is the deterministic replica core (see the package comment).
// It is single-threaded: one goroutine at a time calls it. Create it with
// New, replay the durable state (RestoreSnapshot, Restore), call
// FinishRestore once, and from then on feed it inputs and drain Ready.
type Replica struct {
	cfg Config
	id  uint32
	p   *paxos.Proposer // nil until FinishRestore
	a   *paxos.Acceptor
	l   *paxos.Learner
	rd  Ready

	// The gate of "durable before visible" (ready.go): records handed out
	// so far, the last one that needs an fsync, what is durable, and the
	// acceptor answers waiting for it.
	handed, lastSync, durable uint64
	held                      []held
	// local holds messages from this replica to itself, delivered after
	// the step that sent them.
	local []proto.Message
	// logBytes counts the bytes of records handed out, for the snapshot
	// policy.
	logBytes uint64

	// The apply side (apply.go): the epoch as the log is applied, the
	// last instance handed to the state machine, the commands whose
	// results are awaited, and the membership in force.
	epochs    paxos.EpochTracker
	applied   uint64
	awaiting  []awaited
	members   *messages.Membership
	membersAt uint64
	// history remembers, since the last snapshot, where the epoch or the
	// membership changed, so a snapshot can be described as of an
	// earlier instance (snapshot.go).
	history []mark

	checks checkState
	snap   snapState
	// truncated is how far the log is let go of, once the checkpoint
	// (checkpointUpto, written up to record checkpointAt) is durable.
	truncated, checkpointUpto, checkpointAt uint64

	// behindSince is since when the learner has lacked instances it knew
	// were chosen then (status: catching up).
	behindSince  time.Time
	behindTarget uint64

	// drops counts peer messages refused before any role saw them
	// (admit.go).
	drops map[DropReason]uint64
	// catchupLimits bound the catch-up requests served per member, and
	// (at key 0) to all non-members together.
	catchupLimits map[uint32]*rate.Limiter
	// droppedLogged is when a drop of each reason was last logged.
	droppedLogged map[DropReason]time.Time

	// diskLow: the shell found the data directory's free space under its
	// bound (SetDiskLow); a master refuses new commands meanwhile.
	diskLow bool

	lastNow time.Time
	stopped bool
	failure error
}

// New returns a replica core with nothing restored. Call FinishRestore
// before any other input.
func New(cfg Config) (*Replica, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	r := &Replica{cfg: cfg, id: cfg.ID, members: cfg.Members}
	r.a = paxos.NewAcceptor(cfg.ID)
	r.a.Plant(cfg.Planted)
	r.a.SetMaxPromiseBytes(cfg.MaxPromiseBytes)
	r.a.SetIncarnation(cfg.Incarnation, cfg.Fresh)
	r.a.SetRebuilt(cfg.Rebuilt)
	r.a.SetBootstrap(cfg.Bootstrap)
	r.l = paxos.NewLearner(cfg.Learner)
	r.epochs.Plant(cfg.Planted)
	r.history = []mark{{members: cfg.Members}}
	return r, nil
}

// ID returns this replica's node id.
func (r *Replica) ID() uint32 { return r.id }

// Ready returns what the inputs since the last call ask the shell to do,
// and forgets it.
func (r *Replica) Ready() Ready {
	rd := r.rd
	r.rd = Ready{}
	return rd
}

// HasReady reports whether Ready has something to do.
func (r *Replica) HasReady() bool {
	rd := &r.rd
	return rd.Prove != nil || len(rd.Writes) > 0 || len(rd.Messages) > 0 || len(rd.Apply) > 0 || len(rd.Reads) > 0 ||
		len(rd.Replies) > 0 || len(rd.Answers) > 0 || rd.Snapshot != nil || rd.Fetch != nil || rd.Flush || rd.Fatal != nil ||
		len(rd.Committed) > 0
}

// input runs one input at now: the step, then whatever it sent this
// replica itself, then a flush if nothing is in flight to batch with.
func (r *Replica) input(now time.Time, step func()) {
	if r.stopped || r.p == nil {
		return
	}
	r.lastNow = now
	step()
	r.drain(now)
	if r.stopped {
		return
	}
	if r.p.NeedsFlush() {
		if r.p.InflightLen() == 0 {
			// Nothing in flight, so nothing to batch with: propose (or
			// send the chosen notice) now.
			r.proposerOut(r.p.Flush(now), now)
			r.drain(now)
		}
		r.rd.Flush = r.rd.Flush || r.p.NeedsFlush()
	}
	r.noteBehind(now)
}

// maxLocalSteps bounds the messages a replica sends itself in one input:
// more is a loop, a broken invariant.
const maxLocalSteps = 1 << 16

// drain delivers the messages this replica sent itself, in order.
func (r *Replica) drain(now time.Time) {
	for n := 0; len(r.local) > 0 && !r.stopped; n++ {
		if n > maxLocalSteps {
			r.fail(fmt.Errorf("%w: more than %d messages to itself in one step", paxos.ErrInvariant, maxLocalSteps))
			return
		}
		msg := r.local[0]
		r.local[0] = nil
		r.local = r.local[1:]
		r.step(msg, now)
	}
	r.local = nil
}

// Step takes one protocol message from a peer. A message from outside
// the group, or with a field out of bounds, is dropped and counted
// (admit); one of a kind no role takes is ignored.
func (r *Replica) Step(msg proto.Message, now time.Time) {
	r.input(now, func() {
		if why := r.admit(msg, now); why != "" {
			r.dropped(msg, why, now)
			return
		}
		r.step(msg, now)
	})
}

func (r *Replica) step(msg proto.Message, now time.Time) {
	switch m := msg.(type) {
	case *messages.Prepare:
		out := r.a.HandlePrepare(m, now)
		if supportsCampaign(r.id, m, out.Reply) {
			r.p.NoteCampaign(m.From, m.Ballot, now)
		}
		r.acceptorOut(out, now)
	case *messages.Accept:
		r.acceptorOut(r.a.HandleAccept(m, now), now)
	case *messages.Confirm:
		// Answered at once, whatever is unsynced: it reports promises,
		// and a promise is durable before it leaves, so one that counts
		// towards another master's majority is in memory already.
		out := r.a.HandleConfirm(m)
		r.prove(out)
		if out.Reply != nil {
			r.route(*out.Reply)
		}
	case *messages.Promise:
		r.l.NoteChosenAt(m.ChosenUpto, m.From, now)
		r.proposerOut(r.p.Step(msg, now), now)
	case *messages.Accepted, *messages.Heartbeat, *messages.Confirmed, *messages.Handover, *messages.Leaving,
		*messages.PreVote, *messages.PreVoted:
		r.proposerOut(r.p.Step(msg, now), now)
	case *messages.Chosen:
		r.learnerOut(r.l.HandleChosen(m, now), now)
	case *messages.CatchupRequest:
		r.learnerOut(r.l.HandleCatchupRequest(m), now)
	case *messages.CatchupResponse:
		r.learnerOut(r.l.HandleCatchupResponse(m, now), now)
	case *messages.ChecksumReport:
		r.peerChecksum(m)
	}
}

// supportsCampaign reports whether node self's acceptor answered another node's
// Prepare as one it would take part in: promised, or refused only because
// it still holds a lease it granted (which ends by itself). A campaign it
// refused for anything else (a lower ballot, a candidate behind its log's
// truncation, a stranger) is no reason for its proposer to hold back: a
// candidate that cannot win here must not keep the others from electing
// anyone while it catches up (paxos.Proposer.NoteCampaign).
func supportsCampaign(self uint32, m *messages.Prepare, reply *paxos.Envelope) bool {
	if m.From == self || reply == nil {
		return false
	}
	pr, ok := reply.Msg.(*messages.Promise)
	return ok && (pr.Ok || pr.Leased && pr.Promised < m.Ballot && pr.Truncated < max(m.FirstInstance, 1))
}

// Tick drives the timers: elections, retransmission, heartbeats, boosts,
// reads that waited too long, catch-up, and the snapshot policy.
func (r *Replica) Tick(now time.Time) {
	r.input(now, func() {
		r.proposerOut(r.p.Tick(now), now)
		r.learnerOut(r.l.Tick(now), now)
		r.maybeSnapshot(now)
	})
}

// Flush proposes the queued commands into free pipeline slots, one batch
// per instance, and sends a chosen notice if the chosen prefix moved.
func (r *Replica) Flush(now time.Time) {
	r.input(now, func() { r.proposerOut(r.p.Flush(now), now) })
}

// Propose submits a client command. Its answer comes in Ready.Replies of
// this call or a later one, routed by cmd.ReplyAddress and ReplyId; Origin
// is set to this replica. A replica that is not master refuses it at once.
func (r *Replica) Propose(cmd *messages.Command, now time.Time) {
	if r.stopped || r.p == nil {
		r.refuse(cmd, messages.ErrorCode_ERROR_CODE_NOT_MASTER, "replica stopped")
		return
	}
	cmd.Origin = r.id
	if r.diskLow && !cmd.Membership && r.p.IsMaster() {
		// Its log cannot be trusted to grow: take nothing new rather than
		// stop at the next segment (a membership change, which may replace
		// this node, still goes through). Non-masters answer "not master".
		r.refuse(cmd, messages.ErrorCode_ERROR_CODE_NO_SPACE,
			"no space: the master's disk is nearly full; writes resume once space is freed (reads go on)")
		return
	}
	// The master's clock is the state machine's time (lock-delay): in the
	// log, so every replica applies with the same.
	cmd.ProposedMs = now.UnixMilli()
	r.input(now, func() { r.proposerOut(r.p.Submit(cmd), now) })
}

// SetDiskLow tells the replica whether its disk is nearly full. While it
// is, a master refuses client commands with NO_SPACE: the node keeps
// serving reads, status and snapshots, and voting on what others propose,
// instead of failing on a full log.
func (r *Replica) SetDiskLow(low bool) {
	if low != r.diskLow {
		r.cfg.Logger.Warn("disk space", "node", r.id, "low", low)
	}
	r.diskLow = low
}

// DiskLow reports what SetDiskLow last said.
func (r *Replica) DiskLow() bool { return r.diskLow }

// refuse answers cmd at once with code.
func (r *Replica) refuse(cmd *messages.Command, code messages.ErrorCode, why string) {
	r.reply(Reply{Cmd: cmd, Response: &messages.ClientResponse{RequestId: cmd.RequestId, Code: code, Error: why}})
}

// proposerOut carries out what a proposer step asked for.
func (r *Replica) proposerOut(out paxos.ProposerOutput, now time.Time) {
	for _, env := range out.Messages {
		r.route(env)
	}
	if out.ReleaseLease {
		r.a.ReleaseLease(r.id, math.MaxUint64)
	}
	if out.Resigned != 0 {
		r.a.ReleaseLease(out.Resigned, out.ResignedBallot)
	}
	for _, rep := range out.Replies {
		r.reply(Reply{Cmd: rep.Cmd, Response: rep.Response})
	}
	for _, rd := range out.Reads {
		r.confirmed(rd, now)
	}
	r.checksProposed(out.Checks)
	r.rd.Committed = append(r.rd.Committed, out.Committed...)
}

// acceptorOut carries out what an acceptor step asked for: its records are
// handed out and its answer waits for them (hold).
func (r *Replica) acceptorOut(out paxos.AcceptorOutput, now time.Time) {
	r.prove(out)
	if out.Reply != nil && r.cfg.Observer != nil {
		r.cfg.Observer.Answered(*out.Reply)
	}
	if out.Lazy {
		// A lazy accept: nobody counts it, so it waits for no fsync.
		r.write(out.Records, WriteLazy)
		if len(out.Learn) > 0 {
			r.learnerOut(r.l.HandleLearn(out.Learn), now)
		}
		return
	}
	r.write(out.Records, WriteSync)
	r.hold(held{barrier: r.lastSync, reply: out.Reply, learn: out.Learn}, now)
}

// prove notes that the acceptor is no longer fresh (§5.1): the identity
// file is rewritten (Ready.Prove) before anything of this batch, and the
// proposer may campaign.
func (r *Replica) prove(out paxos.AcceptorOutput) {
	if !out.Proven {
		return
	}
	r.rd.Prove = &Prove{Bootstrap: r.a.Bootstrap()}
	if r.p != nil {
		r.p.AcceptorProven()
	}
}

// learnerOut carries out what a learner step asked for: its records are
// lazy (a chosen value can be learned again from a majority), its
// messages leave at once, and what it hands out is applied in order.
func (r *Replica) learnerOut(out paxos.LearnerOutput, now time.Time) {
	if out.Violation != nil {
		r.fail(out.Violation) // stop rather than spread bad state
		return
	}
	r.write(out.Records, WriteLazy)
	for _, env := range out.Messages {
		r.route(env)
	}
	if o := out.Install; o != nil && o.Instance > r.applied {
		r.rd.Fetch = o
	}
	for _, e := range out.Apply {
		r.apply(e, true, now)
		if r.stopped {
			return
		}
	}
	if len(out.Apply) > 0 && r.p != nil {
		r.proposerOut(r.p.LearnerApplied(r.l.Contiguous(), now), now)
	}
}

// fail stops the replica: nothing more is sent, proposed or applied.
func (r *Replica) fail(err error) {
	if r.stopped {
		return
	}
	r.stopped, r.failure = true, err
	r.rd.Fatal = err
	r.held, r.local = nil, nil
	r.cfg.Logger.Error("replica stopped", "node", r.id, "err", err)
}

// Stop stops the replica from the outside (the shell's log failed): it
// serves nothing from now on.
func (r *Replica) Stop(err error) { r.fail(err) }

// Stopped returns why the replica stopped, nil while it runs.
func (r *Replica) Stopped() error { return r.failure }

// noteBehind keeps behindSince: since when the learner has lacked
// instances it knew were chosen then. Under load a follower is always a
// few instances behind the newest notice; what counts is whether it
// reaches, in time, what was chosen when it last looked.
func (r *Replica) noteBehind(now time.Time) {
	applied, known := r.l.Contiguous(), r.l.KnownChosen()
	if !r.behindSince.IsZero() && applied < r.behindTarget {
		return // still short of the earlier target
	}
	if applied >= known {
		r.behindSince = time.Time{}
		return
	}
	r.behindTarget, r.behindSince = known, now
}

// Leave tells every other member that this replica is about to stop on
// purpose (after handing mastership over, if it had it): a master stops
// waiting on it at once (paxos.Proposer.Leave).
func (r *Replica) Leave(now time.Time) {
	r.input(now, func() { r.proposerOut(r.p.Leave(), now) })
}

// TransferMastership starts handing this master's mastership to voter to
// (0: the most caught-up voter; see paxos/handover.go): commands and reads
// are refused as not master from now on, and once what is in flight is
// chosen (a later Tick) the successor is told to campaign at once. It
// fails with paxos.ErrNoSuccessor when this replica is not master or no
// voter can take over.
func (r *Replica) TransferMastership(to uint32, now time.Time) error {
	if r.stopped || r.p == nil {
		return fmt.Errorf("%w: replica stopped", paxos.ErrNoSuccessor)
	}
	var err error
	r.input(now, func() {
		var out paxos.ProposerOutput
		out, err = r.p.TransferMastership(to, now)
		r.proposerOut(out, now)
	})
	return err
}
