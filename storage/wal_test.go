package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// smallSegments makes tests roll often.
var smallSegments = Options{SegmentBytes: 512}

func TestRoundTripAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	w, got := open(t, dir, smallSegments)
	if len(got) != 0 {
		t.Fatalf("fresh log replayed %d records", len(got))
	}
	const n = 500
	all := recs(0, n)
	// Mix batch sizes and both append styles.
	var wg sync.WaitGroup
	for i := 0; i < n; {
		k := min(1+i%7, n-i)
		if i%2 == 0 {
			if err := w.AppendSync(all[i : i+k]); err != nil {
				t.Fatal(err)
			}
		} else {
			wg.Add(1)
			w.Append(all[i:i+k], func(err error) {
				if err != nil {
					t.Error(err)
				}
				wg.Done()
			})
		}
		i += k
	}
	wg.Wait()
	st := w.Stats()
	if st.Records != n {
		t.Errorf("Stats.Records = %d, want %d", st.Records, n)
	}
	mustClose(t, w)

	segs := segmentFiles(t, dir)
	if len(segs) < 10 {
		t.Fatalf("%d segments, want many with SegmentBytes=%d", len(segs), smallSegments.SegmentBytes)
	}
	if uint64(len(segs)) != st.Segments {
		t.Errorf("Stats.Segments = %d, files = %d", st.Segments, len(segs))
	}
	for _, s := range segs {
		if size := fileSize(t, s); size > smallSegments.SegmentBytes {
			t.Errorf("%s is %d bytes, past SegmentBytes", filepath.Base(s), size)
		}
	}
	equalRecords(t, replayAll(t, dir, smallSegments), all)

	// Appending after a reopen continues the same log.
	w, _ = open(t, dir, smallSegments)
	more := recs(n, n+50)
	if err := w.AppendSync(more); err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	equalRecords(t, replayAll(t, dir, smallSegments), append(all, more...))
}

func TestEmptyRecordsAndCalls(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, Options{})
	if err := w.AppendSync(nil); err != nil {
		t.Fatalf("empty Append: %v", err)
	}
	want := [][]byte{{}, []byte("a"), {}}
	if err := w.AppendSync(want); err != nil {
		t.Fatal(err)
	}
	w.Append(nil, nil) // nil done is allowed
	mustClose(t, w)
	equalRecords(t, replayAll(t, dir, Options{}), want)
}

func TestRecordTooLarge(t *testing.T) {
	opts := Options{MaxRecordBytes: 64}
	dir := t.TempDir()
	w, _ := open(t, dir, opts)
	if err := w.AppendSync([][]byte{[]byte("first")}); err != nil {
		t.Fatal(err)
	}
	seg := segmentFiles(t, dir)[0]
	size := fileSize(t, seg)
	before := w.Stats()

	big := bytes.Repeat([]byte{'b'}, 65)
	err := w.AppendSync([][]byte{[]byte("ok"), big})
	if !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("AppendSync(big) = %v, want ErrRecordTooLarge", err)
	}
	if after := w.Stats(); after.Records != before.Records || after.Bytes != before.Bytes {
		t.Errorf("refused append wrote: stats %+v -> %+v", before, after)
	}
	if got := fileSize(t, seg); got != size {
		t.Errorf("segment grew from %d to %d bytes", size, got)
	}
	// A refusal does not fail the log.
	exact := bytes.Repeat([]byte{'e'}, 64)
	if err := w.AppendSync([][]byte{exact}); err != nil {
		t.Fatalf("append at the limit: %v", err)
	}
	mustClose(t, w)
	equalRecords(t, replayAll(t, dir, opts), [][]byte{[]byte("first"), exact})
}

// lastRecord finds, in the fixture log in pristine whose records are all,
// the last segment's name and bytes, and the offset of its last record.
func lastRecord(t *testing.T, pristine string, all [][]byte) (lastName string, full []byte, start int) {
	t.Helper()
	segs := segmentFiles(t, pristine)
	full = readFile(t, segs[len(segs)-1])
	return filepath.Base(segs[len(segs)-1]), full, len(full) - frameSize(len(all[len(all)-1]))
}

