package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPaper5_5_MultiProcessSnapshotsAndWipedRejoin runs three node
// processes that snapshot on their own every 50 instances: their logs are
// let go of as they go; a node whose data directory is wiped while it is
// down comes back by installing a peer's snapshot, fetched in chunks, and
// learning the log after it; a restart recovers from snapshot plus log; and
// no acknowledged write is lost.
func TestPaper5_5_MultiProcessSnapshotsAndWipedRejoin(t *testing.T) {
	t.Parallel()
	c, _ := newWritableCluster(t, 3, "--snapshot-every", "50")
	l := c.written("a", 600, 16)

	c.kill(3)
	if err := os.RemoveAll(c.node(3).dataDir); err != nil {
		t.Fatal(err)
	}
	writeKeys(c.cl, l, "b", 600, 16)
	// The survivors have snapshotted past everything node 3 had, and let
	// go of their logs below.
	for _, id := range []int{1, 2} {
		waitFor(t, 10*time.Second, fmt.Sprintf("node %d to snapshot and let go of its log", id), func() error {
			st, err := c.status(id)
			if err != nil {
				return err
			}
			if st.SnapshotInstance == 0 || st.LogTruncated < st.SnapshotInstance {
				return fmt.Errorf("snapshot at %d, log let go of up to %d", st.SnapshotInstance, st.LogTruncated)
			}
			return nil
		})
	}
	// The CLI takes one at once on one node.
	r := runCLI(t, c.bin, nil, "snapshot", "--endpoints", strings.Join(c.endpoints()[:2], ","), "--node", "2")
	if r.code != 0 || !strings.Contains(r.stdout, "node 2") {
		t.Fatalf("livepaxos snapshot --node 2: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	c.rejoin(3, 20*time.Second)
	c.waitConverged(20 * time.Second)
	st, err := c.status(3)
	if err != nil {
		t.Fatal(err)
	}
	if st.Installs == 0 {
		t.Errorf("the wiped node caught up without installing a snapshot: %v", st)
	}
	if parts, _ := filepath.Glob(filepath.Join(c.node(3).dataDir, "snapshots", "install-*")); len(parts) > 0 {
		t.Errorf("transfer leftovers: %v", parts)
	}

	// A restart of a node with a snapshot and a log after it.
	c.stop(1)
	c.rejoin(1, 20*time.Second)
	writeKeys(c.cl, l, "c", 100, 8)
	c.waitConverged(20 * time.Second)
	if lost := verifyAcked(t, c.cl, l.ackedSnapshot()); lost > 0 {
		t.Fatalf("%d acknowledged writes lost", lost)
	}
}
