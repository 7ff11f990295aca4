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

// ValidateClientEncoded is ValidateEncoded for a command a client sent:
// it also refuses the ops only a master proposes (a session's expiry), so
// that no client can end another's session, and an operator's op (a
// limits change), which comes through SetLimits.
func (l Limits) ValidateClientEncoded(b []byte) error {
	l = l.withDefaults()
	if l.plainValid(b) {
		return nil
	}
	op := new(messages.MultiOp)
	if err := proto.Unmarshal(b, op); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return l.ValidateClient(op)
}

// ValidateClient is Validate for a client's MultiOp (see
// ValidateClientEncoded).
func (l Limits) ValidateClient(op *messages.MultiOp) error {
	if err := l.Validate(op); err != nil {
		return err
	}
	if HasMasterOnlyOps(op) {
		return fmt.Errorf("%w: a session's expiry is the master's to propose", ErrInvalidOp)
	}
	if HasAdminOps(op) {
		return fmt.Errorf("%w: %w: the group's limits are set with the operators' call SetLimits (livepaxos limits set)", ErrInvalidOp, ErrAdminOp)
	}
	return nil
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
		switch {
		case (num == 1 || num == 4) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			if num == 1 {
				*kind = v
			} else {
				*epoch = v
			}
			b = b[n:]
		case (num == 2 || num == 3) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			if num == 2 {
				*key = v
			} else {
				*value = v
			}
			b = b[n:]
		default:
			return false
		}
	}
	return true
}

func (l Limits) plainTest(b []byte) bool {
	var kind, epoch uint64
	var key, value []byte
	if !plainFields(b, &kind, &key, &value, &epoch) || kind > 3 {
		return false
	}
	switch messages.Test_Kind(kind) {
	case messages.Test_KIND_ABSENT, messages.Test_KIND_PRESENT:
		return len(value) == 0 && l.plainKey(key)
	case messages.Test_KIND_EQUALS:
		return len(value) <= l.MaxValueBytes && l.plainKey(key)
	case messages.Test_KIND_EPOCH:
		return len(key) == 0 && len(value) == 0 && epoch != 0
	}
	return false
}

func (l Limits) plainOp(b []byte) bool {
	var kind uint64
	var key, value []byte
	if !plainFields(b, &kind, &key, &value, nil) || kind > 2 {
		return false
	}
	switch messages.Op_Kind(kind) {
	case messages.Op_KIND_GET, messages.Op_KIND_DELETE:
		return len(value) == 0 && l.plainKey(key)
	case messages.Op_KIND_PUT:
		return len(value) <= l.MaxValueBytes && l.plainKey(key)
	}
	return false
}

func (l Limits) plainKey(key []byte) bool { return len(key) > 0 && len(key) <= l.MaxKeyBytes }
