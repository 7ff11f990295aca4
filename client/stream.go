package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// maxStreamBatch bounds the calls sent in one StreamRequest, and
// maxStreamBatchBytes their encoded size: the client port refuses a message
// over 16 MiB, and 256 writes of a 1 MiB value would make one (a call
// larger than this goes alone; the largest legal one fits the port).
const (
	maxStreamBatch      = 256
	maxStreamBatchBytes = 4 << 20
)

// muxStream is one Stream RPC to one node, carrying many calls at once:
// each call is written with an id, and its answer comes back with it, in
// any order. A sender goroutine batches whatever calls are waiting into
// one message; a receiver goroutine hands each answer to its caller. Once
// the stream breaks, every call on it ends (errLost if it was handed to
// the stream, errNotSent if not) and the next call opens a new stream.
type muxStream struct {
	cancel context.CancelFunc
	queue  chan *streamCall

	mu      sync.Mutex
	pending map[uint64]*streamCall
	nextID  uint64
	err     error // set once the stream is broken
	done    chan struct{}
}

// streamCall is one call in flight on a muxStream.
type streamCall struct {
	msg  *messages.StreamCall
	sent bool // handed to the stream: it may have arrived
	done chan streamAnswer
}

type streamAnswer struct {
	res *messages.StreamResult
	err error
}

// openStream starts a Stream on kv. It fails only if the stream cannot be
// opened at all (the node is unreachable): nothing was sent.
func openStream(kv messages.KVClient, queueLen int) (*muxStream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := kv.Stream(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	m := &muxStream{cancel: cancel, queue: make(chan *streamCall, queueLen),
		pending: make(map[uint64]*streamCall), done: make(chan struct{})}
	go m.sendLoop(st)
	go m.recvLoop(st)
	return m, nil
}

// broken reports whether the stream has ended.
func (m *muxStream) broken() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// start registers a call and queues it for sending. It returns the
// call, whose done channel gets exactly one answer, or errNotSent if the
// stream is broken.
func (m *muxStream) start(msg *messages.StreamCall) (*streamCall, error) {
	c := &streamCall{msg: msg, done: make(chan streamAnswer, 1)}
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		return nil, errNotSent
	}
	m.nextID++
	msg.Id = m.nextID
	m.pending[msg.Id] = c
	m.mu.Unlock()
	select {
	case m.queue <- c:
		return c, nil
	case <-m.done:
		m.abandon(c)
		return nil, errNotSent
	}
}

// abandon forgets a call its caller no longer waits for, and reports
// whether it had been handed to the stream.
func (m *muxStream) abandon(c *streamCall) (sent bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.pending, c.msg.Id)
	return c.sent
}

func (m *muxStream) sendLoop(st messages.KV_StreamClient) {
	batch := make([]*messages.StreamCall, 0, maxStreamBatch)
	var carried *streamCall // taken from the queue, left for the next batch
	for {
		batch = batch[:0]
		first := carried
		if carried = nil; first == nil {
			select {
			case <-m.done:
				return
			case first = <-m.queue:
			}
		}
		batch = m.take(batch, first)
		bytes := proto.Size(first.msg)
	more:
		for len(batch) < maxStreamBatch {
			select {
			case c := <-m.queue:
				size := proto.Size(c.msg)
				if bytes+size > maxStreamBatchBytes {
					carried = c
					break more
				}
				batch, bytes = m.take(batch, c), bytes+size
			default:
				break more
			}
		}
		if len(batch) == 0 {
			continue
		}
		if err := st.Send(&messages.StreamRequest{Calls: batch}); err != nil {
			if !errors.Is(err, io.EOF) {
				m.fail(err)
			}
			// io.EOF: the stream ended; Recv, in recvLoop, tells why.
			return
		}
	}
}

// take adds c to batch unless its caller gave up on it, marking it sent.
func (m *muxStream) take(batch []*messages.StreamCall, c *streamCall) []*messages.StreamCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, waiting := m.pending[c.msg.Id]; !waiting {
		return batch
	}
	c.sent = true
	return append(batch, c.msg)
}

func (m *muxStream) recvLoop(st messages.KV_StreamClient) {
	for answered := false; ; answered = true {
		resp, err := st.Recv()
		if err != nil {
			if !answered && status.Code(err) == codes.Unimplemented {
				// Not a client port (a peer port, say): it refused the
				// stream itself, so no call on it was acted on.
				err = fmt.Errorf("%w: %w (is it a peer port? clients use the client port, node --client-advertise)", errNotClientPort, err)
			}
			m.fail(err)
			return
		}
		for _, r := range resp.Results {
			m.mu.Lock()
			c := m.pending[r.Id]
			delete(m.pending, r.Id)
			m.mu.Unlock()
			if c != nil {
				c.done <- streamAnswer{res: r}
			}
		}
	}
}

// fail breaks the stream: every call on it ends.
func (m *muxStream) fail(err error) {
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		return
	}
	m.err = err
	calls := m.pending
	m.pending = nil
	close(m.done)
	m.mu.Unlock()
	m.cancel()
	for _, c := range calls {
		switch {
		case errors.Is(err, errNotClientPort):
			c.done <- streamAnswer{err: errors.Join(errNotSent, err)}
		case c.sent:
			c.done <- streamAnswer{err: errLost}
		default:
			c.done <- streamAnswer{err: errNotSent}
		}
	}
}

// close ends the stream and every call on it.
func (m *muxStream) close() { m.fail(errors.New("client closed")) }
