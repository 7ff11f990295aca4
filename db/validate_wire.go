package db

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// ValidateEncoded is Validate for an encoded MultiOp, as a proposer gets
// it: the same verdict and the same errors (a payload that does not decode
// wraps ErrMalformed). A valid command in the plain encoding every
// protobuf library writes (each field of a test or op at most once, known
// fields only) is checked on its bytes, with no decoding and no
// allocation: the proposer checks every command before it proposes it,
// and the state machine decodes it again when it applies. Anything else
// takes the full decode, which finds and names the problem.
func (l Limits) ValidateEncoded(b []byte) error {
	l = l.withDefaults()
	if l.plainValid(b) {
		return nil
	}
	op := new(messages.MultiOp)
	if err := proto.Unmarshal(b, op); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return l.Validate(op)
}

// plainValid reports whether b is a MultiOp in the plain encoding that
// Validate would accept. false means only "not shown valid here".
func (l Limits) plainValid(b []byte) bool {
	entries := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return false
		}
		b = b[n:]
		msg, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		var ok bool
		switch num {
		case 1: // guard
			ok = l.plainTest(msg)
		case 2, 3: // t_op, f_op
			ok = l.plainOp(msg)
		}
		if !ok {
			return false
		}
		if entries++; entries > l.MaxOps {
			return false
		}
	}
	return true
}

// plainFields reads a test's or op's fields, each at most once: a varint
// kind (1), a key (2), a value (3) and, where epoch is not nil, a varint
// epoch (4).
func plainFields(b []byte, kind *uint64, key, value *[]byte, epoch *uint64) bool {
	var seen [5]bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num < 1 || num > 4 || seen[num] || (num == 4 && epoch == nil) {
			return false
		}
		seen[num] = true
		b = b[n:]
		ok := false
		switch {
		case num == 1 && typ == protowire.VarintType:
			b, ok = consume(b, protowire.ConsumeVarint, kind)
		case num == 4 && typ == protowire.VarintType:
			b, ok = consume(b, protowire.ConsumeVarint, epoch)
		case num == 2 && typ == protowire.BytesType:
			b, ok = consume(b, protowire.ConsumeBytes, key)
		case num == 3 && typ == protowire.BytesType:
			b, ok = consume(b, protowire.ConsumeBytes, value)
		}
		if !ok {
			return false
		}
	}
	return true
}

// consume reads one field's value from b with read into *into and returns
// what follows it; false if b holds no such value.
func consume[T any](b []byte, read func([]byte) (T, int), into *T) ([]byte, bool) {
	v, n := read(b)
	if n < 0 {
		return nil, false
	}
	*into = v
	return b[n:], true
}

func (l Limits) plainTest(b []byte) bool {
	var kind, epoch uint64
	var key, value []byte
	if !plainFields(b, &kind, &key, &value, &epoch) || kind > 3 {
		return false
	}
	if messages.Test_Kind(kind) == messages.Test_KIND_EPOCH {
		return len(key) == 0 && len(value) == 0 && epoch != 0
	}
	uses, known := testUsesValue[messages.Test_Kind(kind)]
	return known && l.plainKeyValue(key, value, uses)
}

func (l Limits) plainOp(b []byte) bool {
	var kind uint64
	var key, value []byte
	if !plainFields(b, &kind, &key, &value, nil) || kind > 2 {
		return false
	}
	uses, known := opUsesValue[messages.Op_Kind(kind)]
	return known && l.plainKeyValue(key, value, uses)
}

// plainKeyValue is validateKeyValue's verdict, without its error: a key
// within MaxKeyBytes, and a value within MaxValueBytes where the kind uses
// it, none where it does not.
func (l Limits) plainKeyValue(key, value []byte, usesValue bool) bool {
	if usesValue && len(value) > l.MaxValueBytes || !usesValue && len(value) > 0 {
		return false
	}
	return len(key) > 0 && len(key) <= l.MaxKeyBytes
}
