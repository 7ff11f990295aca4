package actors

import (
	"fmt"

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
// before queueing, and past Config.MaxMailboxMessages it turns a message
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

// boundedMailbox is a mailbox whose user messages past limit are offered
// to shed, which returns false for a message that must queue anyway.
type boundedMailbox struct {
	actor.Mailbox
	limit int
	shed  func(msg any) bool
}

func (m *boundedMailbox) PostUserMessage(msg any) {
	if m.Mailbox.UserMessageCount() >= m.limit && m.shed(msg) {
		return
	}
	m.Mailbox.PostUserMessage(msg)
}

// full reports whether the mailbox is at its bound.
func (m *boundedMailbox) full() bool { return m.Mailbox.UserMessageCount() >= m.limit }

// mailbox returns the props option that gives an actor of this replica a
// bounded mailbox shedding with shed; each mailbox made is handed to made
// (nil: not kept).
func (r *Replica) mailbox(shed func(sys *actor.ActorSystem, msg any) bool, made func(*boundedMailbox)) actor.PropsOption {
	return actor.WithMailbox(func() actor.Mailbox {
		r.mu.Lock()
		sys := r.sys // set by the parent before it spawns its children
		r.mu.Unlock()
		m := &boundedMailbox{Mailbox: actor.Unbounded()(), limit: r.cfg.MaxMailboxMessages,
			shed: func(msg any) bool { return shed(sys, msg) }}
		if made != nil {
			made(m)
		}
		return m
	})
}

// overloaded is the refusal of a request turned away at a full mailbox.
func (r *Replica) overloaded() error {
	return fmt.Errorf("%w: the replica's mailbox holds %d messages; try again shortly", ErrOverloaded, r.cfg.MaxMailboxMessages)
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
