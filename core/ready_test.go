package core

import (
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// The contract kept inside the core: an acceptor's answer appears in
// Ready.Messages only once Persisted covers the records handed out before
// it; planted bug reply-before-persist lets it out at once.
func TestDurableBeforeVisible(t *testing.T) {
	for _, bug := range []paxos.PlantedBug{paxos.BugNone, paxos.BugReplyBeforePersist} {
		members := &messages.Membership{Version: 1, Members: voters(1, 2, 3)}
		r, err := New(Config{ID: 2, Members: members, Planted: bug})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.FinishRestore(t0); err != nil {
			t.Fatal(err)
		}
		r.Ready()
		promise := func(rd Ready) *messages.Promise {
			for _, env := range rd.Messages {
				if p, ok := env.Msg.(*messages.Promise); ok && env.To == 1 {
					return p
				}
			}
			return nil
		}
		r.Step(&messages.Prepare{From: 1, Ballot: paxos.NextBallot(0, 1), FirstInstance: 1}, t0.Add(5*time.Second))
		rd := r.Ready()
		if len(rd.Writes) != 1 || rd.Writes[0].Mode != WriteSync {
			t.Fatalf("%v: writes %v; want the promise record, synced", bug, rd.Writes)
		}
		early := promise(rd)
		if bug == paxos.BugNone && early != nil {
			t.Fatalf("the promise left before its record was durable")
		}
		if bug == paxos.BugReplyBeforePersist {
			if early == nil {
				t.Fatal("with reply-before-persist planted, the promise waited")
			}
			continue
		}
		r.Persisted(rd.Writes[0].Upto-1, t0.Add(5*time.Second))
		if promise(r.Ready()) != nil {
			t.Fatal("the promise left before all of its records were durable")
		}
		r.Persisted(rd.Writes[0].Upto, t0.Add(5*time.Second))
		if p := promise(r.Ready()); p == nil || !p.Ok {
			t.Fatalf("once durable, the promise: %v", p)
		}
	}
}
