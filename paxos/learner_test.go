package paxos

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/messages"
)

func entry(i, b uint64, p ...string) *messages.Entry {
	return &messages.Entry{Instance: i, Ballot: b, Value: value(p...)}
}

func instancesOf(es []*messages.Entry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Instance)
	}
	return out
}

func TestLearnerAppliesInOrderExactlyOnce(t *testing.T) {
	l := NewLearner(LearnerConfig{ID: 1, Peers: []uint32{1, 2, 3}})
	b := NextBallot(0, 2)
	var applied []uint64
	take := func(out LearnerOutput) { applied = append(applied, instancesOf(out.Apply)...) }
	take(l.HandleLearn([]*messages.Entry{entry(2, b, "b"), entry(3, b, "c")}))
	take(l.HandleChosen(&messages.Chosen{From: 2, Ballot: b, ChosenUpto: 3}, t0))
	if len(applied) != 0 {
		t.Fatalf("applied %v with instance 1 missing", applied)
	}
	take(l.HandleLearn([]*messages.Entry{entry(1, b, "a")}))
	take(l.HandleChosen(&messages.Chosen{From: 2, Ballot: b, ChosenUpto: 3}, t0)) // duplicate
	take(l.HandleLearn([]*messages.Entry{entry(2, b, "b")}))                      // duplicate
	if !slices.Equal(applied, []uint64{1, 2, 3}) {
		t.Fatalf("applied %v, want [1 2 3]", applied)
	}
}

func TestLearnerIgnoresOtherBallotsInChosenNotice(t *testing.T) {
	l := NewLearner(LearnerConfig{ID: 1, Peers: []uint32{1, 2, 3}})
	old, cur := NextBallot(0, 2), NextBallot(BallotStride, 3)
	l.HandleLearn([]*messages.Entry{entry(1, old, "stale")})
	if out := l.HandleChosen(&messages.Chosen{From: 3, Ballot: cur, ChosenUpto: 1}, t0); len(out.Apply) != 0 {
		t.Fatal("an entry accepted under another ballot is not the chosen one")
	}
	out := l.HandleLearn([]*messages.Entry{entry(1, cur, "new")})
	if len(out.Apply) != 1 || payloads(out.Apply[0].Value)[0] != "new" {
		t.Fatalf("applied %v", out.Apply)
	}
}

func TestLearnerCatchesUpFromPeerOnItsOwn(t *testing.T) {
	peers := []uint32{1, 2, 3}
	src := NewLearner(LearnerConfig{ID: 2, Peers: peers, MaxCatchupEntries: 2})
	b := NextBallot(0, 2)
	for i := uint64(1); i <= 5; i++ {
		src.HandleLearn([]*messages.Entry{entry(i, b, "v")})
	}
	src.HandleChosen(&messages.Chosen{From: 2, Ballot: b, ChosenUpto: 5}, t0)
	dst := NewLearner(LearnerConfig{ID: 1, Peers: peers, MaxCatchupEntries: 2})
	// The lagging learner heard the master's notice of nothing chosen yet,
	// then nothing more: its own tick asks a peer, and the master's word
	// is taken (TestLearnerTakesCatchupOnAgreement covers other peers).
	dst.HandleChosen(&messages.Chosen{From: 2, Ballot: b}, t0)
	now := t0.Add(2 * time.Second)
	out := dst.Tick(now)
	var applied []uint64
	for rounds := 0; len(out.Messages) > 0 && rounds < 10; rounds++ {
		req := out.Messages[0].Msg.(*messages.CatchupRequest)
		resp := src.HandleCatchupRequest(req).Messages[0].Msg.(*messages.CatchupResponse)
		if len(resp.Entries) > 2 {
			t.Fatalf("response carries %d entries, limit 2", len(resp.Entries))
		}
		out = dst.HandleCatchupResponse(resp, now)
		applied = append(applied, instancesOf(out.Apply)...)
		if len(out.Records) == 0 && len(out.Apply) > 0 {
			t.Fatal("learned values must be recorded")
		}
	}
	if !slices.Equal(applied, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("caught up %v", applied)
	}
}

func TestLearnerRestoreUsesChosenMark(t *testing.T) {
	b := NextBallot(0, 2)
	l := NewLearner(LearnerConfig{ID: 1, Peers: []uint32{1, 2, 3}})
	for _, rec := range []*messages.Record{
		{Kind: &messages.Record_Accept{Accept: entry(1, b, "a")}},
		{Kind: &messages.Record_Accept{Accept: entry(2, b, "b")}},
		{Kind: &messages.Record_Chosen{Chosen: &messages.ChosenRecord{Upto: 1}}},
		{Kind: &messages.Record_Accept{Accept: entry(3, b, "c")}},
	} {
		l.Restore(rec)
	}
	out, err := l.FinishRestore()
	if err != nil || !slices.Equal(instancesOf(out.Apply), []uint64{1}) {
		t.Fatalf("restore applied %v, %v", instancesOf(out.Apply), err)
	}
	// Instances 2 and 3 were accepted but not known chosen: a notice finishes them.
	out = l.HandleChosen(&messages.Chosen{From: 2, Ballot: b, ChosenUpto: 3}, t0)
	if !slices.Equal(instancesOf(out.Apply), []uint64{2, 3}) {
		t.Fatalf("after notice applied %v", instancesOf(out.Apply))
	}
	bad := NewLearner(LearnerConfig{ID: 1, Peers: []uint32{1, 2, 3}})
	bad.Restore(&messages.Record{Kind: &messages.Record_Chosen{Chosen: &messages.ChosenRecord{Upto: 1}}})
	if _, err := bad.FinishRestore(); err != nil || bad.RestoreHoles() != 1 || bad.KnownChosen() != 1 || bad.Contiguous() != 0 {
		t.Fatalf("a chosen mark with no value: %v, holes %d, known chosen %d, contiguous %d",
			err, bad.RestoreHoles(), bad.KnownChosen(), bad.Contiguous())
	}
}

