package db

import (
	"errors"
	"fmt"

	"github.com/livepaxos/livepaxos/messages"
)

// The group's value limit (issue 15, item 5).
//
// Whether a command applies must be the same on every replica, or they
// split: one stores a value another refused. So the limit Apply checks
// values against is replicated state, chosen through the log like the
// membership: a KIND_SET_LIMITS op (SetLimits), proposed by an operator,
// sets it from its instance on, on every replica alike, and snapshots and
// checksums carry it with the sessions and locks. A node's own
// configuration (NewWithLimits, the node's --max-value-bytes) never
// reaches Apply: it is only the door check of a group whose log has not
// set a limit yet, which refuses a request before it is proposed (a
// refusal, never a split).
//
// Until the log sets one, Apply takes any value up to MaxValueBytesCeiling:
// every command in such a log was checked at its master's door already,
// and a constant is the only bound all replicas share whatever their
// flags. That is also exactly what a group that ran this version's
// predecessor with the default limit applied, so its log replays the same.

// MaxValueBytesCeiling is the largest value limit a group may set, and
// what Apply allows while the log has set none. It is not larger because
// of what carries a value: a command is at most the ceiling plus
// CommandOverheadBytes, an instance batches commands up to
// paxos.ProposerConfig.MaxBatchBytes (one larger command alone), one
// Accept carries up to MaxInflight instances in one peer message
// (cluster.DefaultMaxMessageBytes), and one WAL record holds one instance
// (storage.DefaultMaxRecordBytes). actors checks those relations when a
// replica starts (actors.CheckBounds); raising the ceiling means raising
// them with it.
const MaxValueBytesCeiling = DefaultMaxValueBytes

// CommandOverheadBytes is the room an encoded MultiOp may take beyond its
// largest value: its key (DefaultMaxKeyBytes) and the framing of its ops.
// A node refuses larger commands before anything else (MaxCommandBytes).
const CommandOverheadBytes = 64 << 10

// MaxCommandBytes is the largest encoded command a node accepts: a value
// at the ceiling with its key and the MultiOp around it.
const MaxCommandBytes = MaxValueBytesCeiling + CommandOverheadBytes

// ErrAdminOp refuses an operator's op (a limits change) in a client's
// MultiOp: it is proposed through the admin call SetLimits only.
var ErrAdminOp = errors.New("db: an operator's op")

// GroupLimits is the group's value and result limits as the applied log
// set them.
type GroupLimits struct {
	// MaxValueBytes is 0 while the log has set none.
	MaxValueBytes int
	// Instance is the log instance that set it (0: none).
	Instance uint64
	// MaxResultBytes is the group's result limit (result.go), 0 while the
	// log has set none; ResultInstance is the instance that set it.
	MaxResultBytes int
	ResultInstance uint64
}

// Set reports whether the log has set a value limit.
func (g GroupLimits) Set() bool { return g.MaxValueBytes > 0 }

// ResultSet reports whether the log has set a result limit.
func (g GroupLimits) ResultSet() bool { return g.MaxResultBytes > 0 }

// SetLimits returns the MultiOp that sets the group's value limit to
// maxValueBytes (1 to MaxValueBytesCeiling) from the instance it is chosen
// at. Values stored before it stay, whatever their size.
func SetLimits(maxValueBytes uint64) *messages.MultiOp {
	return SetGroupLimits(maxValueBytes, 0)
}

// SetGroupLimits returns the MultiOp that sets the group's value limit
// (maxValueBytes, 1 to MaxValueBytesCeiling) and its result limit
// (maxResultBytes, MinResultBytes to MaxResultBytesCeiling) from the
// instance it is chosen at; a 0 leaves that limit as it is (not both).
func SetGroupLimits(maxValueBytes, maxResultBytes uint64) *messages.MultiOp {
	return &messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_SET_LIMITS,
		MaxValueBytes: maxValueBytes, MaxResultBytes: maxResultBytes}}}
}

