package paxos

import (
	"math"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/messages"
)

// Issue 14, check-quorum: a master that hears no other voter answer
// anything for a lease timeout steps down, refuses commands as not master
// at once, says it resigned (its lease is over), and stops heartbeats.
func TestCheckQuorum_MasterWithoutAnswersResigns(t *testing.T) {
	p := newTestProposer(1, 4, 4)
	electBy12(t, p)
	start := t0.Add(10 * time.Second)
	var resigned int
	for now := start; now.Before(start.Add(3 * time.Second)); now = now.Add(20 * time.Millisecond) {
		for _, e := range p.Tick(now).Messages {
			if hb, ok := e.Msg.(*messages.Heartbeat); ok && hb.Resigned {
				resigned++
			}
		}
		if !p.IsMaster() {
			if d := now.Sub(start); d < p.cfg.QuorumTimeout || d > p.cfg.QuorumTimeout+100*time.Millisecond {
				t.Fatalf("stepped down %v after its election, want %v", d, p.cfg.QuorumTimeout)
			}
			break
		}
	}
	if p.IsMaster() || resigned != 2 {
		t.Fatalf("still master %v, %d resigned heartbeats (want 2)", p.IsMaster(), resigned)
	}
	out := p.Submit(cmd(1, 9, "x"))
	if len(out.Replies) != 1 || out.Replies[0].Response.Code != messages.ErrorCode_ERROR_CODE_NOT_MASTER {
		t.Fatalf("a command after stepping down: %+v", out.Replies)
	}
	for _, e := range p.Tick(start.Add(3100 * time.Millisecond)).Messages {
		if _, ok := e.Msg.(*messages.Heartbeat); ok {
			t.Fatal("heartbeat sent after stepping down")
		}
	}
}

// A master whose probes a majority answers stays master however long it
// is idle.
func TestCheckQuorum_AnsweredMasterStays(t *testing.T) {
	p := newTestProposer(1, 4, 4)
	electBy12(t, p)
	start := t0.Add(10 * time.Second)
	for now := start; now.Before(start.Add(10 * time.Second)); now = now.Add(20 * time.Millisecond) {
		for _, e := range p.Tick(now).Messages {
			if c, ok := e.Msg.(*messages.Confirm); ok && e.To == 2 {
				p.Step(&messages.Confirmed{From: 2, Ballot: c.Ballot, Ok: true, Promised: c.Ballot, Seq: c.Seq}, now)
			}
		}
		if !p.IsMaster() {
			t.Fatalf("stepped down at %v although voter 2 answered every probe", now.Sub(start))
		}
	}
}

// A resigned heartbeat releases the lease granted to its sender under its
// ballot or below, not one granted under a higher ballot of the same node
// (it campaigned again since).
func TestCheckQuorum_ResignReleasesOnlyOlderGrants(t *testing.T) {
	a := NewAcceptor(2)
	a.StartLease(testLease, t0)
	old, newer := NextBallot(0, 1), NextBallot(NextBallot(0, 1), 1)
	a.HandleAccept(&messages.Accept{From: 1, Ballot: newer, Seq: 1}, t0)
	a.ReleaseLease(1, old)
	if a.LeaseHolder(t0) != 1 {
		t.Fatal("a resign of an older ballot dropped a newer grant")
	}
	a.ReleaseLease(1, newer)
	if a.LeaseHolder(t0) != 0 {
		t.Fatal("the resign of the granted ballot kept the grant")
	}
	a.HandleAccept(&messages.Accept{From: 1, Ballot: newer, Seq: 2}, t0)
	a.ReleaseLease(1, math.MaxUint64)
	if a.LeaseHolder(t0) != 0 {
		t.Fatal("own release kept the grant")
	}
}

