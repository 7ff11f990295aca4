package paxos

import (
	"slices"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/messages"
)

// After a snapshot the acceptor lets go of what it accepted up to it: a
// prepare from there is refused (it could not report those values), an
// accept there is not acknowledged, and its checkpoint rebuilds the rest.
func TestPaper5_5_AcceptorTruncationRefusesWhatItCannotAnswer(t *testing.T) {
	a := NewAcceptor(1)
	b := NextBallot(0, 2)
	a.HandleAccept(&messages.Accept{From: 2, Ballot: b, Entries: []*messages.Entry{
		{Instance: 1, Value: value("a")}, {Instance: 2, Value: value("b")}, {Instance: 3, Value: value("c")}}}, t0)
	recs := a.Truncate(2)
	if a.AcceptedAt(1) != nil || a.AcceptedAt(2) != nil || a.AcceptedAt(3) == nil {
		t.Fatalf("after Truncate(2): accepted 1=%v 2=%v 3=%v", a.AcceptedAt(1), a.AcceptedAt(2), a.AcceptedAt(3))
	}
	b2 := NextBallot(b, 3)
	out := a.HandlePrepare(&messages.Prepare{From: 3, Ballot: b2, FirstInstance: 2}, t0)
	if pr := out.Reply.Msg.(*messages.Promise); pr.Ok || pr.Truncated != 2 || len(out.Records) != 0 {
		t.Fatalf("prepare from 2 after truncation at 2: %v, records %v", pr, out.Records)
	}
	out = a.HandlePrepare(&messages.Prepare{From: 3, Ballot: b2, FirstInstance: 3}, t0)
	if pr := out.Reply.Msg.(*messages.Promise); !pr.Ok || len(pr.Accepted) != 1 || pr.Accepted[0].Instance != 3 {
		t.Fatalf("prepare from 3: %v", pr)
	}
	out = a.HandleAccept(&messages.Accept{From: 3, Ballot: b2, Entries: []*messages.Entry{
		{Instance: 2, Value: value("x")}, {Instance: 4, Value: value("d")}}}, t0)
	if ack := out.Reply.Msg.(*messages.Accepted); !slices.Equal(ack.Instances, []uint64{4}) || ack.Truncated != 2 {
		t.Fatalf("accept of 2 and 4 after truncation at 2: %v", ack)
	}

	// The checkpoint alone rebuilds the acceptor.
	re := NewAcceptor(1)
	for _, r := range recs {
		if err := re.Restore(r); err != nil {
			t.Fatal(err)
		}
	}
	if re.Truncated() != 2 || re.Promised() != b || re.AcceptedAt(3) == nil || re.AcceptedAt(1) != nil {
		t.Fatalf("rebuilt from the checkpoint: truncated %d promised %d accepted 3=%v", re.Truncated(), re.Promised(), re.AcceptedAt(3))
	}
	if a.Truncate(0) != nil {
		t.Fatal("Truncate(0) wrote a checkpoint")
	}
}

// After a log mark the checkpoint carries only what was accepted up to the
// highest instance accepted at the mark, as accepted now: the log keeps the
// records written after the mark, and a replay of those, then the
// checkpoint, rebuilds the acceptor.
func TestPaper5_5_CheckpointAfterAMarkCarriesOnlyWhatCameBefore(t *testing.T) {
	a := NewAcceptor(1)
	b := NextBallot(0, 2)
	var kept []*messages.Record // what the log holds after the mark
	accept := func(ballot uint64, from uint32, entries ...*messages.Entry) {
		out := a.HandleAccept(&messages.Accept{From: from, Ballot: ballot, Entries: entries}, t0)
		kept = append(kept, out.Records...)
	}
	accept(b, 2, &messages.Entry{Instance: 1, Value: value("a")}, &messages.Entry{Instance: 2, Value: value("b")},
		&messages.Entry{Instance: 3, Value: value("c")})
	a.MarkLog()
	kept = nil
	b2 := NextBallot(b, 3)
	accept(b2, 3, &messages.Entry{Instance: 3, Value: value("c2")}, &messages.Entry{Instance: 4, Value: value("d")})
	recs := a.Truncate(1)
	var carried []uint64
	for _, r := range recs {
		if e := r.GetAccept(); e != nil {
			carried = append(carried, e.Instance)
			if e.Instance == 3 && !slices.Equal(payloads(e.Value), []string{"c2"}) {
				t.Errorf("instance 3 carried as %v, want its acceptance under the later ballot", e)
			}
		}
	}
	if !slices.Equal(carried, []uint64{2, 3}) {
		t.Fatalf("the checkpoint after the mark carries instances %v, want [2 3] (4 came after the mark)", carried)
	}
	re := NewAcceptor(1)
	for _, r := range append(kept, recs...) {
		if err := re.Restore(r); err != nil {
			t.Fatal(err)
		}
	}
	for i := uint64(2); i <= 4; i++ {
		if re.AcceptedAt(i) == nil || re.AcceptedAt(i).Ballot != a.AcceptedAt(i).Ballot {
			t.Errorf("rebuilt instance %d: %v, want %v", i, re.AcceptedAt(i), a.AcceptedAt(i))
		}
	}
	// The mark is used once: the next checkpoint carries everything again.
	if n := len(a.Truncate(2)) - 2; n != 2 {
		t.Errorf("a checkpoint with no mark carries %d entries, want 2", n)
	}
}

