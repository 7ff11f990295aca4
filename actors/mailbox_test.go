package actors_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/messages"
)

// gate is receiver middleware that, once shut, holds the actor it is on
// in its next message until opened: a core that fell behind.
type gate struct {
	mu      sync.Mutex
	shut    chan struct{} // nil: open
	blocked chan struct{} // closed once a message waits at the shut gate
}

func (g *gate) close() (blocked <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shut, g.blocked = make(chan struct{}), make(chan struct{})
	return g.blocked
}

// holdCore shuts the gate and waits until the core is held at it (on its
// next message: a tick at the latest).
func (g *gate) holdCore(t *testing.T) {
	t.Helper()
	select {
	case <-g.close():
	case <-time.After(5 * time.Second):
		t.Fatal("the core took no message (its ticks)")
	}
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut != nil {
		close(g.shut)
		g.shut = nil
	}
}

func (g *gate) middleware(next actor.ReceiverFunc) actor.ReceiverFunc {
	return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
		g.mu.Lock()
		shut, blocked := g.shut, g.blocked
		g.blocked = nil
		g.mu.Unlock()
		if shut != nil {
			if blocked != nil {
				close(blocked)
			}
			<-shut
		}
		next(c, env)
	}
}

// gatedMaster starts a one-node group whose core runs behind a gate, with
// configure changing its Config first, and waits until it is master.
func gatedMaster(t *testing.T, configure func(*actors.Config)) (*host, *gate) {
	t.Helper()
	gt := &gate{}
	g := newTestGroupWith(t, 1, func(cfg *actors.Config) {
		configure(cfg)
		cfg.ReceiverMiddleware = append(cfg.ReceiverMiddleware, gt.middleware)
	})
	g.waitMaster(10 * time.Second)
	return g.hosts[1], gt
}

// A replica whose core falls behind (here held by middleware) holds at
// most MaxMailboxMessages in its mailbox (issue 15, item 4): past it,
// clients are answered at once with ErrOverloaded (a request through the
// peer port, the embedding API, the Go client through the client API),
// and peers' protocol messages are dropped and counted. Once the core
// catches up, it serves again.
func TestMailboxBoundAnswersClientsOverloadedAndCountsShedPeerMessages(t *testing.T) {
	const bound = 8
	h, gt := gatedMaster(t, func(cfg *actors.Config) { cfg.MaxMailboxMessages = bound })
	ctx := context.Background()
	if err := propose(t, ctx, h, "a", "1"); err != nil {
		t.Fatalf("propose before the core was held: %v", err)
	}
	core := h.replica.ProposerPID()
	gt.holdCore(t)
	defer gt.open()

	// Peers' messages past the bound are dropped, not queued.
	const prepares = 3 * bound
	for range prepares {
		h.sys.Root.Send(core, &messages.Prepare{Ballot: 1, From: 2})
	}

	// A client's request through the peer port is answered at once.
	res, err := h.sys.Root.RequestFuture(core, &messages.ClientRequest{RequestId: 42, Command: []byte("x")}, 2*time.Second).Result()
	if err != nil {
		t.Fatalf("a request to the held core got no answer: %v", err)
	}
	if resp, ok := res.(*messages.ClientResponse); !ok || resp.Code != messages.ErrorCode_ERROR_CODE_OVERLOADED || resp.RequestId != 42 {
		t.Fatalf("answer %v, want ERROR_CODE_OVERLOADED for request 42", res)
	}

	// The embedding API refuses before it sends.
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := propose(t, cctx, h, "b", "2"); !errors.Is(err, actors.ErrOverloaded) || errors.Is(err, actors.ErrOutcomeUnknown) {
		t.Fatalf("Propose at a full mailbox: %v, want ErrOverloaded (nothing was proposed)", err)
	}

	// The Go client, through the client API, sees ErrOverloaded.
	c, err := client.New(client.Config{Endpoints: []string{h.clientAddr}, AttemptTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Put(cctx, []byte("c"), []byte("3")); !errors.Is(err, client.ErrOverloaded) {
		t.Fatalf("client Put at a full mailbox: %v, want client.ErrOverloaded", err)
	}

	gt.open()
	waitFor(t, 10*time.Second, func() error {
		if n := h.replica.Status().PeerDrops["mailbox_full"]; n < prepares-bound {
			return errors.New("shed Prepares not counted yet")
		}
		return nil
	})
	// Held for seconds, the master may have stepped down: it serves
	// again once it is master again.
	waitFor(t, 10*time.Second, func() error { return propose(t, ctx, h, "d", "4") })
}

// Counting messages alone does not bound memory: large messages (entries,
// client commands) are also counted in bytes while they wait, past
// MaxMailboxBytes a large peer message is dropped and a client's large
// request answered overloaded, while small ones still queue; one large
// message alone is always taken, so no legal message is refused for its
// own size.
func TestMailboxBoundsTheBytesOfLargeMessages(t *testing.T) {
	h, gt := gatedMaster(t, func(cfg *actors.Config) { cfg.MaxMailboxBytes = 1 << 20 })
	core := h.replica.ProposerPID()
	gt.holdCore(t)
	defer gt.open()

	big := func(instance uint64) *messages.Accept {
		return &messages.Accept{From: 2, Ballot: 2, Entries: []*messages.Entry{{Instance: instance, Ballot: 2,
			Value: &messages.Value{Commands: []*messages.Command{{Payload: make([]byte, 600<<10)}}}}}}
	}
	// The first 600 KiB Accept queues alone; the next ones would pass
	// 1 MiB and are dropped; small messages still queue.
	for i := range 4 {
		h.sys.Root.Send(core, big(uint64(100+i)))
	}
	h.sys.Root.Send(core, &messages.Prepare{Ballot: 1, From: 2})
	res, err := h.sys.Root.RequestFuture(core, &messages.ClientRequest{RequestId: 7, Command: make([]byte, 600<<10)}, 2*time.Second).Result()
	if err != nil {
		t.Fatalf("a large request to the held core got no answer: %v", err)
	}
	if resp, ok := res.(*messages.ClientResponse); !ok || resp.Code != messages.ErrorCode_ERROR_CODE_OVERLOADED {
		t.Fatalf("answer %v, want ERROR_CODE_OVERLOADED", res)
	}
	gt.open()
	waitFor(t, 10*time.Second, func() error {
		if n := h.replica.Status().PeerDrops["mailbox_full"]; n != 3 {
			return fmt.Errorf("%d large Accepts shed, want 3", n)
		}
		return nil
	})
}
