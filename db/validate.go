package db

import (
	"errors"
	"fmt"
	"time"

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
// Apply re-validates every chosen command with these limits, save one:
// the value limit Apply uses is the group's, set through the log
// (limits.go), never the KV's own MaxValueBytes, which is only the door
// check before the log sets one. The other limits are part of the state
// machine's definition: every replica of a cluster must use the same ones
// (a node sets none of them; they are this version's defaults).
type Limits struct {
	MaxKeyBytes int // default 4 KiB
	// MaxValueBytes: default 1 MiB, at most MaxValueBytesCeiling (a larger
	// one is taken as the ceiling).
	MaxValueBytes int
	MaxOps        int // guard + t_op + f_op entries; default 1024
	// MaxRangeKeys and MaxRangeBytes bound what the RANGE ops of one
	// MultiOp return together (keys; bytes of keys and values): default
	// DefaultMaxRangeKeys and DefaultMaxRangeBytes.
	MaxRangeKeys  int
	MaxRangeBytes int
	// MaxSessions bounds the live sessions (DefaultMaxSessions), and
	// MaxSessionResults a session's unacknowledged sequenced writes
	// (DefaultMaxSessionResults).
	MaxSessions       int
	MaxSessionResults int
	// WatchEvents and WatchEventBytes bound the changes kept for
	// watchers (DefaultWatchEvents, DefaultWatchEventBytes). They are not
	// replicated state: replicas may keep different amounts.
	WatchEvents     int
	WatchEventBytes int
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
	l.MaxKeyBytes = orDefault(l.MaxKeyBytes, DefaultMaxKeyBytes)
	l.MaxValueBytes = min(orDefault(l.MaxValueBytes, DefaultMaxValueBytes), MaxValueBytesCeiling)
	l.MaxOps = orDefault(l.MaxOps, DefaultMaxOps)
	l.MaxRangeKeys = orDefault(l.MaxRangeKeys, DefaultMaxRangeKeys)
	l.MaxRangeBytes = orDefault(l.MaxRangeBytes, DefaultMaxRangeBytes)
	l.MaxSessions = orDefault(l.MaxSessions, DefaultMaxSessions)
	l.MaxSessionResults = orDefault(l.MaxSessionResults, DefaultMaxSessionResults)
	l.WatchEvents = orDefault(l.WatchEvents, DefaultWatchEvents)
	l.WatchEventBytes = orDefault(l.WatchEventBytes, DefaultWatchEventBytes)
	return l
}

// orDefault is v, or def where v is unset (zero or negative).
func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
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
	if op.Session == 0 && (op.Seq != 0 || op.Acked != 0) {
		return fmt.Errorf("%w: a sequence number needs a session", ErrInvalidOp)
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
			err := l.validateOp(o)
			if err == nil && op.Session == 0 && needsSession(o) {
				err = &problem{ErrInvalidOp, fmt.Sprintf(": a %v op acts for a session; the MultiOp names none", o.Kind)}
			}
			if err != nil {
				return fmt.Errorf("%w: %s[%d]%s", err.sentinel, list.name, i, err.detail)
			}
		}
	}
	if HasAdminOps(op) {
		return validateSetLimits(op)
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
	if t == nil {
		return &problem{ErrInvalidOp, " is nil"}
	}
	if len(t.ProtoReflect().GetUnknown()) > 0 {
		return &problem{ErrInvalidOp, ": has fields unknown to this version"}
	}
	if t.Kind != messages.Test_KIND_CREATE_INSTANCE && t.Kind != messages.Test_KIND_MOD_INSTANCE &&
		t.Kind != messages.Test_KIND_SEQUENCER && t.Instance != 0 ||
		t.Kind != messages.Test_KIND_VERSION && t.Version != 0 ||
		t.Kind != messages.Test_KIND_SEQUENCER && t.Shared {
		return &problem{ErrInvalidOp, fmt.Sprintf(": instance, version or shared set on a %v test, which ignores it", t.Kind)}
	}
	switch t.Kind {
	case messages.Test_KIND_SEQUENCER:
		if len(t.Value) > 0 || t.Instance == 0 {
			return &problem{ErrInvalidOp, ": a sequencer test takes a lock name and a non-zero instance, no value"}
		}
	case messages.Test_KIND_CREATE_INSTANCE, messages.Test_KIND_MOD_INSTANCE, messages.Test_KIND_VERSION:
		if len(t.Value) > 0 || t.Instance == 0 && t.Version == 0 {
			return &problem{ErrInvalidOp, fmt.Sprintf(": a %v test takes a key and a non-zero number, no value", t.Kind)}
		}
	case messages.Test_KIND_ABSENT, messages.Test_KIND_PRESENT:
		if len(t.Value) > 0 {
			return ignoredValue(t.Kind, "test")
		}
	case messages.Test_KIND_EQUALS:
		return l.validateKeyValue(t.Key, t.Value)
	case messages.Test_KIND_EPOCH:
		if len(t.Key) > 0 || len(t.Value) > 0 || t.Epoch == 0 {
			return &problem{ErrInvalidOp, ": an epoch test takes a non-zero epoch and no key or value"}
		}
		return nil
	default:
		return &problem{ErrInvalidOp, fmt.Sprintf(": unknown test kind %d", int32(t.Kind))}
	}
	return l.validateKey(t.Key)
}

