package db

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/internal/defaults"
	"github.com/livepaxos/livepaxos/messages"
)

// Default limits. They are generous for a lock/config store yet small enough
// that one command cannot stall the log: every replica holds each command in
// memory and writes it to disk before it is chosen.
const (
	DefaultMaxKeyBytes   = 4 << 10
	DefaultMaxValueBytes = 1 << 20
	DefaultMaxOps        = 1024
)

// Limits bound what a MultiOp may carry. Zero (or negative) fields take the
// defaults, so Limits{} is the standard configuration.
//
// Limits are part of the state machine's definition: Apply re-validates every
// chosen command, so every replica of a cluster must use the same Limits or
// replicas could disagree about whether a command ran.
type Limits struct {
	MaxKeyBytes   int // default 4 KiB
	MaxValueBytes int // default 1 MiB
	MaxOps        int // guard + t_op + f_op entries; default 1024
}

// Errors returned by Validate, Apply and ApplyBatch. Callers should test with
// errors.Is: the returned errors wrap these with detail.
var (
	ErrEmptyKey      = errors.New("db: empty key")
	ErrKeyTooLarge   = errors.New("db: key too large")
	ErrValueTooLarge = errors.New("db: value too large")
	ErrTooManyOps    = errors.New("db: too many operations")
	ErrInvalidOp     = errors.New("db: invalid operation") // unknown kind, nil entry, unknown field, ignored value

	// ErrMalformed reports an Apply payload that is not a proto-encoded
	// MultiOp at all.
	ErrMalformed = errors.New("db: malformed command")
)

// withDefaults returns l with every unset field replaced by its default.
func (l Limits) withDefaults() Limits {
	defaults.Positive(&l.MaxKeyBytes, DefaultMaxKeyBytes)
	defaults.Positive(&l.MaxValueBytes, DefaultMaxValueBytes)
	defaults.Positive(&l.MaxOps, DefaultMaxOps)
	return l
}

// Validate checks a MultiOp against l before it is proposed, so that a bad
// request is refused at the proposer instead of occupying a log slot. It
// returns nil or the first problem found (in the order guard, t_op, f_op),
// wrapping one of the sentinel errors with where it is, for example
// "db: key too large: t_op[2]: key is 5000 bytes, limit 4096".
//
// Validate is strict on purpose: beyond sizes and empty keys it rejects
// unknown enum values, nil entries, fields this version does not know
// (a newer client's feature that would otherwise be silently ignored), and a
// value on a test or op kind that ignores it (a GET or DELETE, an ABSENT or
// PRESENT test), because a value that has no effect is almost always a caller
// bug. A MultiOp that passes Validate cannot fail part-way in Execute, which
// is what makes Execute atomic.
func (l Limits) Validate(op *messages.MultiOp) error {
	if op == nil {
		return fmt.Errorf("%w: nil MultiOp", ErrInvalidOp)
	}
	l = l.withDefaults()
	if n := len(op.Guard) + len(op.TOp) + len(op.FOp); n > l.MaxOps {
		return fmt.Errorf("%w: %d guard tests + %d t_op + %d f_op = %d entries, limit %d",
			ErrTooManyOps, len(op.Guard), len(op.TOp), len(op.FOp), n, l.MaxOps)
	}
	if len(op.ProtoReflect().GetUnknown()) > 0 {
		return fmt.Errorf("%w: MultiOp has fields unknown to this version", ErrInvalidOp)
	}
	for i, t := range op.Guard {
		if err := l.validateTest(t); err != nil {
			return fmt.Errorf("%w: guard[%d]%s", err.sentinel, i, err.detail)
		}
	}
	for _, list := range []struct {
		name string
		ops  []*messages.Op
	}{{"t_op", op.TOp}, {"f_op", op.FOp}} {
		for i, o := range list.ops {
			if err := l.validateOp(o); err != nil {
				return fmt.Errorf("%w: %s[%d]%s", err.sentinel, list.name, i, err.detail)
			}
		}
	}
	return nil
}

// problem is a validation failure before its location is known. Keeping the
// location out until the end avoids formatting a string per entry on the
// common, valid path.
type problem struct {
	sentinel error
	detail   string // starts with ": " or is empty
}

