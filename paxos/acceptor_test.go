package paxos

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

func TestNextBallotIsOwnedAndIncreasing(t *testing.T) {
	for _, id := range []uint32{1, 2, 3, 7} {
		b := uint64(0)
		for range 5 {
			nb := NextBallot(b, id)
			if nb <= b || BallotOwner(nb) != id || nb%BallotStride != uint64(id) {
				t.Fatalf("NextBallot(%d, %d) = %d", b, id, nb)
			}
			b = nb
		}
	}
	// Above another node's ballot, still owned by the asker.
	if b := NextBallot(NextBallot(0, 3), 1); b <= NextBallot(0, 3) || BallotOwner(b) != 1 {
		t.Fatalf("NextBallot above node 3's ballot = %d", b)
	}
}

func TestAcceptorRejectsStaleBallots(t *testing.T) {
	a := NewAcceptor(1)
	hi, lo := NextBallot(BallotStride*5, 2), NextBallot(BallotStride*2, 3)
	out := a.HandlePrepare(&messages.Prepare{From: 2, Ballot: hi, FirstInstance: 1}, t0)
	if p := out.Reply.Msg.(*messages.Promise); !p.Ok || len(out.Records) != 1 {
		t.Fatalf("first prepare: %v records=%d", p, len(out.Records))
	}
	out = a.HandlePrepare(&messages.Prepare{From: 3, Ballot: lo, FirstInstance: 1}, t0)
	if p := out.Reply.Msg.(*messages.Promise); p.Ok || p.Promised != hi || len(out.Records) != 0 {
		t.Fatalf("stale prepare answered %v with %d records", p, len(out.Records))
	}
	out = a.HandleAccept(&messages.Accept{From: 3, Ballot: lo, Entries: []*messages.Entry{{Instance: 1, Value: value("x")}}}, t0)
	if acc := out.Reply.Msg.(*messages.Accepted); acc.Ok || acc.Promised != hi || len(out.Records) != 0 || len(out.Learn) != 0 {
		t.Fatalf("stale accept answered %v", acc)
	}
	if a.AcceptedAt(1) != nil {
		t.Fatal("stale accept was stored")
	}
}

func TestAcceptorPromiseReportsAcceptedValues(t *testing.T) {
	a := NewAcceptor(1)
	b1 := NextBallot(0, 2)
	a.HandleAccept(&messages.Accept{From: 2, Ballot: b1, Entries: []*messages.Entry{
		{Instance: 3, Value: value("a")}, {Instance: 5, Value: value("b")}}}, t0)
	b2 := NextBallot(b1, 3)
	out := a.HandlePrepare(&messages.Prepare{From: 3, Ballot: b2, FirstInstance: 4}, t0)
	p := out.Reply.Msg.(*messages.Promise)
	if !p.Ok || len(p.Accepted) != 1 || p.Accepted[0].Instance != 5 || p.Accepted[0].Ballot != b1 {
		t.Fatalf("promise from instance 4 = %v", p)
	}
}

func TestAcceptorDuplicatesChangeNothing(t *testing.T) {
	a := NewAcceptor(1)
	b := NextBallot(0, 2)
	acc := &messages.Accept{From: 2, Ballot: b, Entries: []*messages.Entry{{Instance: 1, Value: value("x")}}}
	first := a.HandleAccept(acc, t0)
	again := a.HandleAccept(proto.Clone(acc).(*messages.Accept), t0)
	if len(first.Records) != 1 || len(again.Records) != 0 || len(again.Learn) != 0 {
		t.Fatalf("records: first %d, duplicate %d (learn %d)", len(first.Records), len(again.Records), len(again.Learn))
	}
	if r := again.Reply.Msg.(*messages.Accepted); !r.Ok || len(r.Instances) != 1 {
		t.Fatalf("duplicate accept must be acknowledged again: %v", r)
	}
	prep := &messages.Prepare{From: 2, Ballot: b, FirstInstance: 1}
	if out := a.HandlePrepare(prep, t0); len(out.Records) != 0 || !out.Reply.Msg.(*messages.Promise).Ok {
		t.Fatalf("re-prepare at the promised ballot: %v", out)
	}
}

