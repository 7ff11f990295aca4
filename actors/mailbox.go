package actors

import (
	"fmt"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/core"
	"github.com/livepaxos/livepaxos/messages"
)

// Bounded mailboxes (issue 15, item 4): the core's and the snapshot
// device's actors take messages from the network, and protoactor's
// default mailbox grows without bound, so a flood (or a stalled disk
// under ordinary load) could drive the node's memory. protoactor's own
// bounded mailboxes do not fit: actor.Bounded blocks the sender (a gRPC
// stream goroutine, or the core itself) when full, and
// actor.BoundedDropping silently drops the oldest message, which may be a
// client's request or the log's durability report.
//
// So each of these actors gets the default mailbox behind a door:
// PostUserMessage, on the sender's goroutine, looks at the queue's length
// before queueing, and past Config.MaxMailboxMessages (or, for the kinds
// that can be large, Config.MaxMailboxBytes of them waiting) it turns a message
// from outside away instead: a client's request is answered at once with
// ERROR_CODE_OVERLOADED (ErrOverloaded; RESOURCE_EXHAUSTED on the client
// API), a peer's protocol message is dropped and counted
// (dropMailboxFull in StatusResponse.PeerDrops): Paxos retransmits. The
// node's own messages (ticks, durability reports, local requests, snapshot
// device traffic) always queue: they are bounded by the node's own work,
// and dropping one could stall the replica. System messages (Stop,
// Restart, ...) go to a separate queue protoactor never bounds.
//
// The length check and the push are not one atomic step: concurrent
// senders can overshoot the bound by one message each, which bounds the
// overshoot by the number of sending goroutines.

// DefaultMaxMailboxMessages is Config.MaxMailboxMessages's default: far
// above what a healthy core holds (it drains its mailbox in a few
// milliseconds), so only a core that fell behind sheds.
const DefaultMaxMailboxMessages = 65536

// dropMailboxFull counts peer messages shed at a full mailbox.
const dropMailboxFull core.DropReason = "mailbox_full"

// DefaultMaxMailboxBytes is Config.MaxMailboxBytes's default. A count
// alone does not bound memory: 65,536 Accepts of 4 MiB each would be
// 256 GiB. So the messages that can be large (sizeOfLarge) are also
// counted in bytes while they wait.
const DefaultMaxMailboxBytes = 256 << 20

// boundedMailbox is a mailbox whose user messages past limit, or past
// maxBytes of the large kinds, are offered to shed, which returns false
// for a message that must queue anyway.
type boundedMailbox struct {
	actor.Mailbox
	limit    int
	maxBytes int64
	shed     func(msg any) bool
	// bytes is the size of the large messages queued: added when one is
	// posted, taken off when the actor is handed it (countingInvoker).
	bytes atomic.Int64
}

func (m *boundedMailbox) PostUserMessage(msg any) {
	// A large message is turned away only if others wait already: one
	// alone always queues, so no legal message is shed for its own size.
	size := sizeOfLarge(msg)
	if (m.Mailbox.UserMessageCount() >= m.limit || size > 0 && m.overBytes(size)) && m.shed(msg) {
		return
	}
	m.bytes.Add(size)
	m.Mailbox.PostUserMessage(msg)
}

// RegisterHandlers hands the mailbox an invoker that takes each large
// message's size off the count as the actor gets it.
func (m *boundedMailbox) RegisterHandlers(invoker actor.MessageInvoker, dispatcher actor.Dispatcher) {
	m.Mailbox.RegisterHandlers(&countingInvoker{MessageInvoker: invoker, m: m}, dispatcher)
}

type countingInvoker struct {
	actor.MessageInvoker
	m *boundedMailbox
}

func (c *countingInvoker) InvokeUserMessage(msg any) {
	c.m.bytes.Add(-sizeOfLarge(msg))
	c.MessageInvoker.InvokeUserMessage(msg)
}

