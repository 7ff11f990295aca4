package core

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// §5.5: a snapshot is as of the instance the state machine's BeginSnapshot
// names (a state machine that snapshots what it already holds on disk may
// be behind the log), described with the epoch and membership in force
// there; the log is let go of up to it and no further. An instance past
// what was applied is refused and lets go of nothing.
func TestPaper5_5_SnapshotIsAsOfTheStateMachinesInstance(t *testing.T) {
	c := newTestCluster(t, 3, 4)
	m := c.waitMaster()
	for _, p := range []string{"a", "bb", "ccc", "dddd", "eeeee"} {
		c.submit(m, p)
		c.run()
	}
	c.advance(100 * time.Millisecond)
	applied := m.r().LastApplied()
	if applied < 5 {
		t.Fatalf("applied %d", applied)
	}
	ask := func() *messages.SnapshotResponse {
		m.answers = nil
		m.d.RequestSnapshot(nil)
		c.run()
		if len(m.answers) != 1 {
			t.Fatalf("%d answers to a snapshot request", len(m.answers))
		}
		return m.answers[0].(*messages.SnapshotResponse)
	}
	m.sm.snapAt = applied - 2
	if resp := ask(); resp.Error != "" || resp.Instance != applied-2 {
		t.Fatalf("snapshot: %v; want one as of %d, the state machine's instance", resp, applied-2)
	}
	meta := m.snapshots[len(m.snapshots)-1]
	epoch, master := m.r().LogEpoch()
	if meta.Instance != applied-2 || meta.Epoch != epoch || meta.EpochMaster != master ||
		!proto.Equal(&messages.Membership{Version: meta.MembershipVersion, Members: meta.Members}, m.r().Members()) {
		t.Fatalf("handle %v; want instance %d, epoch %d of node %d, membership %v", meta, applied-2, epoch, master, m.r().Members())
	}
	if got := m.r().SnapshotInstance(); got != applied-2 {
		t.Fatalf("snapshot instance %d, want %d", got, applied-2)
	}
	if got := m.r().Truncated(); got != applied-2 {
		t.Fatalf("log let go of up to %d, want %d: not past the snapshot", got, applied-2)
	}
	m.sm.snapAt = applied + 100
	if resp := ask(); resp.Error == "" {
		t.Fatalf("a snapshot past what was applied was taken: %v", resp)
	}
	if got := m.r().Truncated(); got != applied-2 {
		t.Fatalf("a refused snapshot let go of the log up to %d", got)
	}
}
