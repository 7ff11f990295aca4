package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// maxStreamBatch bounds the results sent in one StreamResponse, and
// maxStreamBatchBytes their size together (unless there is one).
const (
	maxStreamBatch      = 256
	maxStreamBatchBytes = MaxMessageBytes / 4
)

// maxCallTimeout caps a stream call's own timeout.
const maxCallTimeout = 10 * time.Minute

// Stream serves many Txn and Read calls on one stream, answering each as
// it completes. A client with more than MaxStreamInFlight calls in flight
// waits: this handler stops reading, and gRPC flow control holds the
// client back. Answers are batched: whatever is ready when the sender is
// free goes out in one message.
func (k *kvService) Stream(stream messages.KV_StreamServer) error {
	s := k.s
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	limit := s.cfg.MaxStreamInFlight
	// Every call in flight holds a slot until its result is sent, so
	// results (as large as the slots) never blocks the goroutine that
	// completes a call.
	slots := make(chan struct{}, limit)
	results := make(chan *messages.StreamResult, limit)
	sent := make(chan error, 1)
	go func() { sent <- sendResults(ctx, stream, results, slots) }()
	for {
		in, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			// The client sent all it will: answer what is in flight.
			for range limit {
				select {
				case slots <- struct{}{}:
				case err := <-sent:
					return err
				}
			}
			return nil
		}
		if err != nil {
			return err
		}
		for _, call := range in.Calls {
			select {
			case slots <- struct{}{}:
			case err := <-sent:
				return err
			}
			s.streamCall(call, func(r *messages.StreamResult) { results <- r })
		}
	}
}

// sendResults sends the results as they come, batched, freeing a slot for
// each one sent. A batch holds one result of any size, or several of at
// most maxStreamBatchBytes together: so a message is never larger than
// the largest result (within MaxMessageBytes: db.MaxResultBytesCeiling).
func sendResults(ctx context.Context, stream messages.KV_StreamServer, results <-chan *messages.StreamResult, slots <-chan struct{}) error {
	batch := make([]*messages.StreamResult, 0, maxStreamBatch)
	var next *messages.StreamResult // taken, and left for the next batch (it holds its slot)
	for {
		batch = batch[:0]
		if next == nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case next = <-results:
			}
		}
		batch = append(batch, next)
		size := proto.Size(next)
		next = nil
	more:
		for len(batch) < maxStreamBatch {
			select {
			case r := <-results:
				if n := proto.Size(r); size+n <= maxStreamBatchBytes {
					batch, size = append(batch, r), size+n
					continue
				}
				next = r
				break more
			default:
				break more
			}
		}
		if err := stream.Send(&messages.StreamResponse{Results: batch}); err != nil {
			return err
		}
		for range batch {
			<-slots
		}
	}
}

// streamCall runs one call of a stream and hands its result to reply,
// once, on any goroutine.
func (s *Server) streamCall(call *messages.StreamCall, reply func(*messages.StreamResult)) {
	s.calls.Add(1)
	s.lastCall.Store(time.Now().UnixNano())
	counted := reply
	reply = func(r *messages.StreamResult) {
		counted(r)
		s.calls.Add(-1)
	}
	if obs := s.cfg.ObserveRequest; obs != nil {
		began, inner := time.Now(), reply
		method := "write"
		if !call.Write {
			method = "read_" + consistencyName(call.Consistency)
		}
		reply = func(r *messages.StreamResult) {
			obs(method, outcomeName(r.Code), time.Since(began))
			inner(r)
		}
	}
	req := &request{kind: kindRead, payload: call.Op, consistency: call.Consistency}
	if call.Write {
		req.kind = kindWrite
	}
	if s.draining.Load() {
		// Stopping: refused before it goes anywhere, so the client may send
		// it to the master this answer names.
		reply(s.streamResult(call.Id, req, answer{msg: s.stoppingRefusal()}))
		return
	}
	if len(call.Op) > s.cfg.MaxCommandBytes {
		reply(&messages.StreamResult{Id: call.Id, Code: messages.ErrorCode_ERROR_CODE_TOO_LARGE,
			Error: fmt.Sprintf("request is %d bytes, limit %d", len(call.Op), s.cfg.MaxCommandBytes)})
		return
	}
	timeout := s.cfg.RequestTimeout
	if call.TimeoutMs > 0 {
		timeout = min(time.Duration(call.TimeoutMs)*time.Millisecond, maxCallTimeout)
	}
	req.deadline = time.Now().Add(timeout)
	if !call.Write {
		if resp, ok := s.replica.ServeRead(&messages.ReadRequest{Query: call.Op, Consistency: call.Consistency}); ok {
			reply(s.streamResult(call.Id, req, answer{msg: resp}))
			return
		}
	}
	s.dispatch(req, func(a answer) { reply(s.streamResult(call.Id, req, a)) })
}

// streamResult is an answer in a stream's form.
func (s *Server) streamResult(id uint64, req *request, a answer) *messages.StreamResult {
	if f := s.failureOf(req, a); f != nil {
		h := s.header(nil)
		if f.masterID != 0 {
			h.MasterId, h.MasterClientAddress = f.masterID, s.replica.ClientAddressOf(f.masterID)
		}
		return &messages.StreamResult{Id: id, Code: f.code, Error: f.msg, Header: h}
	}
	resp, ok := a.msg.(*messages.ClientResponse)
	if !ok {
		return &messages.StreamResult{Id: id, Code: messages.ErrorCode_ERROR_CODE_INVALID, Error: fmt.Sprintf("unexpected answer %T", a.msg)}
	}
	return &messages.StreamResult{Id: id, Header: s.header(resp), Result: resp.Result}
}