func TestTornTailIsCut(t *testing.T) {
	pristine, all := fixture(t, 60, smallSegments)
	if len(segmentFiles(t, pristine)) < 2 {
		t.Fatal("fixture should span segments")
	}
	lastName, full, start := lastRecord(t, pristine, all)
	want := all[:len(all)-1]
	extra := []byte("appended after recovery")

	for cut := start; cut < len(full); cut++ {
		dir := copyDir(t, pristine)
		path := filepath.Join(dir, lastName)
		writeFile(t, path, full[:cut])

		w, got := open(t, dir, smallSegments)
		equalRecords(t, got, want)
		if size := fileSize(t, path); size != int64(start) {
			t.Fatalf("cut at %d: file is %d bytes after recovery, want %d", cut, size, start)
		}
		if err := w.AppendSync([][]byte{extra}); err != nil {
			t.Fatalf("cut at %d: append after recovery: %v", cut, err)
		}
		mustClose(t, w)
		equalRecords(t, replayAll(t, dir, smallSegments), append(slices.Clone(want), extra))
	}
}

func TestTornSegmentHeaderIsRemoved(t *testing.T) {
	pristine, all := fixture(t, 30, smallSegments)
	segs := segmentFiles(t, pristine)
	next := uint64(len(segs) + 1)
	header := segmentHeader(next)
	// Every prefix of a header, and a full-length header that never
	// reached the disk (zeros, with or without the preallocated space
	// after it), is what a crash during createSegment leaves.
	cases := map[string][]byte{"zeros": make([]byte, segmentHeaderSize), "preallocated zeros": make([]byte, segmentHeaderSize+4096)}
	for k := 0; k < segmentHeaderSize; k++ {
		cases[fmt.Sprintf("prefix%02d", k)] = header[:k]
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			dir := copyDir(t, pristine)
			writeFile(t, segmentPath(dir, next), content)
			w, got := open(t, dir, smallSegments)
			equalRecords(t, got, all)
			if err := w.AppendSync([][]byte{[]byte("after")}); err != nil {
				t.Fatal(err)
			}
			mustClose(t, w)
			equalRecords(t, replayAll(t, dir, smallSegments), append(slices.Clone(all), []byte("after")))
		})
	}
}

func TestCorruptionIsRefused(t *testing.T) {
	pristine, _ := fixture(t, 60, smallSegments)
	segs := segmentFiles(t, pristine)
	if len(segs) < 3 {
		t.Fatal("fixture should span at least 3 segments")
	}
	first := filepath.Base(segs[0])
	lastName := filepath.Base(segs[len(segs)-1])
	lastOffs := frameOffsets(t, segs[len(segs)-1])
	if len(lastOffs) < 2 {
		t.Fatal("last segment should hold several records")
	}
	firstOffs := frameOffsets(t, segs[0])

	flip := func(name string, off int) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			path := filepath.Join(dir, name)
			b := readFile(t, path)
			b[off] ^= 0x04
			writeFile(t, path, b)
		}
	}
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"flip in record followed by valid records", flip(lastName, lastOffs[0]+frameHeaderSize+2)},
		{"flip in length followed by valid records", flip(lastName, lastOffs[0])},
		{"flip in checksum followed by valid records", flip(lastName, lastOffs[len(lastOffs)-2]+5)},
		{"flip in last record of earlier segment", flip(first, firstOffs[len(firstOffs)-1]+frameHeaderSize)},
		{"flip in header of earlier segment", flip(first, 3)},
		{"flip in header of last segment", flip(lastName, 10)},
		{"earlier segment truncated", func(t *testing.T, dir string) {
			path := filepath.Join(dir, first)
			b := readFile(t, path)
			writeFile(t, path, b[:len(b)-3])
		}},
		{"earlier segment header truncated", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, first), segmentHeader(1)[:7])
		}},
		{"middle segment missing", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, filepath.Base(segs[1]))); err != nil {
				t.Fatal(err)
			}
		}},
		{"segments swapped", func(t *testing.T, dir string) {
			a, b := filepath.Join(dir, first), filepath.Join(dir, filepath.Base(segs[1]))
			ab, bb := readFile(t, a), readFile(t, b)
			writeFile(t, a, bb)
			writeFile(t, b, ab)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, pristine)
			tc.damage(t, dir)
			refusedUnchanged(t, dir, ErrCorrupt)
		})
	}
}

