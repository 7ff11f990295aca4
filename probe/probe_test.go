package probe_test

import (
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/livepaxos/livepaxos/probe"
)

type ping struct{ n int }
type pong struct{ n int }

// echo answers every ping with a pong to the sender.
func echo(ctx actor.Context) {
	if m, ok := ctx.Message().(*ping); ok && ctx.Sender() != nil {
		ctx.Respond(&pong{n: m.n})
	}
}

func TestExpectMsg(t *testing.T) {
	sys := quietSystem()
	p := probe.New(sys)
	defer p.Stop()
	e := sys.Root.Spawn(actor.PropsFromFunc(echo))

	sys.Root.RequestWithCustomSender(e, &ping{n: 7}, p.PID())
	got, err := probe.ExpectMsg[*pong](p, time.Second)
	if err != nil || got.n != 7 {
		t.Fatalf("ExpectMsg = %v, %v; want pong 7", got, err)
	}

	// The wrong type first is an error, and the message is consumed.
	sys.Root.Send(p.PID(), &ping{n: 1})
	if _, err := probe.ExpectMsg[*pong](p, time.Second); !errors.Is(err, probe.ErrUnexpected) {
		t.Fatalf("wrong type: err = %v, want ErrUnexpected", err)
	}
	if _, err := probe.ExpectMsg[*pong](p, 20*time.Millisecond); !errors.Is(err, probe.ErrTimeout) {
		t.Fatalf("nothing sent: err = %v, want ErrTimeout", err)
	}
}

func TestSenderIsRecorded(t *testing.T) {
	sys := quietSystem()
	p, q := probe.New(sys), probe.New(sys)
	defer p.Stop()
	defer q.Stop()
	if p.PID().Id == q.PID().Id {
		t.Fatalf("two probes share the name %q", p.PID().Id)
	}
	sys.Root.RequestWithCustomSender(p.PID(), "hello", q.PID())
	r, err := p.Next(time.Second)
	if err != nil || r.Message != "hello" || !r.Sender.Equal(q.PID()) {
		t.Fatalf("Next = %+v, %v", r, err)
	}
	p.Reply(r, "world")
	if s, err := probe.ExpectMsg[string](q, time.Second); err != nil || s != "world" {
		t.Fatalf("reply = %q, %v", s, err)
	}
}

func TestExpectNoMsg(t *testing.T) {
	sys := quietSystem()
	p := probe.New(sys)
	defer p.Stop()
	if err := p.ExpectNoMsg(30 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(10*time.Millisecond, func() { sys.Root.Send(p.PID(), &ping{}) })
	if err := p.ExpectNoMsg(time.Second); !errors.Is(err, probe.ErrUnexpected) {
		t.Fatalf("err = %v, want ErrUnexpected", err)
	}
}

func TestFishForMessage(t *testing.T) {
	sys := quietSystem()
	p := probe.New(sys)
	defer p.Stop()
	for i := range 5 {
		sys.Root.Send(p.PID(), &ping{n: i})
	}
	sys.Root.Send(p.PID(), &pong{n: 99})
	m, err := probe.FishForMessage(p, time.Second, func(msg any) bool {
		pg, ok := msg.(*ping)
		return ok && pg.n == 3
	})
	if err != nil || m.(*ping).n != 3 {
		t.Fatalf("fish = %v, %v", m, err)
	}
	// Skipped messages are gone; the rest stay in order.
	if r, err := probe.ExpectMsg[*ping](p, time.Second); err != nil || r.n != 4 {
		t.Fatalf("next = %v, %v", r, err)
	}
	if _, err := probe.FishForMessage(p, 30*time.Millisecond, func(any) bool { return false }); !errors.Is(err, probe.ErrTimeout) {
		t.Fatalf("no match: err = %v, want ErrTimeout", err)
	}
}
