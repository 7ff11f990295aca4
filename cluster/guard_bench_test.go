package cluster

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/livepaxos/livepaxos/messages"
	"google.golang.org/protobuf/proto"
)

// BenchmarkGuardFilter measures the guard's cost per incoming batch of 64
// Accepts, each carrying one 100-byte command, to compare with the decode
// protoactor does on the same batch (BenchmarkProtoactorDecode).
func BenchmarkGuardFilter(b *testing.B) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(loggerFactory(discardLogger())))
	sys.ProcessRegistry.Address = "127.0.0.1:7001"
	g := newGuard(sys, discardLogger(), nil)
	batch := benchBatch(b, sys.Address())
	envs := batch.Envelopes
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		batch.Envelopes = append(batch.Envelopes[:0], envs...)
		g.filterBatch(batch)
		if len(batch.Envelopes) != len(envs) {
			b.Fatal("dropped a valid envelope")
		}
	}
}

// BenchmarkProtoactorDecode is what protoactor's reader already does per
// batch, for comparison.
func BenchmarkProtoactorDecode(b *testing.B) {
	batch := benchBatch(b, "127.0.0.1:7001")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, e := range batch.Envelopes {
			if _, err := remote.Deserialize(e.MessageData, batch.TypeNames[e.TypeId], e.SerializerId); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func benchBatch(b *testing.B, addr string) *remote.MessageBatch {
	data, err := proto.Marshal(&messages.Accept{From: 1, Ballot: 7, ChosenUpto: 41, Entries: []*messages.Entry{{
		Instance: 42, Ballot: 7,
		Value: &messages.Value{Commands: []*messages.Command{{Origin: 1, ReplyAddress: addr, ReplyId: "client$1", RequestId: 9, Payload: make([]byte, 100)}}},
	}}})
	if err != nil {
		b.Fatal(err)
	}
	batch := &remote.MessageBatch{
		TypeNames: []string{string(proto.MessageName(&messages.Accept{}))},
		Targets:   []*actor.PID{actor.NewPID(addr, "replica/acceptor")},
	}
	for range 64 {
		batch.Envelopes = append(batch.Envelopes, &remote.MessageEnvelope{MessageData: data})
	}
	return batch
}
