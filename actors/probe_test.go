package actors_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/probe"
)

// propose writes key=value through replica h, retrying while the outcome is
// unknown (the same put twice writes the same value).
func propose(t *testing.T, ctx context.Context, h *host, key, value string) error {
	t.Helper()
	cmd, err := proto.Marshal(db.Put([]byte(key), []byte(value)))
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err := h.replica.Propose(ctx, h.sys.Root, cmd)
		if !errors.Is(err, actors.ErrOutcomeUnknown) || ctx.Err() != nil {
			return err
		}
	}
}

// Each node runs its replica behind its own Interceptor; cutting the
// master's links on every node isolates it, as a network partition would,
// while its process keeps running and still believes it is master.
func TestPaper4_PartitionedMasterIsReplaced(t *testing.T) {
	ics := map[uint32]*probe.Interceptor{1: probe.NewInterceptor(), 2: probe.NewInterceptor(), 3: probe.NewInterceptor()}
	// received counts protocol messages the receiver middleware saw;
	// accepted counts the acceptors' replies seen by the sender middleware,
	// which leave from the log's goroutine, not from an actor.
	var received, accepted atomic.Int64
	for _, ic := range ics {
		ic.Observe(func(e probe.Event) bool { return e.Stage == probe.StageReceive }, func(e probe.Event) {
			if _, ok := e.Message.(proto.Message); ok {
				received.Add(1)
			}
		})
		ic.Observe(probe.IsType[*messages.Accepted](), func(e probe.Event) {
			if e.Stage == probe.StageSend {
				accepted.Add(1)
			}
		})
	}
	g := newTestGroupWith(t, 3, func(cfg *actors.Config) {
		ic := ics[cfg.NodeID]
		cfg.SenderMiddleware = []actor.SenderMiddleware{ic.SenderMiddleware()}
		cfg.ReceiverMiddleware = []actor.ReceiverMiddleware{ic.ReceiverMiddleware()}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	old := g.waitMaster(5 * time.Second)
	for i := range 20 {
		if err := propose(t, ctx, g.hosts[old], fmt.Sprintf("k%03d", i), fmt.Sprint(i)); err != nil {
			t.Fatalf("put %d through node %d: %v", i, old, err)
		}
	}
	if received.Load() == 0 || accepted.Load() == 0 {
		t.Fatalf("middleware saw %d protocol messages received and %d Accepted sent; want both > 0",
			received.Load(), accepted.Load())
	}

	// Cut the master off from both followers, in both directions, on every
	// node's interceptor.
	for _, ic := range ics {
		for id := range g.hosts {
			if id != old {
				ic.Partition(g.peers[old], g.peers[id])
			}
		}
	}
	next := g.waitMasterOtherThan(old, 5*time.Second)
	for i := 20; i < 40; i++ {
		// The two left may still settle who is master (a duel of
		// candidates): a client goes to whoever is, as the old one stays
		// cut off.
		waitFor(t, 10*time.Second, func() error {
			if next = g.masterOtherThan(old); next == 0 {
				return errors.New("no master on the majority side")
			}
			return propose(t, ctx, g.hosts[next], fmt.Sprintf("k%03d", i), fmt.Sprint(i))
		})
	}
	if n := g.hosts[old].kv.Len(); n != 20 {
		t.Fatalf("the isolated old master holds %d keys, want 20", n)
	}
	dropped := uint64(0)
	for _, ic := range ics {
		dropped += ic.Dropped()
	}
	if dropped == 0 {
		t.Fatal("the partition dropped nothing")
	}

	for _, ic := range ics {
		ic.Heal()
	}
	waitFor(t, 10*time.Second, func() error {
		if s := g.hosts[old].replica.Status(); s.IsMaster {
			return fmt.Errorf("old master %d still reports mastership (ballot %d)", old, s.Ballot)
		}
		want := g.hosts[next].kv
		for id, h := range g.hosts {
			if h.kv.Len() != 40 || h.kv.Hash() != want.Hash() {
				return fmt.Errorf("node %d holds %d keys (want 40), hash equal: %v", id, h.kv.Len(), h.kv.Hash() == want.Hash())
			}
		}
		return nil
	})
	// The group still takes writes, and the old master forwards nobody
	// astray: it answers not-master.
	if err := propose(t, ctx, g.hosts[old], "after", "heal"); !errors.Is(err, actors.ErrNotMaster) {
		t.Fatalf("put through the old master after healing: err = %v, want ErrNotMaster", err)
	}
	m := g.waitMaster(10 * time.Second) // a ballot boost may be electing anew just now
	if err := propose(t, ctx, g.hosts[m], "after", "heal"); err != nil {
		t.Fatalf("put through master %d after healing: %v", m, err)
	}
}
