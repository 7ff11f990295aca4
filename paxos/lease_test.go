package paxos

import (
	"math"
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
	prepare := prepareOf(campaignTick(p, now))
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
	own.ReleaseLease(2, math.MaxUint64)
	if pr := own.HandlePrepare(rival, now).Reply.Msg.(*messages.Promise); !pr.Ok {
		t.Fatalf("the rival's prepare after the release: %v", pr)
	}
}
