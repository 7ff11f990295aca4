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
	return l.validateEncoded(b, Limits.Validate)
}

// ValidateClientEncoded is ValidateEncoded for a command a client sent:
// it also refuses the ops only a master proposes (a session's expiry), so
// that no client can end another's session, and an operator's op (a
// limits change), which comes through SetLimits.
func (l Limits) ValidateClientEncoded(b []byte) error {
	return l.validateEncoded(b, Limits.ValidateClient)
}

// validateEncoded accepts b on the plain path where it can, and otherwise
// decodes it for check (Validate or ValidateClient) to find and name the
// problem.
func (l Limits) validateEncoded(b []byte, check func(Limits, *messages.MultiOp) error) error {
	l = l.withDefaults()
	if l.plainValid(b) {
		return nil
	}
	op := new(messages.MultiOp)
	if err := proto.Unmarshal(b, op); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return check(l, op)
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

// plainEntry is a test or an op as plainFields read it.
type plainEntry struct {
	kind, epoch uint64
	key, value  []byte
}

// plainFields reads a test's or op's fields, each at most once: a varint
// kind (1), a key (2), a value (3) and, withEpoch, a varint epoch (4).
func plainFields(b []byte, withEpoch bool) (e plainEntry, ok bool) {
	var seen [5]bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num < 1 || num > 4 || seen[num] || (num == 4 && !withEpoch) {
			return e, false
		}
		seen[num] = true
		b = b[n:]
		varintField := (num == 1 || num == 4) && typ == protowire.VarintType
		bytesField := (num == 2 || num == 3) && typ == protowire.BytesType
		if !varintField && !bytesField {
			return e, false
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return e, false
		}
		field := b[:n]
		b = b[n:]
		switch num {
		case 1:
			e.kind, _ = protowire.ConsumeVarint(field)
		case 2:
			e.key, _ = protowire.ConsumeBytes(field)
		case 3:
			e.value, _ = protowire.ConsumeBytes(field)
		case 4:
			e.epoch, _ = protowire.ConsumeVarint(field)
		}
	}
	return e, true
}

// plainRule is what a test or op of one kind holds on the plain path.
type plainRule uint8

const (
	plainRefused    plainRule = iota // a kind the plain path leaves to the full decode
	plainKeyAlone                    // a valid key and no value
	plainKeyValue                    // a valid key and a value within the limit
	plainEpochAlone                  // a non-zero epoch and no key or value
)

// The rules of the kinds the plain path knows, by kind number: a number
// past the end is refused before it is converted (it would wrap into the
// enum's int32).
var (
	plainTestRules = [...]plainRule{
		messages.Test_KIND_ABSENT:  plainKeyAlone,
		messages.Test_KIND_PRESENT: plainKeyAlone,
		messages.Test_KIND_EQUALS:  plainKeyValue,
		messages.Test_KIND_EPOCH:   plainEpochAlone,
	}
	plainOpRules = [...]plainRule{
		messages.Op_KIND_GET:    plainKeyAlone,
		messages.Op_KIND_PUT:    plainKeyValue,
		messages.Op_KIND_DELETE: plainKeyAlone,
	}
)

func (l Limits) plainTest(b []byte) bool { return l.plainEntryValid(b, plainTestRules[:], true) }

func (l Limits) plainOp(b []byte) bool { return l.plainEntryValid(b, plainOpRules[:], false) }

// plainEntryValid reports whether b is a test or op (withEpoch: a test) of
// a kind rules knows, holding what its rule asks.
func (l Limits) plainEntryValid(b []byte, rules []plainRule, withEpoch bool) bool {
	e, ok := plainFields(b, withEpoch)
	if !ok || e.kind >= uint64(len(rules)) {
		return false
	}
	switch rules[e.kind] {
	case plainKeyAlone:
		return len(e.value) == 0 && l.plainKey(e.key)
	case plainKeyValue:
		return len(e.value) <= l.MaxValueBytes && l.plainKey(e.key)
	case plainEpochAlone:
		return len(e.key) == 0 && len(e.value) == 0 && e.epoch != 0
	}
	return false
}

func (l Limits) plainKey(key []byte) bool { return len(key) > 0 && len(key) <= l.MaxKeyBytes }