// validateLimitsOp checks the limits a KIND_SET_LIMITS op sets.
func validateLimitsOp(o *messages.Op) *problem {
	switch {
	case len(o.Key) > 0 || len(o.Value) > 0:
		return &problem{ErrInvalidOp, ": a limits change takes no key or value"}
	case o.MaxValueBytes == 0 && o.MaxResultBytes == 0:
		return &problem{ErrInvalidOp, ": a limits change sets a value limit, a result limit or both"}
	case o.MaxValueBytes > MaxValueBytesCeiling:
		return &problem{ErrInvalidOp, fmt.Sprintf(": value limit %d: want 1 to %d bytes", o.MaxValueBytes, MaxValueBytesCeiling)}
	case o.MaxResultBytes != 0 && (o.MaxResultBytes < MinResultBytes || o.MaxResultBytes > MaxResultBytesCeiling):
		return &problem{ErrInvalidOp, fmt.Sprintf(": result limit %d: want %d to %d bytes", o.MaxResultBytes, MinResultBytes, MaxResultBytesCeiling)}
	}
	return nil
}

// HasAdminOps reports whether op holds an operator's op (KIND_SET_LIMITS).
func HasAdminOps(op *messages.MultiOp) bool {
	return hasOpOfKind(op, messages.Op_KIND_SET_LIMITS)
}

// validateSetLimits checks that a KIND_SET_LIMITS op (validateOp checked
// the op itself) is alone in its MultiOp, with no guard and no session, so
// that nothing else is validated against the limit it replaces.
func validateSetLimits(op *messages.MultiOp) error {
	if len(op.Guard) > 0 || len(op.TOp) != 1 || len(op.FOp) > 0 || op.Session != 0 {
		return fmt.Errorf("%w: a limits change is alone in its MultiOp (no guard, no other op, no session)", ErrInvalidOp)
	}
	return nil
}

// GroupLimits returns the group's limits as the applied log set them.
func (kv *KV) GroupLimits() GroupLimits {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	return kv.group
}

// Limits returns the limits a new command is checked against before it is
// proposed, defaults filled in: the group's value limit once the log set
// one, else the one the KV was made with (NewWithLimits). It takes no
// lock: a proposer checks every command with it while Apply runs.
func (kv *KV) Limits() Limits {
	l := kv.limits
	if v := kv.doorValue.Load(); v > 0 {
		l.MaxValueBytes = int(v)
	}
	return l
}

// applyLimits are the limits Apply checks a chosen command against: the
// same on every replica that applied the same log (callers hold kv.mu).
func (kv *KV) applyLimits() Limits {
	l := kv.limits
	l.MaxValueBytes = MaxValueBytesCeiling
	if kv.group.Set() {
		l.MaxValueBytes = kv.group.MaxValueBytes
	}
	return l
}

// setLimits runs a validated KIND_SET_LIMITS op at the instance being
// applied: each limit it names (not 0) is set, the other stays.
func (kv *KV) setLimits(o *messages.Op) *messages.OpResult {
	g := kv.group
	if o.MaxValueBytes > 0 {
		g.MaxValueBytes, g.Instance = int(o.MaxValueBytes), kv.lastApplied
	}
	if o.MaxResultBytes > 0 {
		g.MaxResultBytes, g.ResultInstance = int(o.MaxResultBytes), kv.lastApplied
	}
	kv.setGroup(g)
	return &messages.OpResult{Found: true}
}

// setGroup makes g the group's limits (callers hold kv.mu as writers).
func (kv *KV) setGroup(g GroupLimits) {
	kv.group = g
	kv.doorValue.Store(int64(g.MaxValueBytes))
	kv.doorResult.Store(int64(g.MaxResultBytes))
}

// sizeCoded gives a size refusal at Apply the client's TOO_LARGE code, as
// the same refusal at the door gets.
func sizeCoded(err error) error {
	if errors.Is(err, ErrValueTooLarge) || errors.Is(err, ErrKeyTooLarge) || errors.Is(err, ErrTooManyOps) {
		return codedError{err, messages.ErrorCode_ERROR_CODE_TOO_LARGE}
	}
	return err
}
