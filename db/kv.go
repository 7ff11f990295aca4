// Package db is the replicated key-value database of "Paxos Made Live" §5.6:
// the deterministic state machine that every replica runs over the chosen
// log.
//
// Keys and values are byte strings. Every change is a MultiOp: a guard (a
// list of tests: key absent, key present, key's value equal to X), a t_op
// list run when every test holds, and an f_op list run otherwise, applied as
// one atomic step. Put, Get, Delete and CompareAndSwap build the common
// MultiOps.
//
// Determinism is the whole point: replicas that Apply the same payloads in the
// same order must reach the same state (compare with Hash) and return the
// same results, including the same errors for invalid commands.
package db

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/google/btree"

	"github.com/livepaxos/livepaxos/messages"
	"google.golang.org/protobuf/proto"
)

// KV is the in-memory database.
//
// Apply and ApplyBatch must be called from one goroutine at a time (the
// replica applies chosen values from a single actor); Query, Read, Hash and
// the other readers may run concurrently with them, which is how a master
// serves lease reads on other goroutines while the replica applies.
//
// Values are held as Go strings because they are immutable: storing
// string(b) copies the caller's bytes once, and nothing, neither a reused
// request buffer nor a later op, can change a stored value in place.
type KV struct {
	mu   sync.RWMutex
	data map[string]entry
	// index holds every present key in order, for range reads: the map
	// answers point reads, the tree the ranges. It always reflects the
	// current contents (delta included), never a frozen snapshot's.
	index *btree.BTreeG[string]
	// limits are the KV's own (NewWithLimits); group is the value and
	// result limits the log set (limits.go, result.go), which alone Apply
	// checks against. limits never change after NewWithLimits; group does
	// under mu, and doorValue and doorResult mirror its limits (0: none)
	// for the door checks, lock-free.
	limits      Limits
	group       GroupLimits
	doorValue   atomic.Int64
	doorResult  atomic.Int64
	lastApplied uint64
	// epoch is the current mastership's epoch (§5.3), as the log says:
	// MultiOps can be made conditional on it.
	epoch uint64
	// delta is not nil while a snapshot is being written (§5.5): data is
	// then frozen, read without the lock by the snapshot's writer, and
	// every change goes here instead; a nil *entry marks a deletion.
	delta map[string]*entry

	// Sessions and locks (sessions.go, locks.go): small beside the data,
	// so a snapshot or checksum encodes them when it begins.
	sessions    map[uint64]*session
	locks       map[string]*messages.LockRecord
	nextSession uint64
	nowMs       int64 // the log's time (ObserveTime)
	events      []SessionEvent
	// plantedNoLockDelay: a planted bug (PlantNoLockDelay).
	plantedNoLockDelay bool

	// Watches (watch.go): the changes of the last instances, from
	// changesFrom on, in order; complete is the last instance whose every
	// command applied; notify is closed when it grows.
	changes     []change
	changeBytes int
	changesFrom uint64
	complete    uint64
	notify      chan struct{}
}

// entry is one key's value and metadata.
type entry struct {
	value string
	// create and mod are the log instances of the key's creation and of
	// its last put; version is 1 at creation and grows by one per put.
	// They are replicated state (guards test them), so snapshots and
	// Hash carry them.
	create, mod, version uint64
	// owner is the session an ephemeral key is bound to (0: none).
	owner uint64
}

// ErrNotReadOnly is returned by Query for a MultiOp that could change data.
var ErrNotReadOnly = errors.New("db: query is not read-only")

// New returns an empty database with the default Limits.
func New() *KV { return NewWithLimits(Limits{}) }

// NewWithLimits returns an empty database that validates commands with l:
// l.MaxValueBytes only at the door (Limits) until the log sets the group's
// value limit, the others at Apply too, so every replica of a cluster must
// use the same ones (see Limits).
func NewWithLimits(l Limits) *KV {
	return &KV{data: make(map[string]entry), index: newIndex(), limits: l.withDefaults(),
		sessions: make(map[uint64]*session), locks: make(map[string]*messages.LockRecord), changesFrom: 1}
}

// Apply applies one command payload, a proto-encoded MultiOp, chosen at log
// position instance, and returns the proto-encoded MultiOpResult.
//
// An invalid command is reported, not fatal. If the payload does not decode
// as a MultiOp, or decodes but fails Validate, Apply changes no data and
// returns the encoding of MultiOpResult{Succeeded: false} (zero bytes long)
// together with a non-nil error: one wrapping ErrMalformed for a payload that
// does not decode, or Validate's error (wrapping ErrEmptyKey, ErrKeyTooLarge,
// ErrValueTooLarge, ErrTooManyOps or ErrInvalidOp), or, once the group set a
// result limit, ErrResultTooLarge (result.go). Every replica reaches the
// same verdict, so the replica should keep going and relay the error to the
// client (for instance as ERROR_CODE_INVALID, or ERROR_CODE_TOO_LARGE for the
// size errors). A nil error means the command ran, whether or not its guard
// held.
//
// LastApplied becomes instance even for an invalid command: the log position
// was consumed.
//
// Apply panics if instance < LastApplied(). Applying log positions out of
// order means the replica's bookkeeping is broken and the state can no longer
// be trusted; like the paper's assertions, it stops the process rather than
// serve diverged data. Several commands of one chosen Value share an
// instance, so equal instances are allowed here (ApplyBatch, which takes the
// whole Value, is stricter).
func (kv *KV) Apply(instance uint64, payload []byte) ([]byte, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.advanceTo(instance)
	return kv.apply(payload)
}

