package core

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// TestPaper5_2_HandoverSkipsElectionAndLease: a master that hands
// mastership over (a restart, an operator's transfer) stops taking
// commands and serving lease reads, has what it had in flight chosen, and
// tells the successor, which campaigns at once; the acceptors release the
// old master's lease on the successor's Prepare, so a new master serves
// within a few message rounds, not after an election timeout and the rest
// of a lease (about 2.7 s here). Nothing acknowledged is lost, and never do
// two masters hold leases (c.master checks it at every step).
func TestPaper5_2_HandoverSkipsElectionAndLease(t *testing.T) {
	c := newTestCluster(t, 3, 7)
	m := c.waitMaster()
	for i := range 10 {
		c.submit(m, fmt.Sprintf("before%d", i))
		if i == 4 {
			c.run() // the first five chosen; the rest in flight or queued
		}
	}
	if err := m.r().TransferMastership(0, c.now); err != nil {
		t.Fatal(err)
	}
	if m.r().IsMaster() {
		t.Fatal("a master handing over still says it is master")
	}
	if _, ok := m.r().LeaseUntil(c.now); ok {
		t.Fatal("a master handing over still holds a lease to serve reads on")
	}
	if v := m.r().View(c.now); v.Decide(messages.Consistency_CONSISTENCY_LEASE, c.now).Lease {
		t.Fatal("a master handing over serves lease reads")
	}
	c.submit(m, "refused")
	c.run()
	refused := false
	for _, r := range m.replies {
		if string(r.Cmd.Payload) == "refused" {
			refused = r.Response.Code == messages.ErrorCode_ERROR_CODE_NOT_MASTER
		}
	}
	if !refused {
		t.Fatal("a command during the handover was not refused as not master")
	}
	start := c.now
	var next *node
	for c.now.Sub(start) < 2*time.Second {
		c.advance(10 * time.Millisecond)
		if next = c.otherMaster(m); next != nil {
			if _, ok := next.r().LeaseUntil(c.now); ok {
				break
			}
		}
	}
	took := c.now.Sub(start)
	if next == nil || took > 200*time.Millisecond {
		t.Fatalf("a new master with a lease after %v (%v), want within 200ms", took, next)
	}
	t.Logf("node %d handed mastership to node %d; it serves lease reads after %v", m.id, next.id, took)
	c.submit(next, "after")
	c.advance(100 * time.Millisecond)
	// Every command is either applied everywhere (and acknowledged, if it
	// was answered) or refused as not master and applied nowhere.
	answered := map[string]messages.ErrorCode{}
	for _, n := range c.nodes {
		for _, r := range n.replies {
			answered[string(r.Cmd.Payload)] = r.Response.Code
		}
	}
	want := m.appliedPayloads()
	for p, code := range answered {
		if code != messages.ErrorCode_ERROR_CODE_OK && slices.Contains(want, p) {
			t.Fatalf("%s refused (%v) but applied", p, code)
		}
		if code == messages.ErrorCode_ERROR_CODE_OK && !slices.Contains(want, p) {
			t.Fatalf("%s acknowledged but not applied", p)
		}
	}
	if len(want) < 5 || want[len(want)-1] != "after" {
		t.Fatalf("applied %v", want)
	}
	t.Logf("applied %v", want)
	for _, n := range c.nodes {
		if !slices.Equal(n.appliedPayloads(), want) {
			t.Fatalf("node %d applied %v, node %d %v", n.id, n.appliedPayloads(), m.id, want)
		}
	}
	c.checkAgreement()
}

// A transfer names a voter: not the master itself, not a stranger, and only
// a master transfers.
func TestTransferMastershipRefusals(t *testing.T) {
	c := newTestCluster(t, 3, 8)
	m := c.waitMaster()
	f := c.others(m)[0]
	for _, tc := range []struct {
		n  *node
		to uint32
	}{{m, m.id}, {m, 9}, {f, 0}} {
		if err := tc.n.r().TransferMastership(tc.to, c.now); !errors.Is(err, paxos.ErrNoSuccessor) {
			t.Errorf("node %d transferring to %d: %v, want ErrNoSuccessor", tc.n.id, tc.to, err)
		}
	}
	if err := m.r().TransferMastership(f.id, c.now); err != nil {
		t.Fatal(err)
	}
	c.advance(300 * time.Millisecond)
	if got := c.master(); got != f {
		t.Fatalf("master after a transfer to node %d: %v", f.id, got)
	}
}
