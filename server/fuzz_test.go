package server

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// FuzzClientRequest decodes bytes as each request the client API takes
// (what grpc-go hands a handler) and runs the checks a request meets
// before it goes anywhere: the read-only test, the database's limits, the
// re-encoding whose size is bounded. None may panic; a MultiOp the
// limits accept encodes, and the wire check of a stream call's bytes
// agrees with the limits.
func FuzzClientRequest(f *testing.F) {
	op := &messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: []byte("k"), Value: []byte("v")}}}
	for _, m := range []proto.Message{
		&messages.TxnRequest{Op: op},
		&messages.ReadOnlyRequest{Op: op},
		&messages.PutRequest{Key: []byte("k"), Value: []byte("v")},
		&messages.GetRequest{Key: []byte("k")},
		&messages.MembersRequest{Add: &messages.Member{Id: 4, Address: "127.0.0.1:7004"}},
		&messages.StreamCall{Id: 1, Write: true, Op: mustMarshal(f, op), TimeoutMs: 100},
	} {
		f.Add(mustMarshal(f, m))
	}
	limits := db.Limits{}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range []proto.Message{&messages.TxnRequest{}, &messages.ReadOnlyRequest{}, &messages.PutRequest{},
			&messages.GetRequest{}, &messages.MembersRequest{}, &messages.StreamCall{}} {
			if proto.Unmarshal(b, m) != nil {
				continue
			}
			var op *messages.MultiOp
			switch m := m.(type) {
			case *messages.TxnRequest:
				op = m.Op
			case *messages.ReadOnlyRequest:
				op = m.Op
			case *messages.StreamCall:
				op = &messages.MultiOp{}
				if proto.Unmarshal(m.Op, op) != nil {
					continue
				}
				if limits.ValidateEncoded(m.Op) == nil && limits.Validate(op) != nil {
					t.Fatalf("the wire check took a MultiOp the limits refuse: %v", op)
				}
			}
			if op == nil {
				continue
			}
			_ = db.IsReadOnly(op)
			if limits.Validate(op) == nil {
				if _, err := proto.Marshal(op); err != nil {
					t.Fatalf("a valid MultiOp does not encode: %v", err)
				}
			}
		}
	})
}

func mustMarshal(f *testing.F, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