// sizeOfLarge is the encoded size of a message of a kind that can be
// large (entries, snapshot chunks, client commands), 0 for any other:
// those are small, and proto.Size on every one would cost the hot path.
// The same message gives the same size posted and handed over.
func sizeOfLarge(msg any) int64 {
	switch m := actor.UnwrapEnvelopeMessage(msg).(type) {
	case *messages.Accept, *messages.Promise, *messages.CatchupResponse, *messages.SnapshotChunk,
		*messages.ClientRequest, *messages.ReadRequest:
		return int64(proto.Size(m.(proto.Message)))
	}
	return 0
}

func (m *boundedMailbox) overBytes(size int64) bool {
	queued := m.bytes.Load()
	return queued > 0 && queued+size > m.maxBytes
}

// full reports whether the mailbox is at its bound of messages or bytes.
func (m *boundedMailbox) full() bool {
	return m.Mailbox.UserMessageCount() >= m.limit || m.bytes.Load() >= m.maxBytes
}

// mailbox returns the props option that gives an actor of this replica a
// bounded mailbox shedding with shed; each mailbox made is handed to made
// (nil: not kept).
func (r *Replica) mailbox(shed func(sys *actor.ActorSystem, msg any) bool, made func(*boundedMailbox)) actor.PropsOption {
	return actor.WithMailbox(func() actor.Mailbox {
		r.mu.Lock()
		sys := r.sys // set by the parent before it spawns its children
		r.mu.Unlock()
		m := &boundedMailbox{Mailbox: actor.Unbounded()(), limit: r.cfg.MaxMailboxMessages, maxBytes: r.cfg.MaxMailboxBytes,
			shed: func(msg any) bool { return shed(sys, msg) }}
		if made != nil {
			made(m)
		}
		return m
	})
}

// overloaded is the refusal of a request turned away at a full mailbox.
func (r *Replica) overloaded() error {
	return fmt.Errorf("%w: the replica's mailbox is full (%d messages or %d MiB at most); try again shortly", ErrOverloaded, r.cfg.MaxMailboxMessages, r.cfg.MaxMailboxBytes>>20)
}

// shedCore turns away a message from outside at the core's full mailbox:
// it answers a client's request as overloaded, drops and counts a peer's
// protocol message, and returns false for the node's own messages.
func (r *Replica) shedCore(sys *actor.ActorSystem, msg any) bool {
	m, sender := actor.UnwrapEnvelopeMessage(msg), actor.UnwrapEnvelopeSender(msg)
	var answer proto.Message
	switch m := m.(type) {
	case *messages.ClientRequest:
		answer = r.refusal(m.RequestId, r.overloaded())
	case *messages.ReadRequest:
		answer = r.refusal(m.RequestId, r.overloaded())
	case *messages.MembersRequest:
		answer = r.refusal(m.RequestId, r.overloaded())
	case *messages.KeepAliveRequest:
		answer = r.refusal(m.RequestId, r.overloaded())
	case *messages.CheckRequest:
		answer = &messages.CheckResponse{RequestId: m.RequestId, Error: r.overloaded().Error()}
	case *messages.SnapshotRequest:
		answer = &messages.SnapshotResponse{RequestId: m.RequestId, NodeId: r.cfg.NodeID, Error: r.overloaded().Error()}
	case *messages.StatusRequest:
		// The status last published (every few ticks) is an answer.
		if s := r.status.Load(); s != nil {
			answer = s
		}
	case proto.Message:
		// Every other protobuf message reaching the core is a peer's.
		r.mailboxDrops.add(dropMailboxFull)
		return true
	default:
		return false
	}
	if sender != nil && sys != nil && answer != nil {
		sys.Root.Send(sender, answer)
	}
	return true
}

// shedSnapshotter drops a peer's snapshot transfer message at the snapshot
// device's full mailbox (the peer asks again), and answers a client's
// SnapshotRequest (which it forwards to the core) as overloaded.
func (r *Replica) shedSnapshotter(sys *actor.ActorSystem, msg any) bool {
	switch actor.UnwrapEnvelopeMessage(msg).(type) {
	case *messages.SnapshotRequest:
		return r.shedCore(sys, msg)
	case proto.Message:
		r.snapshotDrops.add(dropMailboxFull)
		return true
	}
	return false
}
