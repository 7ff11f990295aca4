package tests

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPaper5_1_MultiProcessGarbageAndEmptyDataDir replaces a follower's
// data directory, while it is down, first with garbage (every file
// overwritten with random bytes) and then with nothing. Each time the node
// starts again as a new incarnation: with garbage it finds its directory
// corrupt and moves it aside; with nothing it simply starts empty. It votes
// for nothing until the group records its new incarnation, catches up, and
// then carries writes with the other follower down (so its vote counts
// again). No acknowledged write is lost.
func TestPaper5_1_MultiProcessGarbageAndEmptyDataDir(t *testing.T) {
	t.Parallel()
	c, master := newWritableCluster(t, 3)
	l := c.written("before", 200, 8)
	victim, other, dir := c.victimFollower(master)
	for round, damage := range []struct {
		name string
		do   func()
	}{
		{"garbage", func() {
			err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
				if err != nil || info.IsDir() || info.Name() == "LOCK" {
					return err
				}
				junk := make([]byte, max(info.Size(), 64))
				rand.Read(junk)
				return os.WriteFile(path, junk, 0o644)
			})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"nothing", func() {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		c.kill(victim)
		damage.do()
		writeKeys(c.cl, l, "down-"+damage.name, 100, 8)
		c.rejoin(victim, 20*time.Second)
		if damage.name == "garbage" {
			out := c.runOutput(victim)
			if !strings.Contains(out, "moved aside") {
				t.Errorf("%s: the node did not say it moved its corrupt directory aside:\n%s", damage.name, lastLines(out, 5))
			}
			if aside, _ := filepath.Glob(dir + ".corrupt-*"); len(aside) != round+1 {
				t.Errorf("%s: corrupt directories kept aside: %v", damage.name, aside)
			}
		}
		writeKeys(c.cl, l, "after-"+damage.name, 100, 8)
		c.waitConverged(20 * time.Second)
		// Its vote counts again: with the other follower down, every
		// write needs it.
		c.stop(other)
		c.waitWritable(20 * time.Second)
		writeKeys(c.cl, l, "victim-votes-"+damage.name, 50, 8)
		c.rejoin(other, 20*time.Second)
		c.waitConverged(20 * time.Second)
		t.Logf("%s: node %d rebuilt, caught up and voted with node %d down", damage.name, victim, other)
	}
	if acked, unknown, failed := l.counts(); failed > 0 || acked+unknown != 700 {
		t.Fatalf("%d acknowledged, %d unknown, %d failed of 700 writes (errors %s)", acked, unknown, failed, l.topErrors())
	}
	if lost := verifyAcked(t, c.cl, l.ackedSnapshot()); lost != 0 {
		t.Fatalf("%d acknowledged writes lost", lost)
	}
}