func TestReplayErrorFailsOpen(t *testing.T) {
	dir, _ := fixture(t, 10, Options{})
	stop := errors.New("stop here")
	seen := 0
	w, err := Open(dir, Options{}, func([]byte) error {
		seen++
		if seen == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || w != nil {
		t.Fatalf("Open = %v, %v; want the replay error", w, err)
	}
	if seen != 3 {
		t.Errorf("replay called %d times after failing, want it to stop at 3", seen)
	}
	equalRecords(t, replayAll(t, dir, Options{}), recs(0, 10)) // lock released, nothing lost
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, Options{})
	if w2, err := Open(dir, Options{}, nil); !errors.Is(err, ErrLocked) {
		if w2 != nil {
			w2.Close()
		}
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	mustClose(t, w)
	w, _ = open(t, dir, Options{})
	mustClose(t, w)
}

func TestGroupCommit(t *testing.T) {
	const goroutines, perG = 64, 200
	g := newGate()
	dir := t.TempDir()
	w, _ := open(t, dir, Options{syncFn: g.sync})
	before := w.Stats().Fsyncs

	// Hold the writer inside the fsync of a first record, so that every
	// other append provably queues behind one fsync.
	total := 1 + goroutines*perG
	r := newRecorder(total)
	g.armed.Store(true)
	w.Append([][]byte{[]byte("first")}, r.cb([]byte("first")))
	<-g.entered

	var wg sync.WaitGroup
	for gi := range goroutines {
		wg.Go(func() {
			for i := range perG {
				p := fmt.Appendf(nil, "g%02d-%03d", gi, i)
				w.Append([][]byte{p}, r.cb(p))
			}
		})
	}
	wg.Wait()
	close(g.release)
	r.wait(t)

	for i, err := range r.errs {
		if err != nil {
			t.Fatalf("done %d: %v", i, err)
		}
	}
	// Each done exactly once, and per goroutine in Append order.
	next := make(map[string]int)
	for _, p := range r.order[1:] {
		var gi, i int
		if _, err := fmt.Sscanf(string(p), "g%02d-%03d", &gi, &i); err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprint(gi)
		if next[key] != i {
			t.Fatalf("goroutine %d: done for append %d, want %d", gi, i, next[key])
		}
		next[key]++
	}
	if len(next) != goroutines {
		t.Fatalf("dones from %d goroutines, want %d", len(next), goroutines)
	}
	fsyncs := w.Stats().Fsyncs - before
	if fsyncs > 2 {
		t.Errorf("%d appends took %d fsyncs, want 2 (one held, one for the rest)", total, fsyncs)
	}
	mustClose(t, w)
	// The log holds the records in exactly the order their dones ran.
	equalRecords(t, replayAll(t, dir, Options{}), r.order)
}

func TestConcurrentAppendSync(t *testing.T) {
	const goroutines, perG = 64, 200
	dir := t.TempDir()
	w, _ := open(t, dir, Options{SegmentBytes: 64 << 10})
	before := w.Stats().Fsyncs
	var wg sync.WaitGroup
	for gi := range goroutines {
		wg.Go(func() {
			for i := range perG {
				if err := w.AppendSync([][]byte{fmt.Appendf(nil, "g%02d-%03d", gi, i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := w.Stats()
	t.Logf("%d AppendSync calls, %d fsyncs, %d segments", goroutines*perG, st.Fsyncs-before, st.Segments)
	mustClose(t, w)

	got := replayAll(t, dir, Options{})
	if len(got) != goroutines*perG {
		t.Fatalf("replayed %d records, want %d", len(got), goroutines*perG)
	}
	next := make([]int, goroutines)
	for _, p := range got {
		var gi, i int
		if _, err := fmt.Sscanf(string(p), "g%02d-%03d", &gi, &i); err != nil {
			t.Fatal(err)
		}
		if next[gi] != i {
			t.Fatalf("goroutine %d: record %d replayed, want %d", gi, i, next[gi])
		}
		next[gi]++
	}
}

// waitBlocked yields until n appenders are blocked on backpressure.
func waitBlocked(w *WAL, n int) {
	for {
		w.mu.Lock()
		k := w.waiting
		w.mu.Unlock()
		if k >= n {
			return
		}
		runtime.Gosched()
	}
}

// openFullQueue opens a log in a new directory whose queue holds 1,000
// bytes and whose first fsync, once g is armed, waits at g.
func openFullQueue(t *testing.T) (*gate, *WAL, string) {
	g := newGate()
	dir := t.TempDir()
	w, _ := open(t, dir, Options{MaxPendingBytes: 1000, syncFn: g.sync})
	return g, w, dir
}

// fullQueueRecords are three records for openFullQueue's log: a (held in
// its fsync), then b, which fills the queue, then c, which must wait.
func fullQueueRecords() (a, b, c []byte) {
	return []byte("a"), bytes.Repeat([]byte{'b'}, 900), bytes.Repeat([]byte{'c'}, 200)
}

func TestBackpressure(t *testing.T) {
	g, w, dir := openFullQueue(t)
	a, b, c := fullQueueRecords()
	r := newRecorder(3)
	g.armed.Store(true)
	w.Append([][]byte{a}, r.cb(a))
	<-g.entered
	w.Append([][]byte{b}, r.cb(b)) // fits: the queue was empty

	var returned atomic.Bool
	go func() {
		w.Append([][]byte{c}, r.cb(c)) // 908+208 > 1000: must wait
		returned.Store(true)
	}()
	waitBlocked(w, 1)
	if returned.Load() {
		t.Fatal("Append returned while the queue was full")
	}
	close(g.release)
	r.wait(t)
	mustClose(t, w)
	equalRecords(t, r.order, [][]byte{a, b, c})
	equalRecords(t, replayAll(t, dir, Options{}), [][]byte{a, b, c})
}

func TestAppendFromDoneDoesNotDeadlock(t *testing.T) {
	g, w, dir := openFullQueue(t)
	a, b, c := fullQueueRecords()
	cDone := make(chan error, 1)
	g.armed.Store(true)
	w.Append([][]byte{a}, func(err error) {
		if err != nil {
			t.Error(err)
		}
		// The queue is full of b, and the goroutine that would drain it
		// is this one.
		w.Append([][]byte{c}, func(err error) { cDone <- err })
	})
	<-g.entered
	w.Append([][]byte{b}, nil)
	close(g.release)

	select {
	case err := <-cDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Append from a done callback deadlocked")
	}
	mustClose(t, w)
	equalRecords(t, replayAll(t, dir, Options{}), [][]byte{a, b, c})
}

func TestCloseFlushesAndRefuses(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, Options{})
	const n = 100
	all := recs(0, n)
	r := newRecorder(n)
	for _, p := range all {
		w.Append([][]byte{p}, r.cb(p))
	}
	mustClose(t, w)
	select {
	case <-r.done:
	default:
		t.Fatal("Close returned before every queued done ran")
	}
	for _, err := range r.errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.AppendSync([][]byte{[]byte("late")}); !errors.Is(err, ErrClosed) {
		t.Errorf("AppendSync after Close = %v, want ErrClosed", err)
	}
	called := false
	w.Append([][]byte{[]byte("late")}, func(err error) {
		called = errors.Is(err, ErrClosed)
	})
	if !called {
		t.Error("Append after Close did not report ErrClosed")
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	equalRecords(t, replayAll(t, dir, Options{}), all)
}

// failingLog opens a log whose writer is held in an fsync (or write) that
// will fail with injected once released, with OnFatal counted.
type fatalCounter struct {
	calls atomic.Int32
	err   atomic.Value
}

func (f *fatalCounter) onFatal(err error) {
	f.calls.Add(1)
	f.err.Store(err)
}

func TestFsyncErrorIsFatal(t *testing.T) {
	injected := errors.New("injected EIO")
	g := newGate()
	g.err = injected
	var fc fatalCounter
	opts := Options{syncFn: g.sync, OnFatal: fc.onFatal}
	dir := t.TempDir()
	w, _ := open(t, dir, opts)
	if err := w.AppendSync([][]byte{[]byte("durable")}); err != nil {
		t.Fatal(err)
	}

	// One append in the failing fsync, two queued behind it.
	r := newRecorder(3)
	g.armed.Store(true)
	w.Append([][]byte{[]byte("in flight")}, r.cb(nil))
	<-g.entered
	w.Append([][]byte{[]byte("queued 1")}, r.cb(nil))
	w.Append([][]byte{[]byte("queued 2")}, r.cb(nil))
	close(g.release)
	r.wait(t)
	for i, err := range r.errs {
		if !errors.Is(err, injected) {
			t.Errorf("done %d = %v, want the fsync error", i, err)
		}
	}
	if n := fc.calls.Load(); n != 1 {
		t.Fatalf("OnFatal called %d times, want 1", n)
	}
	if err, _ := fc.err.Load().(error); !errors.Is(err, injected) {
		t.Errorf("OnFatal got %v", err)
	}

	// The disk now "works" again, but the log stays failed: after a failed
	// fsync the kernel may have dropped the data, so success proves nothing.
	if err := w.AppendSync([][]byte{[]byte("later")}); !errors.Is(err, injected) {
		t.Errorf("AppendSync after failure = %v, want the fsync error", err)
	}
	if st := w.Stats(); st.Records != 1 {
		t.Errorf("Stats.Records = %d, want 1", st.Records)
	}
	if err := w.Close(); !errors.Is(err, injected) {
		t.Errorf("Close = %v, want the fsync error", err)
	}
	if n := fc.calls.Load(); n != 1 {
		t.Errorf("OnFatal called %d times, want 1", n)
	}
	got := replayAll(t, dir, Options{})
	if len(got) == 0 || string(got[0]) != "durable" {
		t.Fatalf("replay after failure = %q, want the durable record first", got)
	}
	for _, p := range got {
		if string(p) == "later" || string(p) == "queued 1" {
			t.Errorf("record %q appended after the failure reached the disk", p)
		}
	}
}

func TestWriteErrorIsFatal(t *testing.T) {
	injected := errors.New("injected ENOSPC")
	var failing atomic.Bool
	var fc fatalCounter
	opts := Options{
		OnFatal: fc.onFatal,
		writeFn: func(f *os.File, p []byte) (int, error) {
			if failing.Load() {
				return 0, injected
			}
			return f.Write(p)
		},
	}
	dir := t.TempDir()
	w, _ := open(t, dir, opts)
	if err := w.AppendSync([][]byte{[]byte("durable")}); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	if err := w.AppendSync([][]byte{[]byte("lost")}); !errors.Is(err, injected) {
		t.Fatalf("AppendSync = %v, want the write error", err)
	}
	failing.Store(false)
	if err := w.AppendSync([][]byte{[]byte("later")}); !errors.Is(err, injected) {
		t.Fatalf("AppendSync after failure = %v, want the write error", err)
	}
	if n := fc.calls.Load(); n != 1 {
		t.Fatalf("OnFatal called %d times, want 1", n)
	}
	w.Close()
	equalRecords(t, replayAll(t, dir, Options{}), [][]byte{[]byte("durable")})
}

func TestRollFailureIsFatal(t *testing.T) {
	injected := errors.New("injected EIO on directory")
	var fc fatalCounter
	var armed atomic.Bool
	opts := Options{
		SegmentBytes: 128,
		OnFatal:      fc.onFatal,
		syncFn: func(f *os.File) error {
			if st, err := f.Stat(); err == nil && st.IsDir() && armed.Load() {
				return injected
			}
			return datasync(f)
		},
	}
	dir := t.TempDir()
	// Open syncs the directory too (its parent, its first segment), so
	// the failures start once it is open.
	w, _ := open(t, dir, opts)
	armed.Store(true)
	var err error
	for i := 0; err == nil && i < 100; i++ {
		err = w.AppendSync([][]byte{rec(i)})
	}
	if !errors.Is(err, injected) {
		t.Fatalf("AppendSync across a roll = %v, want the directory fsync error", err)
	}
	if n := fc.calls.Load(); n != 1 {
		t.Fatalf("OnFatal called %d times, want 1", n)
	}
	w.Close()
}

// Lazy records cost no fsync of their own; the next synced round, or Close,
// makes them durable, and replay keeps Append order across both kinds.
func TestAppendLazyRidesOnTheNextSync(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AppendSync([][]byte{[]byte("a")}); err != nil {
		t.Fatal(err)
	}
	before := w.Stats().Fsyncs
	w.AppendLazy([][]byte{[]byte("lazy-1")})
	w.AppendLazy([][]byte{[]byte("lazy-2")})
	if err := w.AppendSync([][]byte{[]byte("b")}); err != nil {
		t.Fatal(err)
	}
	if got := w.Stats().Fsyncs - before; got != 1 {
		t.Fatalf("two lazy appends and one synced append took %d fsyncs, want 1", got)
	}
	w.AppendLazy([][]byte{[]byte("lazy-3")})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	w, err = Open(dir, Options{}, func(r []byte) error { got = append(got, string(r)); return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	want := []string{"a", "lazy-1", "lazy-2", "b", "lazy-3"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replayed %q, want %q", got, want)
	}
}

// A segment is preallocated, so a crash leaves a torn record followed by
// zeros: that is still a torn tail, cut on recovery, and the zeros after the
// last record of a clean segment are no damage at all.
func TestTornTailBeforePreallocatedZerosIsCut(t *testing.T) {
	pristine, all := fixture(t, 20, smallSegments)
	lastName, full, start := lastRecord(t, pristine, all)
	for _, cut := range []int{start + 1, start + frameHeaderSize, len(full) - 1} {
		dir := copyDir(t, pristine)
		path := filepath.Join(dir, lastName)
		torn := append(slices.Clone(full[:cut]), make([]byte, 4096)...)
		writeFile(t, path, torn)
		w, got := open(t, dir, smallSegments)
		equalRecords(t, got, all[:len(all)-1])
		mustClose(t, w)
	}
	dir := copyDir(t, pristine)
	writeFile(t, filepath.Join(dir, lastName), append(slices.Clone(full), make([]byte, 4096)...))
	w, got := open(t, dir, smallSegments)
	equalRecords(t, got, all)
	mustClose(t, w)
}

// Open syncs the data directory's entry in its parent even when the
// directory was there already (made by someone who may not have synced
// it): records acknowledged in it are durable only once its name is.
func TestOpenSyncsTheDirectoryInItsParent(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var synced []string
	var mu sync.Mutex
	opts := Options{syncFn: func(f *os.File) error {
		mu.Lock()
		synced = append(synced, filepath.Clean(f.Name()))
		mu.Unlock()
		return nil
	}}
	w, _ := open(t, dir, opts)
	mustClose(t, w)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(synced, filepath.Clean(parent)) {
		t.Fatalf("Open on an existing directory synced %q, not its parent %s", synced, parent)
	}
}
