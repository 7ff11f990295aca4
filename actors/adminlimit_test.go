package actors

import (
	"fmt"
	"testing"
	"time"
)

// Each sender has its own budget of checks and snapshots; senders beyond
// the table share one, so forged reply addresses neither grow the table
// nor spend a known sender's budget.
func TestAdminLimitsPerSenderAndBounded(t *testing.T) {
	l := newAdminLimits()
	now := time.Unix(1000, 0)
	allowed := 0
	for range 10 {
		if l.allowCheck("10.0.0.1:7001", now) {
			allowed++
		}
	}
	if allowed != checkBurst {
		t.Fatalf("%d checks allowed at once to one sender, want the burst %d", allowed, checkBurst)
	}
	if !l.allowCheck("10.0.0.2:7001", now) {
		t.Fatal("another sender's check refused: budgets are per sender")
	}
	if !l.allowCheck("10.0.0.1:7001", now.Add(time.Second)) {
		t.Fatal("a check refused a second later: the budget refills")
	}
	for i := range 10 * adminSenders {
		l.allowCheck(fmt.Sprintf("forged-%d:1", i), now)
	}
	if len(l.checks) > adminSenders {
		t.Fatalf("%d senders in the table, bound %d", len(l.checks), adminSenders)
	}
	if l.allowCheck("forged-new:1", now) {
		t.Fatal("a sender beyond the table got a check: the shared budget was spent by the flood")
	}
	if !l.allowCheck("10.0.0.2:7001", now) {
		t.Fatal("a known sender's budget was spent by the flood")
	}
	if !l.allowSnapshot("10.0.0.1:7001", now) || !l.allowSnapshot("10.0.0.1:7001", now) || l.allowSnapshot("10.0.0.1:7001", now) {
		t.Fatalf("snapshots: want the burst %d, then a refusal", snapshotBurst)
	}
}
