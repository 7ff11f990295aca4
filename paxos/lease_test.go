package paxos

import (
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/messages"
)

// §5.2: while an acceptor's grant to the master holds, it refuses a
// prepare from any other proposer, whatever its ballot; once the grant
// has run out it promises.
func TestPaper5_2_LeaseBlocksOtherProposers(t *testing.T) {
	a := NewAcceptor(1)
	a.StartLease(testLease, t0)
	master := NextBallot(0, 2)
	a.HandleAccept(&messages.Accept{From: 2, Ballot: master, Entries: []*messages.Entry{{Instance: 1, Value: value("x")}}}, t0)
	rival := NextBallot(master, 3)
	out := a.HandlePrepare(&messages.Prepare{From: 3, Ballot: rival, FirstInstance: 1}, t0.Add(testLease-time.Millisecond))
	if pr := out.Reply.Msg.(*messages.Promise); pr.Ok || !pr.Leased || len(out.Records) != 0 {
		t.Fatalf("prepare from another proposer during the lease: %v (records %d); want a refusal for the lease", pr, len(out.Records))
	}
	// The lease holder itself may raise its ballot (the ballot boost).
	boost := NextBallot(rival, 2)
	if pr := a.HandlePrepare(&messages.Prepare{From: 2, Ballot: boost, FirstInstance: 1}, t0.Add(time.Millisecond)).Reply.Msg.(*messages.Promise); !pr.Ok {
		t.Fatalf("the lease holder's own higher prepare was refused: %v", pr)
	}
	later := NextBallot(boost, 3)
	if pr := a.HandlePrepare(&messages.Prepare{From: 3, Ballot: later, FirstInstance: 1}, t0.Add(testLease)).Reply.Msg.(*messages.Promise); !pr.Ok {
		t.Fatalf("prepare after the lease ran out: %v, want a promise", pr)
	}
}

// §5.2: a candidate deposed before its acceptances reached anyone but its
// own acceptor held no lease it could serve reads on; it tells its own
// acceptor to drop the grant, so a rival does not wait a lease timeout
// for it (fail-overs of two lease timeouts seen in CI).
func TestPaper5_2_DeposedCandidateReleasesItsOwnLease(t *testing.T) {
	p := NewProposer(ProposerConfig{ID: 2, Peers: []uint32{1, 2, 3}, LeaseTimeout: testLease}, t0)
	own := NewAcceptor(2)
	own.StartLease(testLease, t0)
	other := NewAcceptor(3)
	other.StartLease(testLease, t0)
	now := t0.Add(testLease) // the old master's grants have run out
	now = now.Add(10 * time.Second)
	prepare := prepareOf(p.Tick(now))
	if prepare == nil {
		t.Fatal("no campaign")
	}
	for _, a := range []*Acceptor{own, other} {
		p.Step(a.HandlePrepare(prepare, now).Reply.Msg, now)
	}
	if !p.IsMaster() {
		t.Fatal("not master after two promises")
	}
	// Its epoch start reaches its own acceptor (which grants it the
	// lease); a rival's higher prepare reaches the other first.
	var accept *messages.Accept
	for _, e := range p.Tick(now).Messages {
		if m, ok := e.Msg.(*messages.Accept); ok && e.To == 2 {
			accept = m
		}
	}
	if accept == nil {
		// becomeMaster sent it; ask again through a retransmission.
		out := p.Tick(now.Add(time.Second))
		for _, e := range out.Messages {
			if m, ok := e.Msg.(*messages.Accept); ok && e.To == 2 {
				accept = m
			}
		}
	}
	if accept == nil {
		t.Fatal("no accept for the own acceptor")
	}
	p.Step(own.HandleAccept(accept, now).Reply.Msg, now)
	if own.LeaseHolder(now) != 2 {
		t.Fatal("the own acceptor granted no lease")
	}
	rival := &messages.Prepare{From: 3, Ballot: NextBallot(p.Ballot(), 3), FirstInstance: 1}
	other.HandlePrepare(rival, now)
	refusal := other.HandleAccept(accept, now).Reply.Msg
	out := p.Step(refusal, now)
	if p.IsMaster() || !out.ReleaseLease {
		t.Fatalf("after a higher ballot's refusal: master %v, release %v", p.IsMaster(), out.ReleaseLease)
	}
	own.ReleaseLease(2)
	if pr := own.HandlePrepare(rival, now).Reply.Msg.(*messages.Promise); !pr.Ok {
		t.Fatalf("the rival's prepare after the release: %v", pr)
	}
}

