package server

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/messages"
)

// Why a forwarded request got no answer. The difference matters for a
// write: one never delivered may be sent elsewhere, one that got no
// answer may have been proposed.
var (
	errNotDelivered = errors.New("not delivered")
	errNoAnswer     = errors.New("no answer in time")
)

// answer is one role actor's reply to a forwarded request.
type answer struct {
	msg any // *messages.ClientResponse, *messages.SnapshotResponse or *messages.CheckResponse
	err error
}

// pendingCall is one request waiting for its answer.
type pendingCall struct {
	addr     string // the target's address, to end the call if it disconnects
	deadline time.Time
	done     func(answer) // called exactly once, on whichever goroutine ends the call
	// retryable: sending it again is harmless (it changes nothing), so a
	// dead letter may end it as errNotDelivered. A write is never: see
	// inbox.SendUserMessage.
	retryable bool
}

// forwarder sends requests to role actors, this node's or the master's over
// the peer transport, and hands each answer to its caller. Answers come to
// one inbox: a bare protoactor Process registered in the node's system,
// matched by request id. It is cheaper than a protoactor future (a
// registered PID and a timer) per request, and the answer is handed over on
// the goroutine that delivers it, with no mailbox in between.
type forwarder struct {
	sys   *actor.ActorSystem
	inbox *actor.PID
	ids   atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]*pendingCall
	// maxPending bounds the calls waiting at once; more are refused at
	// once rather than queued.
	maxPending int

	stop chan struct{}
	once sync.Once
	// undoDeadLetters stops the guard handing this forwarder the dead
	// letter answers that come from the network.
	undoDeadLetters func()

	// down holds the peer addresses whose connection protoactor reported
	// terminated and not connected since: a write is not forwarded there
	// (see Server.route), since whether a message sent meanwhile arrived
	// cannot be told.
	down sync.Map // address -> struct{}
}

// errTooManyPending refuses a request while maxPending calls wait.
var errTooManyPending = errors.New("too many requests in flight at this node")

func newForwarder(sys *actor.ActorSystem, maxPending int) *forwarder {
	f := &forwarder{sys: sys, pending: make(map[uint64]*pendingCall), maxPending: maxPending, stop: make(chan struct{})}
	f.inbox, _ = sys.ProcessRegistry.Add(&inbox{f: f}, "client-api-inbox-"+sys.ProcessRegistry.NextId())
	// A request whose target actor is gone on the master's node is
	// answered from there with a DeadLetterResponse, which the guard
	// drops with protoactor's other messages unless taken here.
	f.undoDeadLetters, _ = cluster.OnDeadLetterResponse(sys, f.deadLetterFromPeer)
	// A peer whose connection broke will not answer the calls it has: end
	// them at once (a write among them may have been proposed).
	sys.EventStream.Subscribe(func(evt any) {
		switch e := evt.(type) {
		case *remote.EndpointTerminatedEvent:
			f.down.Store(e.Address, struct{}{})
			f.failAddress(e.Address, func(*pendingCall) error { return errNoAnswer })
		case *remote.EndpointConnectedEvent:
			f.down.Delete(e.Address)
		}
	})
	go f.expireLoop()
	return f
}

// close ends every call in flight and stops the expiry loop.
func (f *forwarder) close() {
	f.once.Do(func() {
		close(f.stop)
		f.undoDeadLetters()
		f.mu.Lock()
		calls := f.pending
		f.pending = make(map[uint64]*pendingCall)
		f.mu.Unlock()
		for _, c := range calls {
			c.done(answer{err: errNoAnswer})
		}
		f.sys.ProcessRegistry.Remove(f.inbox)
	})
}

// isDown reports whether protoactor last reported addr's connection
// terminated.
func (f *forwarder) isDown(addr string) bool {
	_, down := f.down.Load(addr)
	return down
}

// send delivers the message build makes for a fresh request id to target
// and calls done once with the answer, or with errNotDelivered (only when
// retryable) or errNoAnswer by the deadline. done must not block.
func (f *forwarder) send(target *actor.PID, deadline time.Time, retryable bool, build func(id uint64) any, done func(answer)) {
	id := f.ids.Add(1)
	if uint32(id) == 0 {
		id = f.ids.Add(1) // 0 is "no request id" in a PID: see sender
	}
	f.mu.Lock()
	if len(f.pending) >= f.maxPending {
		f.mu.Unlock()
		done(answer{err: errTooManyPending})
		return
	}
	f.pending[id] = &pendingCall{addr: target.Address, deadline: deadline, done: done, retryable: retryable}
	f.mu.Unlock()
	f.sys.Root.RequestWithCustomSender(target, build(id), f.sender(id))
}

// sender is the inbox's PID with the low 32 bits of request id in its
// RequestId. Answers carry their request id in the message; a dead letter
// does not (see inbox.SendUserMessage), but protoactor sends it to this
// PID, RequestId included, across the network too (the endpoint writer
// and reader carry a PID's RequestId), so it tells which call it ends.
func (f *forwarder) sender(id uint64) *actor.PID {
	return &actor.PID{Address: f.inbox.Address, Id: f.inbox.Id, RequestId: uint32(id)}
}