// Issue 14, pre-vote: a follower whose election timer fires asks first and
// raises no ballot; a voter that heard the master within an election
// timeout refuses; with a majority's yes it campaigns above every ballot
// reported.
func TestPreVote_AskBeforeRaisingTheBallot(t *testing.T) {
	p := newTestProposer(1, 4, 4)
	before := p.Ballot()
	out := p.Tick(t0.Add(10 * time.Second))
	var pv *messages.PreVote
	for _, e := range out.Messages {
		if _, ok := e.Msg.(*messages.Prepare); ok {
			t.Fatal("campaigned without a pre-vote")
		}
		if m, ok := e.Msg.(*messages.PreVote); ok {
			pv = m
		}
	}
	if pv == nil || p.State() != "follower" || p.Ballot() != before {
		t.Fatalf("no pre-vote (%v), state %s, ballot %d -> %d", pv, p.State(), before, p.Ballot())
	}
	// Unanswered, it asks again and again and never raises its ballot.
	for now := t0.Add(10 * time.Second); now.Before(t0.Add(30 * time.Second)); now = now.Add(100 * time.Millisecond) {
		if prepareOf(p.Tick(now)) != nil {
			t.Fatal("campaigned with no majority's yes")
		}
	}
	// A voter that hears the master refuses; one that does not agrees.
	q := newTestProposer(2, 4, 4)
	now := t0.Add(31 * time.Second)
	q.Step(&messages.Heartbeat{From: 3, Ballot: NextBallot(0, 3)}, now)
	refusal := q.Step(&messages.PreVote{From: 1, Ballot: pv.Ballot}, now.Add(100*time.Millisecond))
	if m := refusal.Messages[0].Msg.(*messages.PreVoted); m.Ok || m.MasterId != 3 {
		t.Fatalf("a follower of a live master answered %v", m)
	}
	later := now.Add(q.cfg.ElectionTimeoutMin)
	yes := q.Step(&messages.PreVote{From: 1, Ballot: p.prevoteBallot}, later).Messages[0].Msg.(*messages.PreVoted)
	if !yes.Ok {
		t.Fatal("a follower that heard no master for an election timeout refused")
	}
	if q.Ballot() != NextBallot(0, 3) {
		t.Fatal("answering a pre-vote raised a ballot")
	}
	prep := prepareOf(p.Step(yes, later))
	if prep == nil || prep.Ballot <= yes.Highest {
		t.Fatalf("after a majority's yes: prepare %v, highest reported %d", prep, yes.Highest)
	}
}

// A follower whose master resigned asks for a pre-vote within a quarter of
// an election timeout, not a whole one.
func TestPreVote_SoonAfterTheMasterResigns(t *testing.T) {
	p := newTestProposer(2, 4, 4)
	now := t0.Add(time.Second)
	b := NextBallot(0, 1)
	p.Step(&messages.Heartbeat{From: 1, Ballot: b}, now)
	out := p.Step(&messages.Heartbeat{From: 1, Ballot: b, Resigned: true}, now)
	if out.Resigned != 1 || out.ResignedBallot != b || p.MasterID() != 0 {
		t.Fatalf("resign not taken: %+v, master %d", out, p.MasterID())
	}
	for at := now; at.Before(now.Add(p.cfg.ElectionTimeoutMin/4 + time.Millisecond)); at = at.Add(10 * time.Millisecond) {
		for _, e := range p.Tick(at).Messages {
			if _, ok := e.Msg.(*messages.PreVote); ok {
				return
			}
		}
	}
	t.Fatal("no pre-vote within a quarter of an election timeout of the resign")
}

// leasedMaster is a master elected by voters 1 and 2 whose epoch start
// both accepted, so it holds a lease, and which served a read on it at
// now.
func leasedMaster(t *testing.T) (p *Proposer, now time.Time, until time.Time) {
	t.Helper()
	p = newTestProposer(1, 4, 4)
	electBy12(t, p)
	now = t0.Add(10 * time.Second)
	for _, from := range []uint32{1, 2} { // the epoch start's Accept was the latest send
		p.Step(&messages.Accepted{From: from, Ballot: p.Ballot(), Ok: true, Promised: p.Ballot(),
			Instances: []uint64{p.Epoch()}, Seq: p.seq}, now)
	}
	p.LearnerProgress(p.Epoch())
	until, ok := p.LeaseUntil(now)
	if !ok {
		t.Fatal("no lease after a majority accepted the epoch start")
	}
	return p, now, until
}