// A checkpoint drops learned values above the snapshot with the old
// segments: a chosen mark after it may run past a hole, which the learner
// learns again instead of refusing to start.
func TestPaper5_5_LearnerRestoreAfterCheckpointLearnsHolesAgain(t *testing.T) {
	l, out, err := learnerRestoredAfterCheckpoint(1, 10, entry(13, NextBallot(0, 2), "c"), 13)
	if err != nil || len(out.Apply) != 0 || l.Contiguous() != 10 || l.KnownChosen() != 13 {
		t.Fatalf("restore: applied %v, contiguous %d, known chosen %d, %v", instancesOf(out.Apply), l.Contiguous(), l.KnownChosen(), err)
	}
}

// learnerRestoredAfterCheckpoint restores learner id (of replicas 1, 2
// and 3) as after a checkpoint at snapshot: the snapshot, then a log of
// the truncation there, one accepted entry and a chosen mark at
// chosenUpto; then it finishes the restore.
func learnerRestoredAfterCheckpoint(id uint32, snapshot uint64, accepted *messages.Entry, chosenUpto uint64) (*Learner, LearnerOutput, error) {
	l := NewLearner(LearnerConfig{ID: id, Peers: []uint32{1, 2, 3}})
	l.RestoreSnapshot(snapshot)
	for _, rec := range []*messages.Record{
		{Kind: &messages.Record_Truncated{Truncated: &messages.TruncatedRecord{Upto: snapshot}}},
		{Kind: &messages.Record_Accept{Accept: accepted}},
		{Kind: &messages.Record_Chosen{Chosen: &messages.ChosenRecord{Upto: chosenUpto}}},
	} {
		l.Restore(rec)
	}
	out, err := l.FinishRestore()
	return l, out, err
}

// A replica learned instance 7 from a peer (a learned record), while its
// acceptor held a stale value there from an older ballot; a checkpoint
// then deleted the learned record with its segment, and a chosen mark past
// 7 came after. On restore the stale accept must not be taken for the
// chosen value (sim seed 26383): after a checkpoint only learned records,
// notices and peers say what is chosen.
func TestPaper5_5_RestoreAfterCheckpointDistrustsStaleAccepts(t *testing.T) {
	stale, chosen := NextBallot(0, 5), NextBallot(BallotStride, 2)
	l, out, err := learnerRestoredAfterCheckpoint(3, 6, entry(7, stale, "never-chosen"), 7)
	if err != nil || len(out.Apply) != 0 || l.Contiguous() != 6 {
		t.Fatalf("restore applied %v (contiguous %d, %v); want nothing past the snapshot", instancesOf(out.Apply), l.Contiguous(), err)
	}
	if out := l.HandleChosen(&messages.Chosen{From: 2, Ballot: chosen, ChosenUpto: 7}, t0); len(out.Apply) != 0 {
		t.Fatalf("a notice for ballot %d applied the stale value of ballot %d", chosen, stale)
	}
	out = l.HandleCatchupResponse(&messages.CatchupResponse{From: 2, ChosenUpto: 7, Entries: []*messages.Entry{entry(7, chosen, "chosen")}}, t0)
	if len(out.Apply) != 1 || payloads(out.Apply[0].Value)[0] != "chosen" {
		t.Fatalf("after catch-up applied %v", out.Apply)
	}
}

// §5.5: a candidate whose own acceptor let go of the log where its learner
// still is (it refuses the prepare, naming its truncation point) cannot win
// until it has caught up: it stops, and neither campaigns nor asks for a
// pre-vote before its learner applied that far. It kept campaigning once,
// and its rising ballots kept the others from electing anyone (sim seed
// 1645; regressionSeeds).
func TestPaper5_5_CandidateBehindItsOwnTruncationWaits(t *testing.T) {
	p := newTestProposer(1, 4, 4)
	now := t0.Add(10 * time.Second)
	prep := prepareOf(campaignTick(p, now))
	if prep == nil {
		t.Fatal("no campaign")
	}
	p.Step(&messages.Promise{From: 1, Ballot: prep.Ballot, Promised: prep.Ballot - 1, Truncated: 50}, now)
	if p.State() != "follower" {
		t.Fatalf("still %s after its own acceptor refused for truncation", p.State())
	}
	for at := now; at.Before(now.Add(30 * time.Second)); at = at.Add(100 * time.Millisecond) {
		for _, e := range p.Tick(at).Messages {
			switch e.Msg.(type) {
			case *messages.Prepare, *messages.PreVote:
				t.Fatalf("%T sent while its learner is behind its own acceptor's truncation", e.Msg)
			}
		}
	}
	p.LearnerProgress(50)
	if prepareOf(campaignTick(p, now.Add(31*time.Second))) == nil {
		t.Fatal("no campaign once caught up")
	}
}
