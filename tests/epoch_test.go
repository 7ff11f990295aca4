package tests

import (
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// TestPaper5_3_EpochGuardAcrossFailover: with real processes, the epoch a
// client reads stays the same while the master does, a MultiOp guarded by
// it applies; once the master is killed and another elected, the epoch is
// new and the old guard fails (the MultiOp's else branch runs), so a
// client acting "only if nothing changed" does not act.
func TestPaper5_3_EpochGuardAcrossFailover(t *testing.T) {
	t.Parallel()
	c, _ := newWritableCluster(t, 3)
	ctx := testContext(t, 30*time.Second)
	e1, err := c.cl.Epoch(ctx)
	if err != nil || e1 == 0 {
		t.Fatalf("epoch: %d %v", e1, err)
	}
	guarded := func(epoch uint64, value string) bool {
		t.Helper()
		res, err := c.cl.Txn(ctx, &messages.MultiOp{Guard: []*messages.Test{db.EpochIs(epoch)},
			TOp: []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: []byte("lock-holder"), Value: []byte(value)}}})
		if err != nil {
			t.Fatalf("guarded put: %v", err)
		}
		return res.Succeeded
	}
	if !guarded(e1, "a") {
		t.Fatalf("a put guarded by the current epoch %d did not apply", e1)
	}
	if again, err := c.cl.Epoch(ctx); err != nil || again != e1 {
		t.Fatalf("epoch moved from %d to %d (%v) with the same master", e1, again, err)
	}
	c.kill(c.waitMaster(5 * time.Second))
	c.waitWritable(20 * time.Second)
	e2, err := c.cl.Epoch(ctx)
	if err != nil || e2 == e1 {
		t.Fatalf("epoch after fail-over: %d (before %d) %v", e2, e1, err)
	}
	if guarded(e1, "b") {
		t.Fatalf("a put guarded by the old epoch %d applied in epoch %d", e1, e2)
	}
	if !guarded(e2, "c") {
		t.Fatalf("a put guarded by the new epoch %d did not apply", e2)
	}
	v, _, err := c.cl.Get(ctx, []byte("lock-holder"))
	if err != nil || string(v) != "c" {
		t.Fatalf("lock-holder = %q, %v; want c", v, err)
	}
	t.Logf("epoch %d, then %d after the master was killed", e1, e2)
}
