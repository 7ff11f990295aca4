package sim

import (
	"errors"
	"math"
	"testing"
)

func okOp(kind opKind, key, value string, call, ret int64) *op {
	return &op{kind: kind, key: key, value: value, call: call, ret: ret, status: opOK, succeeded: true}
}

// wantLinearizable fails t, saying failure, if the checker refuses ops.
func wantLinearizable(t *testing.T, failure string, ops ...*op) {
	t.Helper()
	if err := checkLinearizable(ops, 1); err != nil {
		t.Fatalf("%s: %v", failure, err)
	}
}

// wantNotLinearizable fails t, saying failure, unless the checker refuses
// ops as not linearizable.
func wantNotLinearizable(t *testing.T, failure string, ops ...*op) {
	t.Helper()
	if err := checkLinearizable(ops, 1); !errors.Is(err, ErrNotLinearizable) {
		t.Fatalf("%s: %v", failure, err)
	}
}

// The checker itself must be able to say no: histories a correct KV cannot
// produce are refused, and the open-ended writes are bounded as documented.
func TestLinearizabilityCheckerRefusesStaleRead(t *testing.T) {
	put := okOp(opPut, "k0", "a", 0, 10)
	get := okOp(opGet, "k0", "", 20, 30) // reads absent after the put returned
	wantNotLinearizable(t, "stale read accepted", put, get)
	get.found, get.got = true, "a"
	wantLinearizable(t, "fresh read refused", put, get)
}

func TestLinearizabilityUnknownWrites(t *testing.T) {
	// An unknown write that no replica applied had no effect.
	lost := &op{kind: opPut, key: "k0", value: "x", call: 0, status: opUnknown}
	get := okOp(opGet, "k0", "", 20, 30)
	wantLinearizable(t, "unapplied unknown write changed the state", lost, get)
	// One applied at t=15 had taken effect by then: a later read that does
	// not see it is stale.
	lost.instance, lost.appliedAt = 1, 15
	wantNotLinearizable(t, "read missing an applied write accepted", lost, get)
	get.found, get.got = true, "x"
	wantLinearizable(t, "read of an applied unknown write refused", lost, get)
}

func TestLinearizabilityCompareAndSwap(t *testing.T) {
	put := okOp(opPut, "k0", "a", 0, 10)
	cas := okOp(opCAS, "k0", "b", 20, 30)
	cas.oldPresent, cas.old = true, "a"
	get := okOp(opGet, "k0", "", 40, 50)
	get.found, get.got = true, "b"
	put.found = false
	cas.found = true
	wantLinearizable(t, "valid swap refused", put, cas, get)
	cas.succeeded, cas.got = false, "a" // claims the guard failed though the key held a
	get.got = "a"
	wantNotLinearizable(t, "failed swap on a matching value accepted", put, cas, get)
}

// The lock model can say no: two sessions told they hold the lock, the
// second answered after the first was, with neither a release nor an
// expiry of the first in between, is refused; an expiry (or a release)
// that may fall between them makes it legal, and one that came only after
// the second acquisition does not.
func TestLockLinearizabilityModel(t *testing.T) {
	acquire := func(session uint64, call, ret int64) *lockOp {
		return &lockOp{kind: lockAcquire, session: session, client: int(session), call: call, ret: ret, known: true, acquired: true}
	}
	check := func(want bool, what string, ops ...*lockOp) {
		t.Helper()
		err := checkLocksLinearizable(ops)
		if want && err != nil {
			t.Fatalf("%s refused: %v", what, err)
		}
		if !want && !errors.Is(err, ErrLockNotLinearizable) {
			t.Fatalf("%s accepted (%v)", what, err)
		}
	}
	a, b := acquire(1, 0, 10), acquire(2, 20, 30)
	check(false, "two holders at once", a, b)
	check(true, "a release between them", a, b, &lockOp{kind: lockRelease, session: 1, client: 1, call: 12, ret: 15, known: true})
	check(true, "an expiry that may fall between them", a, b, &lockOp{kind: lockExpire, session: 1, client: -1, call: 5, ret: 25, known: true})
	check(false, "an expiry only after the second acquisition", a, b, &lockOp{kind: lockExpire, session: 1, client: -1, call: 31, ret: 40, known: true})
	check(false, "another session's expiry", a, b, &lockOp{kind: lockExpire, session: 3, client: -1, call: 12, ret: 15, known: true})
	open := &lockOp{kind: lockAcquire, session: 3, client: 3, call: 1, ret: math.MaxInt64}
	check(true, "an acquisition whose answer never came, beside a holder", a, open)
	b.acquired = false
	check(true, "an acquisition answered not acquired", a, b)
}
