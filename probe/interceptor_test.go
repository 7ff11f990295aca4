package probe_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/livepaxos/livepaxos/probe"
)

// forwarder sends every *ping it receives on to target, through its own
// sender middleware.
func forwarder(target *actor.PID, mw ...actor.SenderMiddleware) *actor.Props {
	return actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*ping); ok {
			ctx.Send(target, m)
		}
	}, actor.WithSenderMiddleware(mw...))
}

func expectPings(t *testing.T, p *probe.TestProbe, want ...int) {
	t.Helper()
	for _, n := range want {
		m, err := probe.ExpectMsg[*ping](p, time.Second)
		if err != nil || m.n != n {
			t.Fatalf("want ping %d, got %v, %v", n, m, err)
		}
	}
}

func TestInterceptorSenderRules(t *testing.T) {
	sys := quietSystem()
	p := probe.New(sys)
	defer p.Stop()
	ic := probe.NewInterceptor()
	fw := sys.Root.Spawn(forwarder(p.PID(), ic.SenderMiddleware()))

	var seen atomic.Int64
	ic.Observe(probe.IsType[*ping](), func(e probe.Event) {
		if e.Stage == probe.StageSend && e.Target.Equal(p.PID()) {
			seen.Add(1)
		}
	})
	odd := func(e probe.Event) bool { m, ok := e.Message.(*ping); return ok && m.n%2 == 1 }
	drop := ic.Drop(odd)
	for i := range 4 {
		sys.Root.Send(fw, &ping{n: i})
	}
	expectPings(t, p, 0, 2)
	if err := p.ExpectNoMsg(30 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if seen.Load() != 4 || ic.Dropped() != 2 {
		t.Fatalf("observed %d, dropped %d; want 4, 2", seen.Load(), ic.Dropped())
	}

	ic.Remove(drop)
	dup := ic.Duplicate(odd)
	sys.Root.Send(fw, &ping{n: 1})
	sys.Root.Send(fw, &ping{n: 2})
	expectPings(t, p, 1, 1, 2)
	ic.Remove(dup)

	ic.Delay(100*time.Millisecond, odd)
	start := time.Now()
	sys.Root.Send(fw, &ping{n: 1})
	sys.Root.Send(fw, &ping{n: 2})
	expectPings(t, p, 2, 1) // the delayed one is overtaken
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("delayed message arrived after %v", el)
	}
	ic.Clear()
	sys.Root.Send(fw, &ping{n: 5})
	expectPings(t, p, 5)
}

func TestInterceptorReceiverRules(t *testing.T) {
	sys := quietSystem()
	p := probe.New(sys)
	defer p.Stop()
	ic := probe.NewInterceptor()
	// An actor behind receiver middleware forwards what it handles.
	target := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*ping); ok {
			ctx.Send(p.PID(), m)
		}
	}, actor.WithReceiverMiddleware(ic.ReceiverMiddleware())))

	ic.Drop(func(e probe.Event) bool { m, ok := e.Message.(*ping); return ok && m.n == 0 })
	ic.Delay(80*time.Millisecond, func(e probe.Event) bool { m, ok := e.Message.(*ping); return ok && m.n == 1 })
	ic.Duplicate(func(e probe.Event) bool {
		m, ok := e.Message.(*ping)
		return ok && e.Stage == probe.StageReceive && m.n == 2
	})
	for i := range 4 {
		sys.Root.Send(target, &ping{n: i})
	}
	expectPings(t, p, 2, 2, 3, 1)
	if err := p.ExpectNoMsg(30 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

func TestInterceptorPartitionByAddress(t *testing.T) {
	// Without remoting every system is "nonhost", so stand the nodes in
	// with PIDs that carry made-up addresses: the sender middleware sees
	// the target's address and drops it before delivery would be tried.
	sys := quietSystem()
	here := sys.Address()
	ic := probe.NewInterceptor()
	var delivered atomic.Int64
	root := actor.NewRootContext(sys, nil, ic.SenderMiddleware(),
		func(next actor.SenderFunc) actor.SenderFunc {
			return func(ctx actor.SenderContext, target *actor.PID, env *actor.MessageEnvelope) {
				delivered.Add(1) // stands in for the network
			}
		})
	a, b := actor.NewPID("node-a:1", "x"), actor.NewPID("node-b:1", "x")

	ic.Partition(here, "node-a:1")
	root.Send(a, &ping{})
	root.Send(b, &ping{})
	if delivered.Load() != 1 {
		t.Fatalf("partitioned: delivered %d, want 1", delivered.Load())
	}
	ic.Block(here, "node-b:1")
	root.Send(b, &ping{})
	if delivered.Load() != 1 {
		t.Fatalf("blocked: delivered %d, want 1", delivered.Load())
	}
	ic.Heal()
	root.Send(a, &ping{})
	root.Send(b, &ping{})
	if delivered.Load() != 3 || ic.Dropped() != 2 {
		t.Fatalf("healed: delivered %d dropped %d, want 3 and 2", delivered.Load(), ic.Dropped())
	}
}
