package sim

import (
	"errors"
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
