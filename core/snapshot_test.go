package core

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
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

// A snapshot that fails (a full disk) is tried again with back-off, from
// one second doubling up to five minutes, not on every tick; once the
// disk takes it again, the next try succeeds and the back-off resets.
func TestFailedSnapshotIsRetriedWithBackoff(t *testing.T) {
	c := newTestClusterWith(t, 3, 5, paxos.BugNone, func(cfg *Config) { cfg.SnapshotEvery = 2 })
	m := c.waitMaster()
	m.sm.failWrites = true
	for i := range 6 {
		c.submit(m, fmt.Sprint("v", i))
		c.run()
	}
	start := len(m.snapshots)
	c.advance(10 * time.Second)
	tries := len(m.snapshots) - start
	// Tries at about 0, 1, 3 and 7 s: a few, where every 10 ms tick would
	// make a thousand.
	if tries < 2 || tries > 5 || m.r().SnapshotInstance() != 0 {
		t.Fatalf("%d snapshot tries in 10 s of failures (snapshot instance %d); want 2 to 5", tries, m.r().SnapshotInstance())
	}
	m.sm.failWrites = false
	c.advance(10 * time.Second)
	if m.r().SnapshotInstance() == 0 {
		t.Fatal("no snapshot once the disk took writes again")
	}
}

// §5.5, hostile peers (issue 15): a peer's snapshot is installed only if
// its handle is one this replica could come to: a well-formed
// configuration no older than the one applied here (the same version
// being the same configuration) and an epoch no older. Anything else is
// refused before the state machine's state is replaced.
func TestPaper5_5_SnapshotWithAnImpossibleHandleIsRefused(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	d := c.nodes[1].d
	for _, tc := range []struct {
		name string
		meta *messages.SnapshotMeta
		ok   bool
	}{
		{"same configuration", &messages.SnapshotMeta{Instance: 50, MembershipVersion: 1, Members: voters(1, 2, 3)}, true},
		{"a later configuration", &messages.SnapshotMeta{Instance: 60, MembershipVersion: 2, Members: voters(1, 2, 3, 4)}, true},
		{"the same version, other members", &messages.SnapshotMeta{Instance: 70, MembershipVersion: 2, Members: voters(1, 2, 5)}, false},
		{"an older version", &messages.SnapshotMeta{Instance: 70, MembershipVersion: 1, Members: voters(1, 2, 3)}, false},
		{"no voter", &messages.SnapshotMeta{Instance: 70, MembershipVersion: 3, Members: []*messages.Member{{Id: 1, Role: paxos.LearnerRole}}}, false},
		{"a member twice", &messages.SnapshotMeta{Instance: 70, MembershipVersion: 3, Members: voters(1, 2, 2)}, false},
		{"an id beyond the ballot stride", &messages.SnapshotMeta{Instance: 70, MembershipVersion: 3, Members: voters(1, 2, 70000)}, false},
		{"an older epoch", &messages.SnapshotMeta{Instance: 70, Epoch: 0, MembershipVersion: 2, Members: voters(1, 2, 3, 4)}, false},
	} {
		if tc.name == "an older epoch" {
			d.run(func() { d.r.epochs.Reset(65, 2) })
		}
		restored := false
		err := d.Install(tc.meta, func(Snapshotter) error { restored = true; return nil })
		switch {
		case tc.ok && (err != nil || !restored):
			t.Fatalf("%s: %v (restored %v), want installed", tc.name, err, restored)
		case !tc.ok && (!errors.Is(err, ErrSnapshotHandle) || restored):
			t.Fatalf("%s: %v (restored %v), want ErrSnapshotHandle and nothing restored", tc.name, err, restored)
		}
	}
}
