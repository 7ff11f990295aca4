package probe

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Received is one message a TestProbe received, with the sender protoactor
// reported (nil for a plain Send).
type Received struct {
	Message any
	Sender  *actor.PID
}

// TestProbe is an actor that records every user message it receives, in
// order, for a test to assert on. Lifecycle messages (Started, Stopping, ...)
// are not recorded. Create it with New; it is safe for concurrent use.
type TestProbe struct {
	sys *actor.ActorSystem
	pid *actor.PID

	mu     sync.Mutex
	queue  []Received
	signal chan struct{} // holds a token while queue may be non-empty
}

// New spawns a TestProbe in sys under a unique name ("probe-..."). Stop it
// when done.
func New(sys *actor.ActorSystem) *TestProbe {
	p := &TestProbe{sys: sys, signal: make(chan struct{}, 1)}
	p.pid = sys.Root.SpawnPrefix(actor.PropsFromFunc(p.receive), "probe-")
	return p
}

// PID returns the probe's PID: use it as a sender or a reply address.
func (p *TestProbe) PID() *actor.PID { return p.pid }

// System returns the actor system the probe runs in.
func (p *TestProbe) System() *actor.ActorSystem { return p.sys }

// Stop stops the probe actor and waits until it has stopped. Messages
// already received can still be read.
func (p *TestProbe) Stop() {
	p.sys.Root.StopFuture(p.pid).Wait()
}

// Len returns how many received messages have not been read yet.
func (p *TestProbe) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}

// Reply sends msg to the sender of r, with the probe as the sender. It does
// nothing if r has no sender.
func (p *TestProbe) Reply(r Received, msg any) {
	if r.Sender == nil {
		return
	}
	p.sys.Root.RequestWithCustomSender(r.Sender, msg, p.pid)
}

func (p *TestProbe) receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case actor.SystemMessage, actor.AutoReceiveMessage:
		return
	}
	p.mu.Lock()
	p.queue = append(p.queue, Received{Message: ctx.Message(), Sender: ctx.Sender()})
	p.mu.Unlock()
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

// Next returns the oldest unread message, waiting up to timeout for one. It
// returns ErrTimeout if none arrives.
func (p *TestProbe) Next(timeout time.Duration) (Received, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		if len(p.queue) > 0 {
			r := p.queue[0]
			p.queue[0] = Received{}
			p.queue = p.queue[1:]
			more := len(p.queue) > 0
			p.mu.Unlock()
			if more {
				select {
				case p.signal <- struct{}{}:
				default:
				}
			}
			return r, nil
		}
		p.mu.Unlock()
		select {
		case <-p.signal:
		case <-timer.C:
			return Received{}, timeoutError(timeout)
		}
	}
}
