package db_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func ops(n int) []*messages.Op {
	out := make([]*messages.Op, n)
	for i := range out {
		out[i] = get("k")
	}
	return out
}

func tests(n int) []*messages.Test {
	out := make([]*messages.Test, n)
	for i := range out {
		out[i] = present("k")
	}
	return out
}

// withUnknownField returns m with an extra field number 99 that no version of
// the schema defines.
func withUnknownField(m proto.Message) proto.Message {
	b := protowire.AppendTag(nil, 99, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	m.ProtoReflect().SetUnknown(b)
	return m
}

func TestValidate(t *testing.T) {
	maxKey := bytes.Repeat([]byte("k"), db.DefaultMaxKeyBytes)
	bigKey := bytes.Repeat([]byte("k"), db.DefaultMaxKeyBytes+1)
	maxVal := make([]byte, db.DefaultMaxValueBytes)
	bigVal := make([]byte, db.DefaultMaxValueBytes+1)

	tests := []struct {
		name    string
		limits  db.Limits
		op      *messages.MultiOp
		want    error  // nil: valid
		wantMsg string // substring of the error text
	}{
		{name: "put", op: db.Put([]byte("k"), []byte("v"))},
		{name: "put empty value", op: db.Put([]byte("k"), nil)},
		{name: "get", op: db.Get([]byte("k"))},
		{name: "delete", op: db.Delete([]byte("k"))},
		{name: "cas", op: db.CompareAndSwap([]byte("k"), []byte("o"), []byte("n"))},
		{name: "cas absent", op: db.CompareAndSwap([]byte("k"), nil, []byte("n"))},
		{name: "empty multiop", op: &messages.MultiOp{}},
		{name: "key at limit", op: db.Put(maxKey, nil)},
		{name: "value at limit", op: db.Put([]byte("k"), maxVal)},
		{name: "ops at limit", op: &messages.MultiOp{Guard: tests(24), TOp: ops(500), FOp: ops(500)}},

		{name: "nil multiop", op: nil, want: db.ErrInvalidOp},
		{name: "empty key put", op: db.Put(nil, []byte("v")), want: db.ErrEmptyKey, wantMsg: "t_op[0]"},
		{name: "empty key get", op: db.Get([]byte{}), want: db.ErrEmptyKey},
		{name: "empty key in guard", op: &messages.MultiOp{Guard: []*messages.Test{present("")}}, want: db.ErrEmptyKey, wantMsg: "guard[0]"},
		{name: "empty key in f_op", op: &messages.MultiOp{FOp: []*messages.Op{get("a"), del("")}}, want: db.ErrEmptyKey, wantMsg: "f_op[1]"},
		{name: "key too large", op: db.Put(bigKey, nil), want: db.ErrKeyTooLarge, wantMsg: "4097 bytes, limit 4096"},
		{name: "key too large in guard", op: &messages.MultiOp{Guard: []*messages.Test{absent(string(bigKey))}}, want: db.ErrKeyTooLarge},
		{name: "value too large", op: db.Put([]byte("k"), bigVal), want: db.ErrValueTooLarge, wantMsg: "1048577 bytes, limit 1048576"},
		{name: "equals value too large", op: db.CompareAndSwap([]byte("k"), bigVal, nil), want: db.ErrValueTooLarge, wantMsg: "guard[0]"},
		{name: "too many ops", op: &messages.MultiOp{Guard: tests(25), TOp: ops(500), FOp: ops(500)}, want: db.ErrTooManyOps, wantMsg: "1025 entries, limit 1024"},
		{name: "too many in one list", op: &messages.MultiOp{TOp: ops(1025)}, want: db.ErrTooManyOps},
		{name: "unknown op kind", op: &messages.MultiOp{TOp: []*messages.Op{{Kind: 99, Key: []byte("k")}}}, want: db.ErrInvalidOp, wantMsg: "unknown op kind 99"},
		{name: "negative op kind", op: &messages.MultiOp{TOp: []*messages.Op{{Kind: -1, Key: []byte("k")}}}, want: db.ErrInvalidOp},
		{name: "unknown test kind", op: &messages.MultiOp{Guard: []*messages.Test{{Kind: 99, Key: []byte("k")}}}, want: db.ErrInvalidOp, wantMsg: "unknown test kind 99"},
		{name: "nil op", op: &messages.MultiOp{TOp: []*messages.Op{nil}}, want: db.ErrInvalidOp, wantMsg: "t_op[0] is nil"},
		{name: "nil test", op: &messages.MultiOp{Guard: []*messages.Test{nil}}, want: db.ErrInvalidOp, wantMsg: "guard[0] is nil"},
		{name: "value on get", op: &messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_GET, Key: []byte("k"), Value: []byte("v")}}}, want: db.ErrInvalidOp, wantMsg: "KIND_GET"},
		{name: "value on delete", op: &messages.MultiOp{FOp: []*messages.Op{{Kind: messages.Op_KIND_DELETE, Key: []byte("k"), Value: []byte("v")}}}, want: db.ErrInvalidOp},
		{name: "value on absent test", op: &messages.MultiOp{Guard: []*messages.Test{{Kind: messages.Test_KIND_ABSENT, Key: []byte("k"), Value: []byte("v")}}}, want: db.ErrInvalidOp},
		{name: "unknown field in multiop", op: withUnknownField(db.Get([]byte("k"))).(*messages.MultiOp), want: db.ErrInvalidOp, wantMsg: "unknown"},
		{name: "unknown field in op", op: &messages.MultiOp{TOp: []*messages.Op{withUnknownField(get("k")).(*messages.Op)}}, want: db.ErrInvalidOp, wantMsg: "t_op[0]"},
		{name: "unknown field in test", op: &messages.MultiOp{Guard: []*messages.Test{withUnknownField(present("k")).(*messages.Test)}}, want: db.ErrInvalidOp, wantMsg: "guard[0]"},
		{name: "first problem wins", op: &messages.MultiOp{Guard: []*messages.Test{present("")}, TOp: []*messages.Op{put(string(bigKey), "")}}, want: db.ErrEmptyKey},

		{name: "custom key limit", limits: db.Limits{MaxKeyBytes: 2}, op: db.Get([]byte("abc")), want: db.ErrKeyTooLarge, wantMsg: "limit 2"},
		{name: "custom value limit", limits: db.Limits{MaxValueBytes: 2}, op: db.Put([]byte("k"), []byte("abc")), want: db.ErrValueTooLarge},
		{name: "custom ops limit", limits: db.Limits{MaxOps: 2}, op: &messages.MultiOp{TOp: ops(3)}, want: db.ErrTooManyOps},
		{name: "negative limits take defaults", limits: db.Limits{MaxKeyBytes: -1, MaxValueBytes: -1, MaxOps: -1}, op: db.Put(maxKey, maxVal)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.limits.Validate(tt.op)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Validate = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}

func TestValidateErrorStaysShort(t *testing.T) {
	err := db.Limits{}.Validate(db.Put(bytes.Repeat([]byte("k"), 100000), nil))
	if !errors.Is(err, db.ErrKeyTooLarge) {
		t.Fatal(err)
	}
	if len(err.Error()) > 200 {
		t.Fatalf("error text is %d bytes; the key should be truncated: %.300s", len(err.Error()), err)
	}
}
