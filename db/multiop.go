package db

import (
	"fmt"

	"github.com/livepaxos/livepaxos/messages"
)

// Put returns a MultiOp that sets key to value unconditionally. Its single
// result's Found reports whether key existed before.
//
// Like every constructor here, Put does not copy key or value: the MultiOp
// refers to them, so do not modify them until the MultiOp has been encoded.
// (The KV itself always copies what it stores.)
func Put(key, value []byte) *messages.MultiOp {
	return &messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: key, Value: value}}}
}

// Get returns a MultiOp that reads key. Sending a Get through the log, rather
// than using KV.Read, orders it with every write: the read is linearizable.
func Get(key []byte) *messages.MultiOp {
	return &messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_GET, Key: key}}}
}

// Delete returns a MultiOp that removes key. Its single result's Found reports
// whether key existed.
func Delete(key []byte) *messages.MultiOp {
	return &messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_DELETE, Key: key}}}
}

// CompareAndSwap returns a MultiOp that puts newValue only if key currently
// equals old. old == nil means the key must be absent; a non-nil empty old
// ([]byte{}) means the key must be present with an empty value.
//
// On success the result has Succeeded and one PUT result. On failure the f_op
// list reads key, so the single result carries the current value (Found false
// if absent): a client can retry with it without a separate read.
func CompareAndSwap(key, old, newValue []byte) *messages.MultiOp {
	guard := &messages.Test{Kind: messages.Test_KIND_ABSENT, Key: key}
	if old != nil {
		guard = &messages.Test{Kind: messages.Test_KIND_EQUALS, Key: key, Value: old}
	}
	return &messages.MultiOp{
		Guard: []*messages.Test{guard},
		TOp:   []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: key, Value: newValue}},
		FOp:   []*messages.Op{{Kind: messages.Op_KIND_GET, Key: key}},
	}
}

// Execute runs an already-decoded MultiOp against the database: if every
// guard test holds (an empty guard always holds) it runs t_op, otherwise
// f_op, and returns Succeeded = whether the guard held plus one result per op
// of the list that ran.
//
// The guard is evaluated against the state before any op runs; the ops then
// run in order, each seeing the effects of the ones before it (a GET after a
// PUT of the same key in the same list sees the new value). Result values are
// fresh copies that the caller may keep or modify.
//
// A MultiOp that fails Validate with the limits Apply uses (the group's
// value limit: see limits.go), or whose result would be over the group's
// result limit (result.go), is not run at all: Execute
// returns an empty MultiOpResult (Succeeded false, no results) and changes
// nothing. Call Validate first to learn why; Apply reports the reason.
// Execute does not touch LastApplied.
func (kv *KV) Execute(op *messages.MultiOp) *messages.MultiOpResult {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	res, _ := kv.execute(op, true)
	return res
}

// execute is Execute that also returns the validation error.
//
// Atomicity comes from validating first: Validate rejects everything an op
// could fail on (unknown kinds, bad keys, sizes), and a valid GET, PUT or
// DELETE on a map cannot fail, so once the first op runs the whole list runs.
// No undo log is needed.
//
// write is false for Query (a read-only MultiOp under the read lock): the
// session part, which may change state, is skipped, and the result is
// bounded even while the group set no limit (resultLimit).
func (kv *KV) execute(op *messages.MultiOp, write bool) (*messages.MultiOpResult, error) {
	if err := kv.applyLimits().Validate(op); err != nil {
		return &messages.MultiOpResult{}, sizeCoded(err)
	}
	var s *session
	if write {
		var first *messages.MultiOpResult
		var err error
		if s, first, err = kv.beginSession(op); err != nil {
			return &messages.MultiOpResult{}, err
		} else if first != nil {
			return first, nil // a retry: the first result, nothing applied again
		}
	}
	succeeded := kv.guardHolds(op.Guard)
	ops := op.FOp
	if succeeded {
		ops = op.TOp
	}
	budget := kv.newRangeBudget()
	if limit := kv.resultLimit(write); limit > 0 {
		left, err := kv.checkResult(ops, limit, kv.resultWhose())
		if err != nil {
			return &messages.MultiOpResult{}, err
		}
		budget.limit(left)
	}
	res := &messages.MultiOpResult{Succeeded: succeeded}
	if len(ops) > 0 {
		res.Results = make([]*messages.OpResult, len(ops))
		for i, o := range ops {
			res.Results[i] = kv.run(o, op.Session, &budget)
		}
	}
	kv.endSessionWrite(s, op, res)
	return res, nil
}

// guardHolds reports whether every test holds in the current state.
func (kv *KV) guardHolds(guard []*messages.Test) bool {
	for _, t := range guard {
		if !kv.holds(t) {
			return false
		}
	}
	return true
}