func (l Limits) validateTest(t *messages.Test) *problem {
	if p := checkEntry(t, t == nil); p != nil {
		return p
	}
	if t.Kind == messages.Test_KIND_EPOCH {
		if len(t.Key) > 0 || len(t.Value) > 0 || t.Epoch == 0 {
			return &problem{ErrInvalidOp, ": an epoch test takes a non-zero epoch and no key or value"}
		}
		return nil
	}
	return validateKind(l, t, t.Kind, "test", testUsesValue)
}

func (l Limits) validateOp(o *messages.Op) *problem {
	if p := checkEntry(o, o == nil); p != nil {
		return p
	}
	return validateKind(l, o, o.Kind, "op", opUsesValue)
}

// testUsesValue and opUsesValue list the kinds of key tests and ops, each
// with whether it uses the value (an EQUALS test compares it, a PUT stores
// it). A kind not listed is unknown to this version. (An EPOCH test has no
// key; validateTest checks it itself.)
var (
	testUsesValue = map[messages.Test_Kind]bool{
		messages.Test_KIND_ABSENT:  false,
		messages.Test_KIND_PRESENT: false,
		messages.Test_KIND_EQUALS:  true,
	}
	opUsesValue = map[messages.Op_Kind]bool{
		messages.Op_KIND_GET:    false,
		messages.Op_KIND_DELETE: false,
		messages.Op_KIND_PUT:    true,
	}
)

// validateKind checks a test's or an op's (noun's) kind, then its key and
// value as the kind uses them.
func validateKind[K interface {
	~int32
	fmt.Stringer
}](l Limits, e keyValue, kind K, noun string, usesValue map[K]bool) *problem {
	uses, known := usesValue[kind]
	if !known {
		return &problem{ErrInvalidOp, fmt.Sprintf(": unknown %s kind %d", noun, int32(kind))}
	}
	return l.validateKeyValue(e, kind, noun, uses)
}

// checkEntry refuses a nil test or op, or one with fields this version
// does not know (a newer client's feature that would be silently ignored).
func checkEntry(m proto.Message, isNil bool) *problem {
	if isNil {
		return &problem{ErrInvalidOp, " is nil"}
	}
	if len(m.ProtoReflect().GetUnknown()) > 0 {
		return &problem{ErrInvalidOp, ": has fields unknown to this version"}
	}
	return nil
}

// keyValue is what tests and ops share: a key, and a value their kind may
// use.
type keyValue interface {
	GetKey() []byte
	GetValue() []byte
}

// validateKeyValue checks the key and value of a test or an op (noun) of
// a known kind: a kind that uses the value (a PUT, an EQUALS test) takes
// one within MaxValueBytes; any other must carry none, since a value that
// has no effect is almost always a caller bug.
func (l Limits) validateKeyValue(e keyValue, kind fmt.Stringer, noun string, usesValue bool) *problem {
	key, value := e.GetKey(), e.GetValue()
	if !usesValue && len(value) > 0 {
		return &problem{ErrInvalidOp, fmt.Sprintf(": value set on a %v %s, which ignores it", kind, noun)}
	}
	if usesValue && len(value) > l.MaxValueBytes {
		return &problem{ErrValueTooLarge, fmt.Sprintf(": key %s: value is %d bytes, limit %d",
			quoteKey(key), len(value), l.MaxValueBytes)}
	}
	return l.validateKey(key)
}

func (l Limits) validateKey(key []byte) *problem {
	if len(key) == 0 {
		return &problem{ErrEmptyKey, ""}
	}
	if len(key) > l.MaxKeyBytes {
		return &problem{ErrKeyTooLarge, fmt.Sprintf(": key %s is %d bytes, limit %d",
			quoteKey(key), len(key), l.MaxKeyBytes)}
	}
	return nil
}

// quoteKey quotes at most a short prefix of key, so that an error about a
// 4 KiB key (or a 1 MiB value) stays readable in a log line.
func quoteKey(key []byte) string {
	const max = 32
	if len(key) > max {
		return fmt.Sprintf("%q...", key[:max])
	}
	return fmt.Sprintf("%q", key)
}