// advanceTo records instance as applied, or panics (see Apply) if the log
// position goes back. kv.mu is held.
func (kv *KV) advanceTo(instance uint64) {
	if instance < kv.lastApplied {
		panic(fmt.Sprintf("db: apply of instance %d after instance %d was applied: log positions must not go back",
			instance, kv.lastApplied))
	}
	kv.lastApplied = instance
}

// ApplyQuiet is Apply for a command whose result nobody waits for (one
// another replica proposed, or the log replayed at startup): the same
// change to the state, without building or encoding the result.
func (kv *KV) ApplyQuiet(instance uint64, payload []byte) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.advanceTo(instance)
	op := new(messages.MultiOp)
	if err := proto.Unmarshal(payload, op); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !plainOps(op) {
		_, err := kv.execute(op, true)
		return err
	}
	if err := kv.applyLimits().Validate(op); err != nil {
		return sizeCoded(err)
	}
	ops := op.FOp
	if kv.guardHolds(op.Guard) {
		ops = op.TOp
	}
	// The same refusal as execute's: the results are not built, but
	// whether the command changes anything must not depend on that.
	if limit := kv.resultLimit(true); limit > 0 {
		if _, err := kv.checkResult(ops, limit, kv.resultWhose()); err != nil {
			return err
		}
	}
	for _, o := range ops {
		kv.change(o)
	}
	return nil
}

// plainOps reports whether op is a plain data MultiOp (no session, only
// gets, puts, deletes and ranges, no ephemeral put), which ApplyQuiet may
// apply without building results: a session's writes keep their results.
func plainOps(op *messages.MultiOp) bool {
	if op.Session != 0 || op.Seq != 0 || op.Acked != 0 {
		return false
	}
	for _, list := range [][]*messages.Op{op.TOp, op.FOp} {
		for _, o := range list {
			if o.GetKind() > messages.Op_KIND_RANGE || o.GetEphemeral() {
				return false
			}
		}
	}
	return true
}

// ApplyBatch applies the commands of one chosen Value, all at log position
// instance, in order. results[i] and errs[i] are what Apply would have
// returned for payloads[i]; both slices always have len(payloads) entries. An
// invalid command does not stop the ones after it, because each is a separate
// client request.
//
// With no payloads (a no-op Value that fills a gap) ApplyBatch only records
// instance as LastApplied. It panics on instance ordering exactly as Apply.
func (kv *KV) ApplyBatch(instance uint64, payloads [][]byte) (results [][]byte, errs []error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.advance(instance)
	results = make([][]byte, len(payloads))
	errs = make([]error, len(payloads))
	for i, p := range payloads {
		results[i], errs[i] = kv.apply(p)
	}
	return results, errs
}

// advance asserts that instance comes after everything applied so far and
// records it.
func (kv *KV) advance(instance uint64) {
	if kv.lastApplied != 0 && instance <= kv.lastApplied {
		panic(fmt.Sprintf("db: apply of instance %d after instance %d was applied: log positions must increase",
			instance, kv.lastApplied))
	}
	kv.lastApplied = instance
}

func (kv *KV) apply(payload []byte) ([]byte, error) {
	op := new(messages.MultiOp)
	var res *messages.MultiOpResult
	err := proto.Unmarshal(payload, op)
	if err != nil {
		res, err = &messages.MultiOpResult{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	} else {
		res, err = kv.execute(op, true)
	}
	out, merr := proto.MarshalOptions{Deterministic: true}.Marshal(res)
	if merr != nil {
		// A MultiOpResult has only bools and bytes: encoding cannot fail.
		panic(fmt.Sprintf("db: encoding MultiOpResult: %v", merr))
	}
	return out, err
}

// Read returns the value stored under key, for reads served locally (lease
// reads) without going through the log. ok is false when key is absent; a key
// present with an empty value returns a non-nil empty slice and ok true. The
// value is a fresh copy the caller may modify.
func (kv *KV) Read(key []byte) (value []byte, ok bool) {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	e, ok := kv.get(string(key))
	if !ok {
		return nil, false
	}
	return []byte(e.value), true
}

// Query runs a read-only MultiOp (guards and gets only) against the current
// state without going through the log, and returns the encoded
// MultiOpResult: the lease and stale reads of §5.2. A MultiOp with a put or
// delete is refused with ErrNotReadOnly; one that fails Validate, with
// Validate's error.
func (kv *KV) Query(query []byte) ([]byte, error) {
	op := new(messages.MultiOp)
	if err := proto.Unmarshal(query, op); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !IsReadOnly(op) {
		return nil, ErrNotReadOnly
	}
	kv.mu.RLock()
	res, err := kv.execute(op, false)
	kv.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(res)
}

// IsReadOnly reports whether op changes nothing whichever list runs.
func IsReadOnly(op *messages.MultiOp) bool {
	for _, list := range [][]*messages.Op{op.TOp, op.FOp} {
		for _, o := range list {
			if k := o.GetKind(); k != messages.Op_KIND_GET && k != messages.Op_KIND_RANGE && k != messages.Op_KIND_LOCK_INFO {
				return false
			}
		}
	}
	return true
}

// ObserveEpoch records that the log entered a new epoch (§5.3); the replica
// calls it, in log order, when the value that starts an epoch applies.
func (kv *KV) ObserveEpoch(epoch uint64) {
	kv.mu.Lock()
	kv.epoch = epoch
	kv.mu.Unlock()
}

// Epoch returns the current epoch as the applied log says.
func (kv *KV) Epoch() uint64 {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	return kv.epoch
}

// Len returns the number of keys present.
func (kv *KV) Len() int {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	return kv.index.Len()
}

// LastApplied returns the instance passed to the last Apply or ApplyBatch, or
// 0 if there has been none.
func (kv *KV) LastApplied() uint64 {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	return kv.lastApplied
}
