package sim

import (
	"errors"
	"testing"
)

func okOp(kind opKind, key, value string, call, ret int64) *op {
	return &op{kind: kind, key: key, value: value, call: call, ret: ret, status: opOK, succeeded: true}
}

// The checker itself must be able to say no: histories a correct KV cannot
// produce are refused, and the open-ended writes are bounded as documented.
func TestLinearizabilityCheckerRefusesStaleRead(t *testing.T) {
	put := okOp(opPut, "k0", "a", 0, 10)
	get := okOp(opGet, "k0", "", 20, 30) // reads absent after the put returned
	if err := checkLinearizable([]*op{put, get}, 1); !errors.Is(err, ErrNotLinearizable) {
		t.Fatalf("stale read accepted: %v", err)
	}
	get.found, get.got = true, "a"
	if err := checkLinearizable([]*op{put, get}, 1); err != nil {
		t.Fatalf("fresh read refused: %v", err)
	}
}

func TestLinearizabilityUnknownWrites(t *testing.T) {
	// An unknown write that no replica applied had no effect.
	lost := &op{kind: opPut, key: "k0", value: "x", call: 0, status: opUnknown}
	get := okOp(opGet, "k0", "", 20, 30)
	if err := checkLinearizable([]*op{lost, get}, 1); err != nil {
		t.Fatalf("unapplied unknown write changed the state: %v", err)
	}
	// One applied at t=15 had taken effect by then: a later read that does
	// not see it is stale.
	lost.instance, lost.appliedAt = 1, 15
	if err := checkLinearizable([]*op{lost, get}, 1); !errors.Is(err, ErrNotLinearizable) {
		t.Fatalf("read missing an applied write accepted: %v", err)
	}
	get.found, get.got = true, "x"
	if err := checkLinearizable([]*op{lost, get}, 1); err != nil {
		t.Fatalf("read of an applied unknown write refused: %v", err)
	}
}

func TestLinearizabilityCompareAndSwap(t *testing.T) {
	put := okOp(opPut, "k0", "a", 0, 10)
	cas := okOp(opCAS, "k0", "b", 20, 30)
	cas.oldPresent, cas.old = true, "a"
	get := okOp(opGet, "k0", "", 40, 50)
	get.found, get.got = true, "b"
	put.found = false
	cas.found = true
	if err := checkLinearizable([]*op{put, cas, get}, 1); err != nil {
		t.Fatalf("valid swap refused: %v", err)
	}
	cas.succeeded, cas.got = false, "a" // claims the guard failed though the key held a
	get.got = "a"
	if err := checkLinearizable([]*op{put, cas, get}, 1); !errors.Is(err, ErrNotLinearizable) {
		t.Fatalf("failed swap on a matching value accepted: %v", err)
	}
}