// §6.2: a peer that sends a different value for an instance this learner
// holds as chosen reveals a broken invariant; the learner reports it so
// the replica stops instead of spreading bad state.
func TestPaper6_2_LearnerAssertsOneValuePerInstance(t *testing.T) {
	b := NextBallot(0, 2)
	l := NewLearner(LearnerConfig{ID: 1, Peers: []uint32{1, 2, 3}})
	l.HandleChosen(&messages.Chosen{From: 2, Ballot: b}, t0) // node 2 is the master it follows
	out := l.HandleCatchupResponse(&messages.CatchupResponse{From: 2, ChosenUpto: 1, Entries: []*messages.Entry{entry(1, b, "a")}}, t0)
	if out.Violation != nil || len(out.Apply) != 1 {
		t.Fatalf("first catch-up: %v", out.Violation)
	}
	same := l.HandleCatchupResponse(&messages.CatchupResponse{From: 3, ChosenUpto: 1, Entries: []*messages.Entry{entry(1, b, "a")}}, t0)
	if same.Violation != nil {
		t.Fatalf("the same value again: %v", same.Violation)
	}
	other := l.HandleCatchupResponse(&messages.CatchupResponse{From: 3, ChosenUpto: 1, Entries: []*messages.Entry{entry(1, b, "b")}}, t0)
	if !errors.Is(other.Violation, ErrInvariant) {
		t.Fatalf("another value for a chosen instance: %v", other.Violation)
	}
}

// A catch-up entry the learner holds no evidence of (its acceptor did not
// accept it under that ballot, and the sender is not the master it
// follows) is taken only once enough distinct peers sent the same value
// (a majority's worth of the faults tolerated, plus one): one member's
// word alone cannot put a value into this replica. A peer that sends
// another value starts the count over, and the learner asks another peer.
func TestLearnerTakesCatchupOnAgreement(t *testing.T) {
	b := NextBallot(0, 4)
	l := NewLearner(LearnerConfig{ID: 1, Peers: []uint32{1, 2, 3, 4, 5}}) // 5 members: 3 sources
	resp := func(from uint32, v string) *messages.CatchupResponse {
		return &messages.CatchupResponse{From: from, ChosenUpto: 1, Entries: []*messages.Entry{entry(1, b, v)}}
	}
	out := l.HandleCatchupResponse(resp(2, "a"), t0)
	if len(out.Apply) != 0 || len(out.Records) != 0 {
		t.Fatalf("one peer's word applied %v", instancesOf(out.Apply))
	}
	if len(out.Messages) != 1 || out.Messages[0].To == 2 {
		t.Fatalf("the learner did not ask another peer: %v", out.Messages)
	}
	if out := l.HandleCatchupResponse(resp(3, "forged"), t0); len(out.Apply) != 0 {
		t.Fatal("a disagreeing value applied")
	}
	if out := l.HandleCatchupResponse(resp(2, "a"), t0); len(out.Apply) != 0 {
		t.Fatal("the first value applied after a disagreement with one more word")
	}
	if out := l.HandleCatchupResponse(resp(4, "a"), t0); len(out.Apply) != 0 {
		t.Fatal("applied on two words of five members (three needed)")
	}
	out = l.HandleCatchupResponse(resp(5, "a"), t0)
	if !slices.Equal(instancesOf(out.Apply), []uint64{1}) || string(out.Apply[0].Value.Commands[0].Payload) != "a" {
		t.Fatalf("three peers agreeing: applied %v", instancesOf(out.Apply))
	}

	// An entry its own acceptor accepted under the same ballot is evidence
	// enough, and so is the word of the master whose notices it follows.
	l2 := NewLearner(LearnerConfig{ID: 1, Peers: []uint32{1, 2, 3}})
	l2.HandleLearn(nil)
	l2.pending[1] = entry(1, b, "a")
	if out := l2.HandleCatchupResponse(resp(3, "a"), t0); !slices.Equal(instancesOf(out.Apply), []uint64{1}) {
		t.Fatalf("an entry its acceptor accepted: applied %v", instancesOf(out.Apply))
	}
	l3 := NewLearner(LearnerConfig{ID: 1, Peers: []uint32{1, 2, 3}})
	l3.HandleChosen(&messages.Chosen{From: 4, Ballot: b}, t0)
	if out := l3.HandleCatchupResponse(resp(4, "a"), t0); !slices.Equal(instancesOf(out.Apply), []uint64{1}) {
		t.Fatalf("the master's word: applied %v", instancesOf(out.Apply))
	}
}