// holds evaluates one validated test. EQUALS requires presence: an absent key
// never equals anything, not even the empty value, so "present and empty"
// and "absent" stay distinguishable.
func (kv *KV) holds(t *messages.Test) bool {
	if t.Kind == messages.Test_KIND_EPOCH {
		return kv.epoch == t.Epoch
	}
	e, ok := kv.get(string(t.Key))
	switch t.Kind {
	case messages.Test_KIND_ABSENT:
		return !ok
	case messages.Test_KIND_PRESENT:
		return ok
	case messages.Test_KIND_EQUALS:
		return ok && e.value == string(t.Value)
	case messages.Test_KIND_CREATE_INSTANCE:
		return ok && e.create == t.Instance
	case messages.Test_KIND_MOD_INSTANCE:
		return ok && e.mod == t.Instance
	case messages.Test_KIND_VERSION:
		return ok && e.version == t.Version
	case messages.Test_KIND_SEQUENCER:
		return kv.sequencerHolds(t)
	}
	panic(fmt.Sprintf("db: unvalidated test kind %d reached execution", int32(t.Kind)))
}

// run executes one validated op. Storing string(...) copies the caller's
// bytes, and returning []byte(v) copies them out, so neither the request
// buffers nor a returned value can alias the stored data.
// sid is the MultiOp's session (validated to be set for the kinds that
// need one, and live: execute checked).
func (kv *KV) run(o *messages.Op, sid uint64, budget *rangeBudget) *messages.OpResult {
	switch o.Kind {
	case messages.Op_KIND_GET:
		e, ok := kv.get(string(o.Key))
		if !ok {
			return &messages.OpResult{}
		}
		return &messages.OpResult{Found: true, Value: []byte(e.value),
			CreateInstance: e.create, ModInstance: e.mod, Version: e.version, Owner: e.owner}
	case messages.Op_KIND_PUT:
		owner := uint64(0)
		if o.Ephemeral {
			owner = sid
		}
		return &messages.OpResult{Found: kv.put(string(o.Key), string(o.Value), owner)}
	case messages.Op_KIND_DELETE:
		return &messages.OpResult{Found: kv.del(string(o.Key))}
	case messages.Op_KIND_RANGE:
		return kv.rangeOf(o, budget)
	case messages.Op_KIND_SESSION_OPEN:
		return kv.openSession(o)
	case messages.Op_KIND_SESSION_CLOSE:
		return &messages.OpResult{Found: kv.endSession(sid, false)}
	case messages.Op_KIND_SESSION_EXPIRE:
		return &messages.OpResult{Found: kv.endSession(o.Session, true)}
	case messages.Op_KIND_LOCK:
		if _, live := kv.sessions[sid]; !live {
			return &messages.OpResult{} // closed earlier in the same MultiOp
		}
		return kv.acquire(o, sid)
	case messages.Op_KIND_UNLOCK:
		return &messages.OpResult{Found: kv.release(string(o.Key), sid, false)}
	case messages.Op_KIND_LOCK_INFO:
		return kv.lockInfo(o)
	case messages.Op_KIND_SET_LIMITS:
		return kv.setLimits(o)
	}
	panic(fmt.Sprintf("db: unvalidated op kind %d reached execution", int32(o.Kind)))
}

// change is run for an op whose result is not wanted: the same change to
// the state, nothing read or copied out.
func (kv *KV) change(o *messages.Op) {
	switch o.Kind {
	case messages.Op_KIND_PUT:
		kv.put(string(o.Key), string(o.Value), 0)
	case messages.Op_KIND_DELETE:
		kv.del(string(o.Key))
	}
}

// EpochIs is a guard test that holds while the current epoch is epoch
// (§5.3): a MultiOp guarded by it runs t_op only if mastership has not
// changed since the epoch was read.
func EpochIs(epoch uint64) *messages.Test {
	return &messages.Test{Kind: messages.Test_KIND_EPOCH, Epoch: epoch}
}

// CreateInstanceIs is a guard test that holds while key exists and was
// created at log instance instance: the key has not been deleted and
// created again since it was read.
func CreateInstanceIs(key []byte, instance uint64) *messages.Test {
	return &messages.Test{Kind: messages.Test_KIND_CREATE_INSTANCE, Key: key, Instance: instance}
}

// ModInstanceIs is a guard test that holds while key exists and its last
// put was at log instance instance: compare-and-swap without ABA.
func ModInstanceIs(key []byte, instance uint64) *messages.Test {
	return &messages.Test{Kind: messages.Test_KIND_MOD_INSTANCE, Key: key, Instance: instance}
}

// VersionIs is a guard test that holds while key exists at version
// version (1 at its creation, +1 per put).
func VersionIs(key []byte, version uint64) *messages.Test {
	return &messages.Test{Kind: messages.Test_KIND_VERSION, Key: key, Version: version}
}
