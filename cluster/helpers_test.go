package cluster

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/livepaxos/livepaxos/internal/testwait"
	"github.com/livepaxos/livepaxos/messages"
)

// startNode builds a system with NewSystem (on a free loopback port unless
// opts.Listen says otherwise) and stops it when the test ends.
// Shutdown(false): a graceful stop can wait 10 s for a reconnecting writer.
// (Race-detector clean since protoactor's Remote.Start no longer writes
// gRPC's global logger: third_party/README.md.)
func startNode(t *testing.T, opts Options) (*actor.ActorSystem, string) {
	t.Helper()
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	sys, rem, addr, err := NewSystem(opts)
	if err != nil {
		t.Fatalf("NewSystem(%+v): %v", opts, err)
	}
	t.Cleanup(func() {
		rem.Shutdown(false)
		sys.Shutdown()
	})
	return sys, addr
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// probe counts the Prepares it receives, answers StatusRequest with that
// count (in LastApplied), echoes ClientRequest.Command as
// ClientResponse.Result, and answers a Command with its payload size (in a
// small StatusResponse.LastApplied).
type probe struct{ prepares *atomic.Int64 }

func (p *probe) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.Prepare:
		p.prepares.Add(1)
	case *messages.StatusRequest:
		ctx.Respond(&messages.StatusResponse{LastApplied: uint64(p.prepares.Load())})
	case *messages.ClientRequest:
		ctx.Respond(&messages.ClientResponse{RequestId: m.RequestId, Result: m.Command})
	case *messages.Command:
		ctx.Respond(&messages.StatusResponse{LastApplied: uint64(len(m.Payload))})
	}
}

// spawnProbe spawns a probe under name on sys, stopped when the test ends,
// and returns its PID and Prepare counter.
func spawnProbe(t testing.TB, sys *actor.ActorSystem, name string) (*actor.PID, *atomic.Int64) {
	t.Helper()
	n := new(atomic.Int64)
	pid, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &probe{prepares: n} }), name)
	if err != nil {
		t.Fatalf("spawn %s: %v", name, err)
	}
	t.Cleanup(func() { sys.Root.Stop(pid) })
	return pid, n
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, within, 5*time.Millisecond, what, func() error {
		if !cond() {
			return errors.New("not yet")
		}
		return nil
	})
}
