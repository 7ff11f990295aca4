package server

import (
	"bytes"
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// Issue 15 item 4: a legal result always fits in one message of the
// client port, with its framing and the StreamResult around it.
func TestTheLargestResultFitsInAMessage(t *testing.T) {
	const streamResultFraming = 64 << 10 // id, code, error text, header
	if n := db.MaxResultBytesCeiling + db.ResultFramingBytes + streamResultFraming; n > MaxMessageBytes {
		t.Fatalf("a result at the ceiling takes up to %d bytes, over the %d of a message", n, MaxMessageBytes)
	}
	if maxStreamBatchBytes+streamResultFraming > MaxMessageBytes {
		t.Fatalf("a stream batch of %d bytes does not fit in a message of %d", maxStreamBatchBytes, MaxMessageBytes)
	}
}

// recordingStream is a KV_StreamServer that keeps what is sent.
type recordingStream struct {
	messages.KV_StreamServer
	sent []*messages.StreamResponse
	done chan struct{}
	want int // results, after which done is closed
	got  int
}

func (r *recordingStream) Send(m *messages.StreamResponse) error {
	r.sent = append(r.sent, m)
	if r.got += len(m.Results); r.got == r.want {
		close(r.done)
	}
	return nil
}

// Results ready together are batched, but never past maxStreamBatchBytes
// unless alone: three large results that would make one message over
// MaxMessageBytes (which the client's gRPC refuses, losing them all) go
// one per message, and the small ones behind them together.
func TestStreamBatchesAreBoundedInBytes(t *testing.T) {
	large := func(id uint64) *messages.StreamResult {
		return &messages.StreamResult{Id: id, Result: bytes.Repeat([]byte("v"), MaxMessageBytes/3)}
	}
	in := []*messages.StreamResult{large(1), large(2), large(3), {Id: 4}, {Id: 5}}
	results := make(chan *messages.StreamResult, len(in))
	slots := make(chan struct{}, len(in))
	for _, r := range in {
		slots <- struct{}{}
		results <- r
	}
	st := &recordingStream{done: make(chan struct{}), want: len(in)}
	ctx, cancel := context.WithCancel(context.Background())
	sent := make(chan error, 1)
	go func() { sent <- sendResults(ctx, st, results, slots) }()
	<-st.done
	cancel()
	<-sent
	if len(st.sent) != 4 {
		t.Fatalf("%d messages, want 4 (three large alone, then the small ones)", len(st.sent))
	}
	for i, m := range st.sent {
		if n := proto.Size(m); n > MaxMessageBytes {
			t.Fatalf("message %d is %d bytes, over %d", i, n, MaxMessageBytes)
		}
	}
	if len(slots) != 0 {
		t.Fatalf("%d slots still held after every result was sent", len(slots))
	}
}