func TestAcceptorAcceptRaisesPromiseDurably(t *testing.T) {
	a := NewAcceptor(1)
	b := NextBallot(0, 2)
	out := a.HandleAccept(&messages.Accept{From: 2, Ballot: b}, t0)
	if len(out.Records) != 1 || out.Records[0].GetPromise().GetBallot() != b {
		t.Fatalf("an accept with no entries that raises the promise must persist it: %v", out.Records)
	}
}

func TestAcceptorRestoreRebuildsState(t *testing.T) {
	a := NewAcceptor(1)
	b := NextBallot(0, 2)
	var recs []*messages.Record
	recs = append(recs, a.HandlePrepare(&messages.Prepare{From: 2, Ballot: b, FirstInstance: 1}, t0).Records...)
	recs = append(recs, a.HandleAccept(&messages.Accept{From: 2, Ballot: b, Entries: []*messages.Entry{{Instance: 1, Value: value("x")}}}, t0).Records...)
	r := NewAcceptor(1)
	for _, rec := range recs {
		if err := r.Restore(rec); err != nil {
			t.Fatal(err)
		}
	}
	if r.Promised() != b || !proto.Equal(r.AcceptedAt(1), a.AcceptedAt(1)) {
		t.Fatalf("restored promised=%d accepted=%v", r.Promised(), r.AcceptedAt(1))
	}
	if err := r.Restore(&messages.Record{Kind: &messages.Record_Accept{Accept: &messages.Entry{}}}); err == nil {
		t.Fatal("a malformed accept record must be refused")
	}
}

// A lazy accept is stored and written without an fsync of its own, and not
// answered; if a durable accept of the same entry follows, its record is
// written again, so the acknowledgement never rests on an unsynced write.
func TestAcceptorLazyAcceptBecomesDurableBeforeAck(t *testing.T) {
	a := NewAcceptor(1)
	b := NextBallot(0, 2)
	e := []*messages.Entry{{Instance: 1, Value: value("x")}}
	out := a.HandleAccept(&messages.Accept{From: 2, Ballot: b, Entries: e, Lazy: true}, t0)
	if !out.Lazy || out.Reply != nil || len(out.Records) != 1 || len(out.Learn) != 1 {
		t.Fatalf("lazy accept: lazy=%v reply=%v records=%d learn=%d", out.Lazy, out.Reply, len(out.Records), len(out.Learn))
	}
	out = a.HandleAccept(&messages.Accept{From: 2, Ballot: b, Entries: e}, t0)
	if out.Lazy || len(out.Records) != 1 || out.Reply == nil || !out.Reply.Msg.(*messages.Accepted).Ok {
		t.Fatalf("durable accept after a lazy one: lazy=%v records=%d reply=%v", out.Lazy, len(out.Records), out.Reply)
	}
	if out = a.HandleAccept(&messages.Accept{From: 2, Ballot: b, Entries: e}, t0); len(out.Records) != 0 {
		t.Fatal("a durable duplicate was recorded again")
	}
}

// A lazy Accept raises the promise in memory only: a Prepare at that ballot
// arriving late must record the promise before answering (sim seed 754).
func TestAcceptorPromiseAfterLazyAcceptIsRecorded(t *testing.T) {
	a := NewAcceptor(3)
	b := NextBallot(0, 2)
	a.HandleAccept(&messages.Accept{From: 2, Ballot: b, Lazy: true,
		Entries: []*messages.Entry{{Instance: 1, Value: value("x")}}}, t0)
	out := a.HandlePrepare(&messages.Prepare{From: 2, Ballot: b, FirstInstance: 1}, t0)
	if !out.Reply.Msg.(*messages.Promise).Ok || len(out.Records) != 1 || out.Records[0].GetPromise().GetBallot() != b {
		t.Fatalf("late prepare after a lazy accept: records %v", out.Records)
	}
}
