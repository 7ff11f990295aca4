package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLogRecordCorruptionRefusedOrCut damages a stopped node's write-ahead
// log the two ways a disk can. A record cut short at the very end is what a
// crash mid-write leaves: the node cuts it off, starts, and catches up from
// its peers. A damaged record with intact records after it is corruption of
// data that may have been acknowledged: with --on-corruption stop the node
// must refuse to start rather than forget a promise, while the others keep
// serving (the default, rebuild, is TestPaper5_1_MultiProcessGarbageAndEmptyDataDir).
func TestLogRecordCorruptionRefusedOrCut(t *testing.T) {
	t.Parallel()
	c, master := newWritableCluster(t, 3, "--on-corruption", "stop")
	l := c.written("before", 200, 8)
	// The victim is a follower; the other is stopped later (see
	// victimFollower).
	victim, other, dir := c.victimFollower(master)

	// (a) A torn final record, as a crash mid-write leaves it, two ways.
	for _, tear := range []struct {
		name string
		do   func(seg string, last walFrame) string
	}{
		{"truncated", func(seg string, last walFrame) string {
			// Cut inside the payload: the header then promises bytes that
			// are not there.
			cut := last.offset + walFrameHeaderBytes/2
			if last.payload >= 2 {
				cut = last.offset + walFrameHeaderBytes + last.payload/2
			}
			if err := os.Truncate(seg, cut); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("file cut to %d bytes, in the middle of the final record [%d, %d)", cut, last.offset, last.end())
		}},
		{"zeroed", func(seg string, last walFrame) string {
			// Segments are preallocated, so a torn write can also leave
			// the file's size alone and the record's end unwritten.
			from := last.offset + (walFrameHeaderBytes+last.payload)/2
			zeroRange(t, seg, from, last.end())
			return fmt.Sprintf("bytes [%d, %d) of the final record [%d, %d) zeroed", from, last.end(), last.offset, last.end())
		}},
	} {
		c.stop(victim)
		seg := lastSegment(t, dir)
		frames := walFrames(t, seg)
		how := tear.do(seg, frames[len(frames)-1])
		t.Logf("(a) %s: node %d, %s: %s (record %d of %d)", tear.name, victim, filepath.Base(seg), how, len(frames), len(frames))
		// Writes the victim misses, so that it must catch up. (After the
		// first round the victim may be master: see rejoin.)
		master = c.waitWritable(10 * time.Second)
		writeKeys(c.cl, l, "while-down-"+tear.name, 50, 8)
		if m := c.rejoin(victim, 10*time.Second); m != master {
			t.Logf("(a) %s: the restarted node %d took over from master %d", tear.name, victim, master)
			master = m
		}
		applied := c.waitConverged(20 * time.Second)
		t.Logf("(a) %s: node %d started with its tail cut and converged at instance %d", tear.name, victim, applied)
	}
	// With the other follower down, every write needs the victim's vote.
	c.stop(other)
	c.waitWritable(10 * time.Second)
	writeKeys(c.cl, l, "victim-votes", 50, 8)
	if acked, unknown, failed := l.counts(); acked != 350 {
		t.Fatalf("(a) %d of 350 writes acknowledged (unknown=%d failed=%d, errors %s)", acked, unknown, failed, l.topErrors())
	}
	if lost := verifyAcked(t, c.cl, l.ackedSnapshot()); lost != 0 {
		t.Fatalf("(a) %d acknowledged writes lost after a torn tail", lost)
	}
	c.rejoin(other, 10*time.Second)
	t.Logf("(a) node %d carried writes with node %d down; nothing acknowledged lost", victim, other)
	applied := c.waitConverged(20 * time.Second)

	// (b) Flip a byte in the middle of a record that has intact records
	// after it.
	c.stop(victim)
	seg := lastSegment(t, dir)
	frames := walFrames(t, seg)
	if len(frames) < 3 {
		t.Fatalf("(b) only %d records in %s", len(frames), seg)
	}
	k := len(frames) / 2
	for frames[k].payload == 0 {
		k++
	}
	if k >= len(frames)-1 {
		t.Fatalf("(b) no non-final record with a payload in %s", seg)
	}
	flipAt := frames[k].offset + walFrameHeaderBytes + frames[k].payload/2
	flipByte(t, seg, flipAt)
	t.Logf("(b) node %d: flipped the byte at %d of %s, inside record %d of %d", victim, flipAt, seg, k+1, len(frames))
	damaged := snapshotDir(t, dir)
	c.start(victim)
	code, out := c.waitExit(victim, 15*time.Second)
	if code == 0 || !strings.Contains(out, "corrupt") {
		t.Errorf("(b) node %d on a corrupt log: exit %d, want nonzero with \"corrupt\"; output tail:\n%s", victim, code, lastLines(out, 5))
	} else {
		t.Logf("(b) node %d refused to start (exit %d): %s", victim, code, lastLines(out, 1))
	}
	if d := diffSnapshots(damaged, snapshotDir(t, dir)); d != "" {
		t.Errorf("(b) the refused start changed node %d's directory: %s", victim, d)
	}
	// The other two keep serving (once they agree on a master: the
	// victim may have been it), and nothing acknowledged is lost.
	c.waitWritable(10 * time.Second)
	writeKeys(c.cl, l, "after-corruption", 50, 8)
	if acked, unknown, failed := l.counts(); acked != 400 {
		t.Fatalf("(b) %d of 400 writes acknowledged with the corrupt node down (unknown=%d failed=%d, errors %s)",
			acked, unknown, failed, l.topErrors())
	}
	if lost := verifyAcked(t, c.cl, l.ackedSnapshot()); lost != 0 {
		t.Fatalf("(b) %d acknowledged writes lost", lost)
	}
	if now := c.waitConverged(20 * time.Second); now <= applied {
		t.Errorf("(b) the survivors' log did not advance past %d", applied)
	}
	if _, err := c.status(victim); err == nil {
		t.Errorf("(b) node %d answers status although it refused to start", victim)
	}
}
