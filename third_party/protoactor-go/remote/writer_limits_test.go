package remote

// livepaxos patch test (third_party/README.md, third change).

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// capturingStream records the batches a writer sends.
type capturingStream struct {
	Remoting_ReceiveClient
	sent []*RemoteMessage
}

func (s *capturingStream) Send(m *RemoteMessage) error {
	s.sent = append(s.sent, m)
	return nil
}

// Every batch the writer cuts serializes within the budget, holds at
// least one message, and together they carry every message but the one
// too large for any batch, in order.
// A small budget makes the per-message framing, which the writer
// estimates, a large part of each batch.
func TestEndpointWriterCutsBatchesWithinBudget(t *testing.T) {
	for _, budget := range []int{64 << 10, 4 << 10, 1 << 10} {
		testBatchesWithinBudget(t, budget)
	}
}

func testBatchesWithinBudget(t *testing.T, budget int) {
	sys := actor.NewActorSystem()
	r := NewRemote(sys, Configure("127.0.0.1", 0, WithEndpointWriterBatchBytes(budget)))
	stream := &capturingStream{}
	w := &endpointWriter{config: r.config, address: "peer:1", remote: r, stream: stream}

	var batch []interface{}
	var want []int
	for i := 0; i < 200; i++ {
		size := (i * 7919) % (budget / 3) // sizes from 0 to a third of the budget
		if i%3 == 0 {
			size = i % 5 // and many tiny ones
		}
		if i == 100 {
			size = budget // alone over the budget: dropped
		} else {
			want = append(want, size)
		}
		batch = append(batch, &remoteDeliver{
			message: wrapperspb.Bytes(make([]byte, size)),
			target:  actor.NewPID("peer:1", "some/target$"+string(rune('a'+i%26))),
			sender:  actor.NewPID("self:2", "future$"+string(rune('a'+i%26))),
		})
	}
	w.sendEnvelopes(batch, nil)

	var got []int
	for _, m := range stream.sent {
		if n := proto.Size(m); n > budget {
			t.Errorf("a batch of %d bytes, budget %d", n, budget)
		}
		b := m.GetMessageBatch()
		if len(b.Envelopes) == 0 {
			t.Errorf("an empty batch")
		}
		for _, e := range b.Envelopes {
			v := &wrapperspb.BytesValue{}
			if err := proto.Unmarshal(e.MessageData, v); err != nil {
				t.Fatal(err)
			}
			got = append(got, len(v.Value))
		}
	}
	if len(stream.sent) < 2 {
		t.Errorf("%d batches: the budget cut none", len(stream.sent))
	}
	if len(got) != len(want) {
		t.Fatalf("%d messages sent, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d has %d bytes, want %d (order lost)", i, got[i], want[i])
		}
	}
	if d := r.WriterDrops(); d.TooLarge != 1 || d.QueueFull != 0 {
		t.Errorf("drops %+v, want one too large", d)
	}
}
