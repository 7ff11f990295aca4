package tests

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// The data directory a node starts on, as it may find it: written by an
// older build (it opens and is upgraded), with a log tail a crash tore (cut,
// then caught up from the peers), corrupt (refused with --on-corruption stop;
// moved aside and rebuilt by default), or empty (started over).

// A data directory written by the build of 2026-12-07 (format 1,
// testdata/datadir-v1: a snapshot and a log after it, no LOGRANGE) opens
// in this build with every key it held, and is upgraded in place to
// format 2 (LOGRANGE written, the format recorded): no later build may
// stop reading an older format without saying so.
func TestDataDirectoryOfFormat1StillOpens(t *testing.T) {
	t.Parallel()
	dir := openFixture(t, "datadir-v1", "fixture-v1")
	if _, err := os.Stat(filepath.Join(dir, "LOGRANGE")); err != nil {
		t.Errorf("the format-1 directory was not given its LOGRANGE: %v", err)
	}
	if f := identityFormat(t, dir); f != 2 {
		t.Errorf("the format-1 directory records format %d once opened, want 2", f)
	}
}

// A data directory of format 2 (testdata/datadir-v2, written by the build
// of 2026-12-07 that introduced it: LOGRANGE always there) opens in this
// build with every key it held.
func TestDataDirectoryOfFormat2StillOpens(t *testing.T) {
	t.Parallel()
	dir := openFixture(t, "datadir-v2", "fixture-v2")
	if f := identityFormat(t, dir); f != 2 {
		t.Errorf("the format-2 directory records format %d once opened, want 2", f)
	}
}

// openFixture starts a one-node group on a copy of testdata/name/n1 and
// reads back the keys every fixture holds (see its README.md): key1 to
// key20 but key3, and k-last. It returns the copy, the node still running.
func openFixture(t *testing.T, name, clusterID string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "n1")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", name, "n1"))); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 2)
	peer := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	client := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	bin := livepaxosBin(t)
	node := startProcess(t, bin, filepath.Join(t.TempDir(), "node.log"), "node", "--id", "1", "--peers", "1="+peer,
		"--client-listen", client, "--cluster-id", clusterID, "--data", dir, "--log-level", "info")
	want := map[string]string{"k-last": "last", "key3": ""}
	for i := 1; i <= 20; i++ {
		if i != 3 {
			want[fmt.Sprintf("key%d", i)] = fmt.Sprintf("value%d", i)
		}
	}
	waitFor(t, 20*time.Second, "the node on "+name+" to serve", func() error {
		if r := runCLI(t, bin, nil, "get", "--endpoints", client, "k-last"); r.code != 0 {
			return fmt.Errorf("exit %d: %s (log: %s)", r.code, strings.TrimSpace(r.stderr), node.tail(5))
		}
		return nil
	})
	for k, v := range want {
		r := runCLI(t, bin, nil, "get", "--endpoints", client, k)
		if got := strings.TrimSpace(r.stdout); (v == "" && r.code == 0) || (v != "" && got != v) {
			t.Errorf("get %s on %s: %q (exit %d, %s), want %q", k, name, got, r.code, strings.TrimSpace(r.stderr), v)
		}
	}
	return dir
}

// identityFormat is the data format dir's IDENTITY records (a MetaRecord
// followed by its CRC-32C; see actors/identity.go).
func identityFormat(t *testing.T, dir string) uint32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "IDENTITY"))
	if err != nil || len(b) < 4 {
		t.Fatalf("IDENTITY: %v (%d bytes)", err, len(b))
	}
	meta := &messages.MetaRecord{}
	if err := proto.Unmarshal(b[:len(b)-4], meta); err != nil {
		t.Fatal(err)
	}
	return meta.Format
}

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

// The on-disk format of storage's segments (see storage/doc.go), repeated
// here because the tests damage files from outside, as a disk would:
// a 20-byte header (magic, sequence number, CRC), then records framed as
// length uint32 LE, CRC-32C (of length and payload) uint32 LE, payload,
// then zeros up to the preallocated size.
const (
	walSegmentHeaderBytes = 8 + 8 + 4
	walFrameHeaderBytes   = 8
)

// walFrame is one record of a segment: where its frame starts and how long
// its payload is.
type walFrame struct {
	offset  int64
	payload int64
}

func (f walFrame) end() int64 { return f.offset + walFrameHeaderBytes + f.payload }

// lastSegment returns the path of the newest *.wal file in dir. Segment
// names are zero-padded hex, so lexical order is log order.
func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no WAL segment in %s (err %v)", dir, err)
	}
	sort.Strings(segs)
	return segs[len(segs)-1]
}

// walFrames parses the intact frames of a segment. Segments are
// preallocated (zero-filled up to their full size), so the records end at
// the first frame whose checksum fails, and everything after it must be
// zeros: the tests only parse logs that a clean shutdown wrote.
func walFrames(t *testing.T, path string) []walFrame {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var frames []walFrame
	off := int64(walSegmentHeaderBytes)
	for off+walFrameHeaderBytes <= int64(len(b)) {
		n := int64(binary.LittleEndian.Uint32(b[off:]))
		f := walFrame{offset: off, payload: n}
		if f.end() > int64(len(b)) {
			break
		}
		sum := crc32.Update(crc32.Checksum(b[off:off+4], castagnoli), castagnoli, b[off+walFrameHeaderBytes:f.end()])
		if sum != binary.LittleEndian.Uint32(b[off+4:]) {
			break
		}
		frames = append(frames, f)
		off = f.end()
	}
	if len(frames) == 0 {
		t.Fatalf("%s holds no records", path)
	}
	for i, c := range b[off:] {
		if c != 0 {
			t.Fatalf("%s: non-zero byte at %d, after the last intact record (which ends at %d)", path, off+int64(i), off)
		}
	}
	return frames
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zeroRange overwrites [from, to) of a file with zeros, keeping its size:
// what a torn write into preallocated space leaves.
func zeroRange(t *testing.T, path string, from, to int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, to-from), from); err != nil {
		t.Fatal(err)
	}
}

// flipByte inverts the bits of the byte at off.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}