// Seed 3650 (sim): a master that served reads on a lease and then stops
// being able to (a boost's new epoch not applied yet) must not have the
// acceptors drop their grants when it steps down before that lease is
// over: a new master could serve reads while the old lease still runs.
// It says it resigned only once its clock is past every lease it served on.
func TestCheckQuorum_StepDownKeepsTheGrantsOfALeaseItServedOn(t *testing.T) {
	p, now, until := leasedMaster(t)
	p.epoch = p.applied + 1 // a new epoch pending: LeaseUntil is not ok any more
	var out ProposerOutput
	p.resign(&out, now.Add(10*time.Millisecond))
	if out.ReleaseLease {
		t.Fatalf("stepped down at %v with a lease served on until %v, and released the grants", now.Add(10*time.Millisecond), until)
	}
	for _, e := range out.Messages {
		if hb, ok := e.Msg.(*messages.Heartbeat); ok && hb.Resigned {
			t.Fatal("said it resigned (the acceptors would drop their grants) with its lease still on")
		}
	}
}

// Seed 3650 (sim): a master whose voters change (a learner promoted) does
// not resign at once because the new voter has answered nothing yet: the
// new configuration gets a whole QuorumTimeout to show a majority.
func TestCheckQuorum_NewVotersGetAQuorumTimeout(t *testing.T) {
	p, now, _ := leasedMaster(t)
	later := now.Add(p.cfg.QuorumTimeout - 50*time.Millisecond)
	p.Tick(later)
	p.setMembers(membership(2, []uint32{1, 2, 3, 4, 5})) // as a chosen change of voters does, at later
	if p.lostQuorum(later.Add(100 * time.Millisecond)) {
		t.Fatal("lost its quorum 100 ms after its voters changed: the new voters had no time to answer")
	}
	if !p.lostQuorum(later.Add(p.cfg.QuorumTimeout)) {
		t.Fatal("kept mastership a QuorumTimeout after its voters changed with no answer from a majority of them")
	}
}

// Issue 14, one candidate at a time: a follower whose acceptor took part in
// another node's campaign holds its own election off and refuses a third
// node's pre-vote for an election timeout, and the campaigner's own
// pre-vote is still answered. A Prepare below a ballot seen here is no
// live campaign. Without it, every follower whose timer ran out while the
// old master's lease held campaigned at once when it ended (sim seed
// 34022).
func TestPreVote_DeferToALiveCampaign(t *testing.T) {
	q := newTestProposer(2, 4, 4)
	now := t0.Add(10 * time.Second) // its own election timer ran out long ago
	q.NoteCampaign(3, NextBallot(0, 3), now)
	for at := now; at.Before(now.Add(q.cfg.ElectionTimeoutMin)); at = at.Add(10 * time.Millisecond) {
		for _, e := range q.Tick(at).Messages {
			if _, ok := e.Msg.(*messages.PreVote); ok {
				t.Fatalf("asked for a pre-vote %v after another node's Prepare", at.Sub(now))
			}
		}
	}
	answer := func(from uint32, at time.Time) *messages.PreVoted {
		return q.Step(&messages.PreVote{From: from, Ballot: NextBallot(NextBallot(0, 3), from)}, at).Messages[0].Msg.(*messages.PreVoted)
	}
	soon := now.Add(q.cfg.ElectionTimeoutMin / 2)
	if m := answer(1, soon); m.Ok {
		t.Fatal("a pre-vote of a third node was granted during a live campaign")
	}
	if m := answer(3, soon); !m.Ok {
		t.Fatal("the campaigner's own pre-vote was refused")
	}
	if m := answer(1, now.Add(q.cfg.ElectionTimeoutMin)); !m.Ok {
		t.Fatal("refused a pre-vote an election timeout after the campaign's last Prepare")
	}
	r := newTestProposer(2, 4, 4)
	r.ObserveBallot(NextBallot(BallotStride, 1))
	r.NoteCampaign(3, NextBallot(0, 3), now)
	if m := r.Step(&messages.PreVote{From: 1, Ballot: NextBallot(2*BallotStride, 1)}, now).Messages[0].Msg.(*messages.PreVoted); !m.Ok {
		t.Fatal("a Prepare below a ballot seen here was taken for a live campaign")
	}
}