func (l Limits) validateOp(o *messages.Op) *problem {
	if o == nil {
		return &problem{ErrInvalidOp, " is nil"}
	}
	if len(o.ProtoReflect().GetUnknown()) > 0 {
		return &problem{ErrInvalidOp, ": has fields unknown to this version"}
	}
	if o.Kind != messages.Op_KIND_RANGE && (len(o.RangeEnd) > 0 || o.Prefix || o.Limit != 0 || o.LimitBytes != 0) ||
		o.Kind != messages.Op_KIND_PUT && o.Ephemeral ||
		o.Kind != messages.Op_KIND_SESSION_OPEN && o.TtlMs != 0 ||
		o.Kind != messages.Op_KIND_SESSION_EXPIRE && o.Session != 0 ||
		o.Kind != messages.Op_KIND_LOCK && (o.Shared || o.Wait || o.LockDelayMs != 0) ||
		o.Kind != messages.Op_KIND_SET_LIMITS && (o.MaxValueBytes != 0 || o.MaxResultBytes != 0) {
		return &problem{ErrInvalidOp, fmt.Sprintf(": fields set on a %v op, which ignores them", o.Kind)}
	}
	switch o.Kind {
	case messages.Op_KIND_RANGE:
		return l.validateRange(o)
	case messages.Op_KIND_SET_LIMITS:
		return validateLimitsOp(o)
	case messages.Op_KIND_SESSION_OPEN, messages.Op_KIND_SESSION_CLOSE, messages.Op_KIND_SESSION_EXPIRE:
		if len(o.Key) > 0 || len(o.Value) > 0 {
			return &problem{ErrInvalidOp, fmt.Sprintf(": a %v op takes no key or value", o.Kind)}
		}
		ttl := time.Duration(o.TtlMs) * time.Millisecond
		if o.Kind == messages.Op_KIND_SESSION_OPEN && (o.TtlMs > uint64(MaxSessionTTL/time.Millisecond) || ttl < MinSessionTTL) {
			return &problem{ErrInvalidOp, fmt.Sprintf(": session TTL %d ms: want %v to %v", o.TtlMs, MinSessionTTL, MaxSessionTTL)}
		}
		if o.Kind == messages.Op_KIND_SESSION_EXPIRE && o.Session == 0 {
			return &problem{ErrInvalidOp, ": an expiry names its session"}
		}
		return nil
	case messages.Op_KIND_LOCK, messages.Op_KIND_UNLOCK, messages.Op_KIND_LOCK_INFO:
		if len(o.Value) > 0 {
			return ignoredValue(o.Kind, "op")
		}
		if o.LockDelayMs > uint64(MaxLockDelay/time.Millisecond) {
			return &problem{ErrInvalidOp, fmt.Sprintf(": lock-delay %d ms over the maximum %v", o.LockDelayMs, MaxLockDelay)}
		}
	case messages.Op_KIND_GET, messages.Op_KIND_DELETE:
		if len(o.Value) > 0 {
			return ignoredValue(o.Kind, "op")
		}
	case messages.Op_KIND_PUT:
		return l.validateKeyValue(o.Key, o.Value)
	default:
		return &problem{ErrInvalidOp, fmt.Sprintf(": unknown op kind %d", int32(o.Kind))}
	}
	return l.validateKey(o.Key)
}

// ignoredValue is the problem of a value on a test or op (what) of a kind
// that ignores it.
func ignoredValue(kind fmt.Stringer, what string) *problem {
	return &problem{ErrInvalidOp, fmt.Sprintf(": value set on a %v %s, which ignores it", kind, what)}
}

// validateKeyValue checks the value an EQUALS test compares or a PUT
// stores, then its key.
func (l Limits) validateKeyValue(key, value []byte) *problem {
	if len(value) > l.MaxValueBytes {
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

// validateRange checks a RANGE op: its key may be empty (from the first
// key), and it ends at range_end or at the prefix's end, not both.
func (l Limits) validateRange(o *messages.Op) *problem {
	if len(o.Value) > 0 {
		return &problem{ErrInvalidOp, ": value set on a KIND_RANGE op, which ignores it"}
	}
	for _, k := range [][]byte{o.Key, o.RangeEnd} {
		if len(k) > l.MaxKeyBytes {
			return &problem{ErrKeyTooLarge, fmt.Sprintf(": key %s is %d bytes, limit %d", quoteKey(k), len(k), l.MaxKeyBytes)}
		}
	}
	if o.Prefix && len(o.RangeEnd) > 0 {
		return &problem{ErrInvalidOp, ": a range takes a prefix or an end, not both"}
	}
	if len(o.RangeEnd) > 0 && string(o.RangeEnd) <= string(o.Key) {
		return &problem{ErrInvalidOp, fmt.Sprintf(": range end %s does not come after its start %s", quoteKey(o.RangeEnd), quoteKey(o.Key))}
	}
	return nil
}

// needsSession reports whether o acts for the MultiOp's session.
func needsSession(o *messages.Op) bool {
	switch o.Kind {
	case messages.Op_KIND_SESSION_CLOSE, messages.Op_KIND_LOCK, messages.Op_KIND_UNLOCK:
		return true
	case messages.Op_KIND_PUT:
		return o.Ephemeral
	}
	return false
}

// HasMasterOnlyOps reports whether op holds an op only a master proposes
// (a session's expiry): a client's MultiOp with one is refused.
func HasMasterOnlyOps(op *messages.MultiOp) bool {
	return hasOpOfKind(op, messages.Op_KIND_SESSION_EXPIRE)
}

// hasOpOfKind reports whether op's t_op or f_op holds an op of kind.
func hasOpOfKind(op *messages.MultiOp, kind messages.Op_Kind) bool {
	for _, list := range [][]*messages.Op{op.GetTOp(), op.GetFOp()} {
		for _, o := range list {
			if o.GetKind() == kind {
				return true
			}
		}
	}
	return false
}
