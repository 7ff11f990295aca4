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
	"fmt"

	"github.com/livepaxos/livepaxos/messages"
	"google.golang.org/protobuf/proto"
)

// KV is the in-memory database.
//
// It is not safe for concurrent use: the replica applies chosen values from a
// single actor, and lease reads (Read) must run on that same actor.
//
// Data is held as map[string]string because Go strings are immutable: storing
// string(b) copies the caller's bytes once, and nothing, neither a reused
// request buffer nor a later op, can change a stored value in place.
type KV struct {
	data        map[string]string
	limits      Limits
	lastApplied uint64
}

// New returns an empty database with the default Limits.
func New() *KV { return NewWithLimits(Limits{}) }

// NewWithLimits returns an empty database that validates commands with l.
// Every replica of a cluster must use the same Limits (see Limits).
func NewWithLimits(l Limits) *KV {
	return &KV{data: make(map[string]string), limits: l.withDefaults()}
}

// Limits returns the limits the database validates with, defaults filled in.
func (kv *KV) Limits() Limits { return kv.limits }

// Apply applies one command payload, a proto-encoded MultiOp, chosen at log
// position instance, and returns the proto-encoded MultiOpResult.
//
// An invalid command is reported, not fatal. If the payload does not decode
// as a MultiOp, or decodes but fails Validate, Apply changes no data and
// returns the encoding of MultiOpResult{Succeeded: false} (zero bytes long)
// together with a non-nil error: one wrapping ErrMalformed for a payload that
// does not decode, or Validate's error (wrapping ErrEmptyKey, ErrKeyTooLarge,
// ErrValueTooLarge, ErrTooManyOps or ErrInvalidOp). Every replica reaches the
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
	if instance < kv.lastApplied {
		panic(fmt.Sprintf("db: apply of instance %d after instance %d was applied: log positions must not go back",
			instance, kv.lastApplied))
	}
	kv.lastApplied = instance
	return kv.apply(payload)
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
		res, err = kv.execute(op)
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
	v, ok := kv.data[string(key)]
	if !ok {
		return nil, false
	}
	return []byte(v), true
}

// Len returns the number of keys present.
func (kv *KV) Len() int { return len(kv.data) }

// LastApplied returns the instance passed to the last Apply or ApplyBatch, or
// 0 if there has been none.
func (kv *KV) LastApplied() uint64 { return kv.lastApplied }