// §5.2 with a handover: a Prepare naming the ballot its master handed
// mastership over under releases a grant made under that ballot or below,
// but never one of a later mastership of the same node (a delayed Prepare
// must not strip a lease the old master holds again).
func TestPaper5_2_HandoverReleasesOnlyTheGrantHandedOver(t *testing.T) {
	master := NextBallot(0, 2)
	successor := NextBallot(master, 3)
	accept := func(a *Acceptor, b uint64, inst uint64) {
		a.HandleAccept(&messages.Accept{From: BallotOwner(b), Ballot: b, Entries: []*messages.Entry{{Instance: inst, Value: value("x")}}}, t0)
	}
	a := NewAcceptor(1)
	a.StartLease(testLease, t0)
	accept(a, master, 1)
	pr := a.HandlePrepare(&messages.Prepare{From: 3, Ballot: successor, FirstInstance: 1, HandoverBallot: master}, t0.Add(time.Millisecond)).Reply.Msg.(*messages.Promise)
	if !pr.Ok {
		t.Fatalf("the successor's prepare naming the handover: %v, want a promise at once", pr)
	}

	// Node 2 is master again, under a later ballot, when a Prepare naming
	// its earlier handover arrives late.
	b := NewAcceptor(1)
	b.StartLease(testLease, t0)
	again := NextBallot(successor, 2)
	accept(b, again, 1)
	late := NextBallot(again, 3)
	pr = b.HandlePrepare(&messages.Prepare{From: 3, Ballot: late, FirstInstance: 1, HandoverBallot: master}, t0.Add(time.Millisecond)).Reply.Msg.(*messages.Promise)
	if pr.Ok || !pr.Leased {
		t.Fatalf("a stale handover released a later mastership's lease: %v", pr)
	}
}

// A master handing over stops taking commands and serving lease reads at
// once, sends Handover only on a later Tick (so a shell has published the
// view without the lease first), and only once what it had in flight is
// chosen or HandoverTimeout passed.
func TestHandoverWaitsForInflightThenTellsTheSuccessor(t *testing.T) {
	p := newTestProposer(1, 4, 4)
	electBy12(t, p) // its epoch's first value is in flight, unacknowledged
	now := t0.Add(10 * time.Second)
	if _, err := p.TransferMastership(0, now); err == nil {
		t.Fatal("handed over to the most caught-up voter when none has accepted anything")
	}
	if _, err := p.TransferMastership(2, now); err != nil {
		t.Fatal(err)
	}
	if p.IsMaster() || p.Submit(&messages.Command{RequestId: 2}).Replies[0].Response.Code != messages.ErrorCode_ERROR_CODE_NOT_MASTER {
		t.Fatal("a master handing over still takes commands")
	}
	if _, ok := p.LeaseUntil(now); ok {
		t.Fatal("a master handing over still holds a lease")
	}
	sent := func(out ProposerOutput) *messages.Handover {
		for _, env := range out.Messages {
			if h, ok := env.Msg.(*messages.Handover); ok {
				return h
			}
		}
		return nil
	}
	if h := sent(p.Tick(now.Add(time.Millisecond))); h != nil {
		t.Fatalf("handed over with an instance in flight: %v", h)
	}
	tick := p.Tick(now.Add(p.cfg.HandoverTimeout()))
	if h := sent(tick); h == nil || h.From != 1 || h.Ballot == 0 || !tick.ReleaseLease || p.state != stateFollower {
		t.Fatalf("after the handover timeout: %v, release %v, state %v", tick.Messages, tick.ReleaseLease, p.state)
	}
}
