package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// checkpointed writes a log that was checkpointed once and then grew over
// several segments. It returns a copy of the directory as it was just
// before the checkpoint, the directory after, the records a replay of the
// latter gives, and the segment the checkpoint began.
func checkpointed(t *testing.T) (before, after string, want [][]byte, cut uint64) {
	t.Helper()
	after = t.TempDir()
	w, _ := open(t, after, smallSegments)
	if err := w.AppendSync(recs(0, 40)); err != nil {
		t.Fatal(err)
	}
	before = copyDir(t, after)
	done := make(chan error, 1)
	w.Checkpoint(recs(1000, 1003), func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, r := range recs(2000, 2060) {
		if err := w.AppendSync([][]byte{r}); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, w)
	segs := segmentFiles(t, after)
	if len(segs) < 4 {
		t.Fatalf("%d segments after the checkpoint, want at least 4", len(segs))
	}
	cut, _ = parseSegmentName(filepath.Base(segs[0]))
	if cut < 2 {
		t.Fatalf("the checkpoint began segment %d: nothing was deleted", cut)
	}
	return before, after, append(recs(1000, 1003), recs(2000, 2060)...), cut
}

// A segment the log must hold that is gone (the newest, the oldest since
// the checkpoint, one in the middle, or every one) is refused, naming it,
// rather than opened as a shorter log.
func TestMissingSegmentIsRefused(t *testing.T) {
	_, pristine, _, cut := checkpointed(t)
	segs := segmentFiles(t, pristine)
	name := func(i int) string { return filepath.Base(segs[i]) }
	remove := func(dir string, names ...string) {
		for _, n := range names {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	last := len(segs) - 1
	var all []string
	for i := range segs {
		all = append(all, name(i))
	}
	cases := []struct {
		name    string
		damage  func(dir string)
		missing []string
	}{
		{"newest", func(dir string) { remove(dir, name(last)) }, []string{name(last)}},
		{"two newest", func(dir string) { remove(dir, name(last), name(last-1)) }, []string{name(last - 1), name(last)}},
		{"oldest", func(dir string) { remove(dir, name(0)) }, []string{name(0)}},
		{"middle", func(dir string) { remove(dir, name(1)) }, []string{name(1)}},
		{"all", func(dir string) { remove(dir, all...) }, []string{name(0), name(last)}},
		{"all but one superseded by the checkpoint", func(dir string) {
			// A segment older than the checkpoint, whose deletion a
			// crash cut short, is all that is left.
			writeFile(t, segmentPath(dir, cut-1), segmentHeader(cut-1))
			remove(dir, all...)
		}, []string{name(0), name(last)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, pristine)
			tc.damage(dir)
			refusedUnchanged(t, dir, ErrSegmentMissing, tc.missing...)
		})
	}
}

// What a crash leaves around the range file opens with every record that
// was acknowledged: a segment created but not yet named (it holds
// nothing), and segments a checkpoint superseded whose deletion was cut
// short (they replay before it, as they always did).
func TestSegmentsOutsideTheRangeAreTaken(t *testing.T) {
	before, pristine, want, cut := checkpointed(t)
	segs := segmentFiles(t, pristine)
	next, _ := parseSegmentName(filepath.Base(segs[len(segs)-1]))
	next++

	t.Run("created, not named", func(t *testing.T) {
		dir := copyDir(t, pristine)
		writeFile(t, segmentPath(dir, next), append(segmentHeader(next), make([]byte, 100)...))
		w, got := open(t, dir, smallSegments)
		equalRecords(t, got, want)
		if err := w.AppendSync([][]byte{[]byte("after")}); err != nil {
			t.Fatal(err)
		}
		mustClose(t, w)
		if rng, err := readRange(dir); err != nil || rng.last != next || rng.first != cut {
			t.Fatalf("range %+v (%v), want %d to %d", rng, err, cut, next)
		}
		os.Remove(segmentPath(dir, next))
		refusedUnchanged(t, dir, ErrSegmentMissing, segmentName(next))
	})
	t.Run("superseded, not deleted", func(t *testing.T) {
		dir := copyDir(t, pristine)
		for name, b := range snapshot(t, before) {
			if strings.HasSuffix(name, segmentExt) {
				writeFile(t, filepath.Join(dir, name), b)
			}
		}
		equalRecords(t, replayAll(t, dir, smallSegments), append(recs(0, 40), want...))
		os.Remove(segmentPath(dir, 1)) // deletions go oldest first
		equalRecords(t, replayAll(t, dir, smallSegments), append(recs(countRecords(t, before, 1), 40), want...))
	})
}

// countRecords is how many records segment seq of dir holds.
func countRecords(t *testing.T, dir string, seq uint64) int {
	t.Helper()
	f, err := os.Open(segmentPath(dir, seq))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	n := 0
	if _, err := replaySegment(f, seq, st.Size(), func([]byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// A log made before the range file opens as it is, and from then on
// its newest segment is missed if it goes.
func TestLogWithoutRangeFileOpens(t *testing.T) {
	_, dir, want, _ := checkpointed(t)
	if err := os.Remove(filepath.Join(dir, rangeFileName)); err != nil {
		t.Fatal(err)
	}
	equalRecords(t, replayAll(t, dir, smallSegments), want)
	segs := segmentFiles(t, dir)
	newest := segs[len(segs)-1]
	if err := os.Remove(newest); err != nil {
		t.Fatal(err)
	}
	refusedUnchanged(t, dir, ErrSegmentMissing, filepath.Base(newest))
}

// A range file that a build before it left behind (it rolled and
// checkpointed without updating the file) is replaced, not taken for
// lost segments: a segment above the recorded range holds records, which
// this build never writes.
func TestStaleRangeFileIsReplaced(t *testing.T) {
	before, dir, want, cut := checkpointed(t)
	old := readFile(t, filepath.Join(before, rangeFileName))
	writeFile(t, filepath.Join(dir, rangeFileName), old)
	equalRecords(t, replayAll(t, dir, smallSegments), want)
	segs := segmentFiles(t, dir)
	last, _ := parseSegmentName(filepath.Base(segs[len(segs)-1]))
	if rng, err := readRange(dir); err != nil || rng != (logRange{cut, last}) {
		t.Fatalf("range %+v (%v), want %d to %d", rng, err, cut, last)
	}
}

// A range file that does not decode is refused: it is only ever replaced
// by a rename, so no crash leaves it half written.
func TestDamagedRangeFileIsRefused(t *testing.T) {
	_, pristine, _, _ := checkpointed(t)
	good := readFile(t, filepath.Join(pristine, rangeFileName))
	bad := map[string][]byte{
		"empty":     nil,
		"short":     good[:len(good)-1],
		"long":      append(slices.Clone(good), 0),
		"bad magic": append([]byte("LPWALR99"), good[8:]...),
		"inverted":  encodeRange(logRange{5, 4}),
		"zero":      encodeRange(logRange{0, 4}),
	}
	for off := range good {
		b := slices.Clone(good)
		b[off] ^= 0x10
		bad[fmt.Sprintf("flip at %d", off)] = b
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			dir := copyDir(t, pristine)
			writeFile(t, filepath.Join(dir, rangeFileName), b)
			refusedUnchanged(t, dir, ErrCorrupt, rangeFileName)
		})
	}
}

// A failure while naming a new segment in the range file (the moment a
// crash could also come) loses nothing acknowledged: the log fails, and
// reopened it replays every record acknowledged and takes the segment.
func TestRangeFileFailureLosesNothing(t *testing.T) {
	// The checkpoint's first range write names the segment it begins; the
	// second moves the range past the segments it supersedes.
	for during, failAt := range map[string]int32{"roll": 1, "checkpoint": 2} {
		t.Run(during, func(t *testing.T) {
			dir := t.TempDir()
			fail := errors.New("injected")
			var armed atomic.Bool
			var writes atomic.Int32
			opts := smallSegments
			opts.writeFn = func(f *os.File, p []byte) (int, error) {
				if armed.Load() && strings.HasSuffix(f.Name(), rangeFileName+".tmp") && writes.Add(1) == failAt {
					return 0, fail
				}
				return f.Write(p)
			}
			opts.OnFatal = func(error) {}
			w, _ := open(t, dir, opts)
			var acked [][]byte
			if err := w.AppendSync(recs(0, 3)); err != nil {
				t.Fatal(err)
			}
			acked = append(acked, recs(0, 3)...)
			armed.Store(true)
			var err error
			if during == "roll" {
				for i := 3; err == nil; i++ {
					if err = w.AppendSync([][]byte{rec(i)}); err == nil {
						acked = append(acked, rec(i))
					}
				}
			} else {
				done := make(chan error, 1)
				w.Checkpoint(recs(100, 102), func(err error) { done <- err })
				err = <-done
			}
			if !errors.Is(err, fail) {
				t.Fatalf("the failing round: %v, want the injected error", err)
			}
			w.Close()
			got := replayAll(t, dir, smallSegments)
			if len(got) < len(acked) {
				t.Fatalf("replayed %d records, %d were acknowledged", len(got), len(acked))
			}
			equalRecords(t, got[:len(acked)], acked)
		})
	}
}

// A log whose format requires the range file (Options.RangeRequired) and
// that lost it is refused with ErrRangeMissing, naming the file and the
// segments it holds; the same directory under the old rule opens as it
// is. Only the crash window before the first range write (segment 1
// alone, no record in it) is taken without the file.
func TestLostRangeFileIsRefusedWhenRequired(t *testing.T) {
	required := smallSegments
	required.RangeRequired = true
	_, pristine, want, _ := checkpointed(t)
	equalRecords(t, replayAll(t, copyDir(t, pristine), required), want)

	dir := copyDir(t, pristine)
	if err := os.Remove(filepath.Join(dir, rangeFileName)); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, dir)
	refusedUnchangedWith(t, dir, required, ErrRangeMissing, rangeFileName, filepath.Base(segs[0]), filepath.Base(segs[len(segs)-1]))
	equalRecords(t, replayAll(t, dir, smallSegments), want)

	t.Run("one segment with records", func(t *testing.T) {
		dir := t.TempDir()
		w, _ := open(t, dir, required)
		if err := w.AppendSync(recs(0, 3)); err != nil {
			t.Fatal(err)
		}
		mustClose(t, w)
		if err := os.Remove(filepath.Join(dir, rangeFileName)); err != nil {
			t.Fatal(err)
		}
		refusedUnchangedWith(t, dir, required, ErrRangeMissing, rangeFileName, segmentName(1))
	})
	t.Run("first segment created, range not yet written", func(t *testing.T) {
		for name, seg := range map[string][]byte{
			"preallocated": append(segmentHeader(1), make([]byte, 4096)...),
			"header only":  segmentHeader(1),
			"torn header":  segmentHeader(1)[:3],
		} {
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				writeFile(t, segmentPath(dir, 1), seg)
				w, got := open(t, dir, required)
				equalRecords(t, got, nil)
				if err := w.AppendSync(recs(0, 2)); err != nil {
					t.Fatal(err)
				}
				mustClose(t, w)
				if rng, err := readRange(dir); err != nil || rng != (logRange{1, 1}) {
					t.Fatalf("range %+v (%v), want 1 to 1", rng, err)
				}
				equalRecords(t, replayAll(t, dir, required), recs(0, 2))
			})
		}
	})
}
