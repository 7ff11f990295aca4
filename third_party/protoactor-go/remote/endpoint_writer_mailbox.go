package remote

import (
	"runtime"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/asynkron/protoactor-go/internal/queue/goring"
	"github.com/asynkron/protoactor-go/internal/queue/mpsc"
	"google.golang.org/protobuf/proto"
)

const (
	mailboxIdle    int32 = iota
	mailboxRunning int32 = iota
)

const (
	mailboxHasNoMessages   int32 = iota
	mailboxHasMoreMessages int32 = iota
)

type endpointWriterMailbox struct {
	userMailbox     *goring.Queue
	systemMailbox   *mpsc.Queue
	schedulerStatus int32
	hasMoreMessages int32
	invoker         actor.MessageInvoker
	batchSize       int
	dispatcher      actor.Dispatcher
	suspended       bool
	// livepaxos patch (writer_limits.go): the queue's bound, and where a
	// message over it is counted.
	maxQueue int64
	remote   *Remote
	address  string
	// maxBytes bounds queuedBytes, the encoded size of the messages
	// waiting (0: no bound).
	maxBytes    int64
	queuedBytes atomic.Int64
}

func (m *endpointWriterMailbox) PostUserMessage(message interface{}) {
	// livepaxos patch: a message to send that finds the queue full is
	// dropped (Paxos retransmits; a request's sender is told at once), so
	// a slow peer costs bounded memory and never blocks the sender. The
	// check and the push are not atomic: concurrent senders may overshoot
	// the bound by one message each. Other messages (the writer's own
	// EndpointTerminatedEvent) are always queued.
	if rd, ok := message.(*remoteDeliver); ok {
		if m.maxQueue > 0 && m.userMailbox.Length() >= m.maxQueue {
			m.remote.dropOutgoing(m.address, rd, WriterQueueFull, 0)
			return
		}
		// livepaxos patch: a bound in bytes too, for the messages that
		// wait: a count alone lets a slow peer hold thousands of large
		// ones. A message alone always queues (one too large for any
		// batch is dropped when the batch is cut).
		if m.maxBytes > 0 {
			if pm, isProto := rd.message.(proto.Message); isProto {
				rd.size = int64(proto.Size(pm))
			}
			if queued := m.queuedBytes.Load(); queued > 0 && queued+rd.size > m.maxBytes {
				m.remote.dropOutgoing(m.address, rd, WriterQueueFull, 0)
				return
			}
			m.queuedBytes.Add(rd.size)
		}
	}
	// batching mailbox only use the message part
	m.userMailbox.Push(message)
	m.schedule()
}

func (m *endpointWriterMailbox) PostSystemMessage(message interface{}) {
	m.systemMailbox.Push(message)
	m.schedule()
}

func (m *endpointWriterMailbox) RegisterHandlers(invoker actor.MessageInvoker, dispatcher actor.Dispatcher) {
	m.invoker = invoker
	m.dispatcher = dispatcher
}

func (m *endpointWriterMailbox) Start() {
}

func (m *endpointWriterMailbox) schedule() {
	atomic.StoreInt32(&m.hasMoreMessages, mailboxHasMoreMessages) // we have more messages to process
	if atomic.CompareAndSwapInt32(&m.schedulerStatus, mailboxIdle, mailboxRunning) {
		m.dispatcher.Schedule(m.processMessages)
	}
}

func (m *endpointWriterMailbox) processMessages() {
	// we are about to start processing messages, we can safely reset the message flag of the mailbox
	atomic.StoreInt32(&m.hasMoreMessages, mailboxHasNoMessages)
process:
	m.run()

	// set mailbox to idle
	atomic.StoreInt32(&m.schedulerStatus, mailboxIdle)

	// check if there are still messages to process (sent after the message loop ended)
	if atomic.SwapInt32(&m.hasMoreMessages, mailboxHasNoMessages) == mailboxHasMoreMessages {
		// try setting the mailbox back to running
		if atomic.CompareAndSwapInt32(&m.schedulerStatus, mailboxIdle, mailboxRunning) {
			goto process
		}
	}
}

func (m *endpointWriterMailbox) run() {
	var msg interface{}
	defer func() {
		if r := recover(); r != nil {
			m.invoker.EscalateFailure(r, msg)
		}
	}()

	for {
		// keep processing system messages until queue is empty
		if msg = m.systemMailbox.Pop(); msg != nil {
			switch msg.(type) {
			case *actor.SuspendMailbox:
				m.suspended = true
			case *actor.ResumeMailbox:
				m.suspended = false
			default:
				m.invoker.InvokeSystemMessage(msg)
			}

			continue
		}

		// didn't process a system message, so break until we are resumed
		if m.suspended {
			return
		}

		var ok bool
		if msg, ok = m.userMailbox.PopMany(int64(m.batchSize)); ok {
			if m.maxBytes > 0 {
				m.dequeued(msg)
			}
			m.invoker.InvokeUserMessage(msg)
		} else {
			return
		}

		runtime.Gosched()
	}
}

// dequeued takes the messages popped off the queue off its byte count.
func (m *endpointWriterMailbox) dequeued(msgs interface{}) {
	batch, _ := msgs.([]interface{})
	var n int64
	for _, msg := range batch {
		if rd, ok := msg.(*remoteDeliver); ok {
			n += rd.size
		}
	}
	m.queuedBytes.Add(-n)
}

func (m *endpointWriterMailbox) UserMessageCount() int {
	return int(m.userMailbox.Length())
}

// endpointWriterMailboxProducer: livepaxos patch, the queue is bounded by
// EndpointWriterQueueSize (writer_limits.go).
func endpointWriterMailboxProducer(remote *Remote, address string) actor.MailboxProducer {
	batchSize, queueSize := remote.config.EndpointWriterBatchSize, remote.config.EndpointWriterQueueSize
	return func() actor.Mailbox {
		// One slot more than the bound: the ring grows when it fills, and
		// a bounded queue then never has to (concurrent senders may
		// overshoot by a few, which the ring absorbs by growing once).
		userMailbox := goring.New(int64(queueSize) + 1)
		systemMailbox := mpsc.New()
		return &endpointWriterMailbox{
			userMailbox:     userMailbox,
			systemMailbox:   systemMailbox,
			hasMoreMessages: mailboxHasNoMessages,
			schedulerStatus: mailboxIdle,
			batchSize:       batchSize,
			maxQueue:        int64(queueSize),
			maxBytes:        remote.config.EndpointWriterQueueBytes,
			remote:          remote,
			address:         address,
		}
	}
}