// callID is the request id whose low 32 bits are token: the newest issued
// with them. Calls pending at once are far fewer than 2^32 ids apart.
func (f *forwarder) callID(token uint32) uint64 {
	newest := f.ids.Load()
	return newest - uint64(uint32(newest)-token)
}

// notDelivered ends the call whose sender PID carried token as not
// delivered, and reports whether one was pending.
func (f *forwarder) notDelivered(token uint32) bool {
	if token == 0 {
		return false
	}
	id := f.callID(token)
	f.mu.Lock()
	c := f.pending[id]
	delete(f.pending, id)
	f.mu.Unlock()
	if c == nil {
		return false
	}
	c.done(answer{err: errNotDelivered})
	return true
}

// deadLetterFromPeer takes a DeadLetterResponse that came from the
// network (cluster.OnDeadLetterResponse): the master's node found no
// actor for a request this node forwarded, so the request reached no
// replica, and the call ends as not delivered, even for a write: it may
// be sent again elsewhere. Anything but a pending call's answer is left
// to the guard to drop.
func (f *forwarder) deadLetterFromPeer(target *actor.PID) bool {
	if target.Id != f.inbox.Id || target.Address != f.inbox.Address {
		return false
	}
	return f.notDelivered(target.RequestId)
}

// finish ends call id with a.
func (f *forwarder) finish(id uint64, a answer) {
	f.mu.Lock()
	c := f.pending[id]
	delete(f.pending, id)
	f.mu.Unlock()
	if c != nil {
		c.done(a)
	}
}

// failAddress ends every call in flight to addr, each with the error why
// gives it.
func (f *forwarder) failAddress(addr string, why func(*pendingCall) error) {
	f.mu.Lock()
	var failed []*pendingCall
	for id, c := range f.pending {
		if c.addr == addr {
			failed = append(failed, c)
			delete(f.pending, id)
		}
	}
	f.mu.Unlock()
	for _, c := range failed {
		c.done(answer{err: why(c)})
	}
}

// expireInterval is how often calls past their deadline are ended: one
// sweep for all of them instead of a timer per request.
const expireInterval = 25 * time.Millisecond

func (f *forwarder) expireLoop() {
	t := time.NewTicker(expireInterval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case now := <-t.C:
			f.mu.Lock()
			var expired []*pendingCall
			for id, c := range f.pending {
				if !now.Before(c.deadline) {
					expired = append(expired, c)
					delete(f.pending, id)
				}
			}
			f.mu.Unlock()
			for _, c := range expired {
				c.done(answer{err: errNoAnswer})
			}
		}
	}
}

// inbox is the Process answers come to.
type inbox struct{ f *forwarder }

func (in *inbox) SendUserMessage(pid *actor.PID, message any) {
	_, msg, _ := actor.UnwrapEnvelope(message)
	switch m := msg.(type) {
	case *messages.ClientResponse:
		in.f.finish(m.RequestId, answer{msg: m})
	case *messages.SnapshotResponse:
		in.f.finish(m.RequestId, answer{msg: m})
	case *messages.CheckResponse:
		in.f.finish(m.RequestId, answer{msg: m})
	case *actor.DeadLetterResponse:
		// The message it answers reached no actor: its target does not
		// exist on this node, or this node's endpoint writer had no
		// connection to send it on (it then names the target). (One from
		// the network is taken by the guard, see deadLetterFromPeer.)
		// Which message, the response does not say, but the PID it was
		// sent to does: the request id in its RequestId (see sender).
		// Every producer of a DeadLetterResponse in this protoactor (the
		// dead-letter process, the endpoint writer without a stream, and
		// the patched writer's drops at a full queue or for a message too
		// large for any batch: third_party/protoactor-go/remote/
		// writer_limits.go) makes it for a message that was handed neither
		// to an actor nor to the network, so the call ends as not
		// delivered, a write too. (A batch whose gRPC send fails may have
		// partly arrived: the writer stashes it and stops, which drops
		// the stash; those calls end with the broken stream's
		// EndpointTerminatedEvent, outcome unknown, or at their deadline.)
		if in.f.notDelivered(pid.GetRequestId()) {
			return
		}
		// Without a request id (none sent by this forwarder lacks one),
		// only the target's address is known, and the calls in flight to
		// it may include some sent over a connection made since, which
		// did arrive. So only a call that is harmless to repeat ends as
		// not delivered; a write ends with no answer (outcome unknown).
		if m.Target != nil {
			in.f.failAddress(m.Target.Address, func(c *pendingCall) error {
				if c.retryable {
					return errNotDelivered
				}
				return errNoAnswer
			})
		}
	}
}

func (in *inbox) SendSystemMessage(*actor.PID, any) {}
func (in *inbox) Stop(pid *actor.PID)               { in.f.sys.ProcessRegistry.Remove(pid) }
