package server

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/internal/testwait"
	"github.com/livepaxos/livepaxos/messages"
)

// startSystem builds a node's actor system, guard included, on a free
// loopback port, and stops it when the test ends.
func startSystem(t *testing.T) (*actor.ActorSystem, string) {
	t.Helper()
	sys, rem, addr, err := cluster.NewSystem(cluster.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rem.Shutdown(false)
		sys.Shutdown()
	})
	return sys, addr
}

// stoppedActor spawns an actor on sys and stops it: its PID names an
// actor that is gone, as a master's role actor is once it stops.
func stoppedActor(t *testing.T, sys *actor.ActorSystem, name string) *actor.PID {
	t.Helper()
	pid, err := sys.Root.SpawnNamed(actor.PropsFromFunc(func(actor.Context) {}), name)
	if err != nil {
		t.Fatal(err)
	}
	if err := sys.Root.StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	return pid
}

// forwardWrite forwards a write to target through f and returns the
// channel its answer comes on. Its deadline is far: an answer before it
// is news of the target, not the expiry.
func forwardWrite(f *forwarder, target *actor.PID) <-chan answer {
	got := make(chan answer, 1)
	f.send(target, time.Now().Add(time.Minute), false, func(id uint64) any {
		return &messages.ClientRequest{RequestId: id, Command: []byte("put")}
	}, func(a answer) { got <- a })
	return got
}

func wantNotDelivered(t *testing.T, got <-chan answer) {
	t.Helper()
	select {
	case a := <-got:
		if !errors.Is(a.err, errNotDelivered) {
			t.Fatalf("a write forwarded to a stopped actor ended with %v (%v), want %v", a.err, a.msg, errNotDelivered)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write forwarded to a stopped actor got no answer in 10 s: it would end \"outcome unknown\" at its deadline")
	}
}

// A write forwarded to a master's role actor that is gone (the master
// stopping) ends at once as not delivered, so the request is retried
// elsewhere instead of ending "outcome unknown" at its deadline: the
// master's node answers with protoactor's DeadLetterResponse, which the
// guard here takes as the answer to that pending request only. One that
// answers no pending request is still dropped as a lifecycle message.
func TestForwardToStoppedRemoteActorIsNotDelivered(t *testing.T) {
	sysA, _ := startSystem(t)
	sysB, _ := startSystem(t)
	f := newForwarder(sysA, 16)
	t.Cleanup(f.close)
	target := stoppedActor(t, sysB, "proposer")

	wantNotDelivered(t, forwardWrite(f, target))
	// The guard counts the answer once the forwarder took it: the call
	// may end a moment before the count shows.
	testwait.For(t, 10*time.Second, 10*time.Millisecond, "the dead letter counted as an answer", func() error {
		if st := cluster.StatsOf(sysA); st.DeadLetterAnswers != 1 || st.DroppedBy["lifecycle"] != 0 {
			return fmt.Errorf("guard: %d dead letter answers, %d lifecycle drops; want 1 and 0", st.DeadLetterAnswers, st.DroppedBy["lifecycle"])
		}
		return nil
	})

	// A DeadLetterResponse for no pending call (forged, or late) ends
	// nothing and never reaches an actor.
	silent, err := sysB.Root.SpawnNamed(actor.PropsFromFunc(func(actor.Context) {}), "silent")
	if err != nil {
		t.Fatal(err)
	}
	pending := forwardWrite(f, silent)
	for _, token := range []uint32{0, 12345} {
		sysB.Root.Send(&actor.PID{Address: f.inbox.Address, Id: f.inbox.Id, RequestId: token}, &actor.DeadLetterResponse{})
	}
	testwait.For(t, 10*time.Second, 10*time.Millisecond, "the unmatched dead letters to be dropped", func() error {
		if n := cluster.StatsOf(sysA).DroppedBy["lifecycle"]; n != 2 {
			return fmt.Errorf("%d lifecycle drops", n)
		}
		return nil
	})
	select {
	case a := <-pending:
		t.Fatalf("a call to a live actor ended by a stray dead letter: %+v", a)
	default:
	}
	if n := cluster.StatsOf(sysA).DeadLetterAnswers; n != 1 {
		t.Fatalf("%d dead letter answers after the stray ones, want 1", n)
	}
}

// The same on one node: a write sent to this node's own stopped role
// actor ends at once as not delivered.
func TestForwardToStoppedLocalActorIsNotDelivered(t *testing.T) {
	sys, _ := startSystem(t)
	f := newForwarder(sys, 16)
	t.Cleanup(f.close)
	wantNotDelivered(t, forwardWrite(f, stoppedActor(t, sys, "proposer")))
}
