package probe_test

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/livepaxos/livepaxos/probe"
)

// A probe stands in for the client of an actor: it is the sender of the
// request and receives the answer.
func ExampleExpectMsg() {
	sys := quietSystem()
	p := probe.New(sys)
	defer p.Stop()
	greeter := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if name, ok := ctx.Message().(string); ok {
			ctx.Respond("hello, " + name)
		}
	}))

	sys.Root.RequestWithCustomSender(greeter, "probe", p.PID())
	reply, err := probe.ExpectMsg[string](p, time.Second)
	fmt.Println(reply, err)
	fmt.Println(p.ExpectNoMsg(20*time.Millisecond) == nil)
	// Output:
	// hello, probe <nil>
	// true
}

// FishForMessage skips what the test does not care about.
func ExampleFishForMessage() {
	sys := quietSystem()
	p := probe.New(sys)
	defer p.Stop()
	for _, m := range []any{"tick", "tick", 42, "tick"} {
		sys.Root.Send(p.PID(), m)
	}
	m, err := probe.FishForMessage(p, time.Second, func(msg any) bool { _, ok := msg.(int); return ok })
	fmt.Println(m, err)
	// Output: 42 <nil>
}

// An Interceptor changes what an actor's messages do while the actor runs.
func ExampleInterceptor() {
	sys := quietSystem()
	p := probe.New(sys)
	defer p.Stop()
	ic := probe.NewInterceptor()
	relay := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if n, ok := ctx.Message().(int); ok {
			ctx.Send(p.PID(), n)
		}
	}, actor.WithSenderMiddleware(ic.SenderMiddleware())))

	drop := ic.Drop(func(e probe.Event) bool { return e.Message == 1 })
	ic.Duplicate(func(e probe.Event) bool { return e.Message == 2 })
	for n := 1; n <= 3; n++ {
		sys.Root.Send(relay, n)
	}
	for range 3 {
		n, _ := probe.ExpectMsg[int](p, time.Second)
		fmt.Print(n, " ")
	}
	ic.Remove(drop)
	sys.Root.Send(relay, 1)
	n, _ := probe.ExpectMsg[int](p, time.Second)
	fmt.Println(n)
	// Output: 2 2 3 1
}

// quietSystem is an actor system that does not log (examples compare
// stdout).
func quietSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
}
