package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// rec is the i-th test record. Lengths vary so that frames do not line up.
func rec(i int) []byte {
	return fmt.Appendf(nil, "record-%05d-%s", i, bytes.Repeat([]byte{'x'}, i%23))
}

func recs(from, to int) [][]byte {
	var out [][]byte
	for i := from; i < to; i++ {
		out = append(out, rec(i))
	}
	return out
}

// open opens the log in dir and returns it with everything it replayed.
func open(t testing.TB, dir string, opts Options) (*WAL, [][]byte) {
	t.Helper()
	var got [][]byte
	w, err := Open(dir, opts, func(r []byte) error {
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return w, got
}

// replayAll opens the log, returns every record in it, and closes it.
func replayAll(t testing.TB, dir string, opts Options) [][]byte {
	t.Helper()
	w, got := open(t, dir, opts)
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return got
}

func mustClose(t testing.TB, w *WAL) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func equalRecords(t testing.TB, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// segmentFiles lists the segment paths in dir in order.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	seqs, err := listSegments(dir)
	if err != nil {
		t.Fatalf("listSegments: %v", err)
	}
	var out []string
	for _, s := range seqs {
		out = append(out, segmentPath(dir, s))
	}
	return out
}

// frameOffsets returns the offsets of the records in an intact segment file.
func frameOffsets(t testing.TB, path string) []int {
	t.Helper()
	b := readFile(t, path)
	var offs []int
	for off := segmentHeaderSize; off < len(b); off += frameSize(int(frameLength(b[off:]))) {
		offs = append(offs, off)
	}
	return offs
}

// readFile returns a file's contents; for a segment, only up to the end of
// its records, without the preallocated zeros after them.
func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".wal") {
		b = b[:dataEnd(b)]
	}
	return b
}

// dataEnd is the offset just past the last record of an intact segment: the
// records are followed by zeros (preallocated space) or by the end of file.
func dataEnd(b []byte) int {
	off := segmentHeaderSize
	for off+frameHeaderSize <= len(b) && !bytes.Equal(b[off:off+frameHeaderSize], make([]byte, frameHeaderSize)) {
		off += frameSize(int(frameLength(b[off:])))
	}
	return min(off, len(b))
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fileSize is the size of a file's data (see readFile).
func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	return int64(len(readFile(t, path)))
}

// snapshot returns the contents of every file in dir.
func snapshot(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string][]byte)
	for _, e := range entries {
		m[e.Name()] = readFile(t, filepath.Join(dir, e.Name()))
	}
	return m
}

// refusedUnchanged opens dir twice (the second proves the lock was
// released), wants sentinel (ErrSegmentMissing, say) wrapping ErrCorrupt,
// with an error naming every name in names, and the directory as it was.
func refusedUnchanged(t *testing.T, dir string, sentinel error, names ...string) {
	t.Helper()
	refusedUnchangedWith(t, dir, smallSegments, sentinel, names...)
}

// refusedUnchangedWith is refusedUnchanged with opts.
func refusedUnchangedWith(t *testing.T, dir string, opts Options, sentinel error, names ...string) {
	t.Helper()
	before := snapshot(t, dir)
	for range 2 {
		w, err := Open(dir, opts, nil)
		if !errors.Is(err, sentinel) || !errors.Is(err, ErrCorrupt) {
			if w != nil {
				w.Close()
			}
			t.Fatalf("Open = %v, want %v (wrapping ErrCorrupt)", err, sentinel)
		}
		for _, n := range names {
			if !strings.Contains(err.Error(), n) {
				t.Errorf("the error does not name %s: %v", n, err)
			}
		}
	}
	after := snapshot(t, dir)
	delete(before, lockFileName)
	delete(after, lockFileName)
	if len(before) != len(after) {
		t.Fatalf("refused Open changed the directory: %d files -> %d", len(before), len(after))
	}
	for name, b := range before {
		if !bytes.Equal(after[name], b) {
			t.Errorf("refused Open modified %s", name)
		}
	}
}

// copyDir copies the files of src into a fresh directory.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	for name, b := range snapshot(t, src) {
		writeFile(t, filepath.Join(dst, name), b)
	}
	return dst
}

// fixture writes n records with small segments and returns the directory
// and the records in it.
func fixture(t testing.TB, n int, opts Options) (string, [][]byte) {
	t.Helper()
	dir := t.TempDir()
	w, _ := open(t, dir, opts)
	all := recs(0, n)
	for _, r := range all {
		if err := w.AppendSync([][]byte{r}); err != nil {
			t.Fatalf("AppendSync: %v", err)
		}
	}
	mustClose(t, w)
	return dir, all
}

// gate is a syncFn that, once armed, holds the next fsync until released, so a
// test can queue appends while the writer is known to be inside an fsync.
type gate struct {
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
	err     error // returned by the held fsync, once released
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) sync(f *os.File) error {
	if g.armed.CompareAndSwap(true, false) {
		close(g.entered)
		<-g.release
		if g.err != nil {
			return g.err
		}
	}
	return datasync(f)
}

// recorder collects done results in the order the log delivers them. All
// calls come from the log's goroutine; readers wait on done first.
type recorder struct {
	order [][]byte
	errs  []error
	done  chan struct{}
	left  atomic.Int64
}

func newRecorder(n int) *recorder {
	r := &recorder{done: make(chan struct{})}
	r.left.Store(int64(n))
	return r
}

func (r *recorder) cb(payload []byte) func(error) {
	return func(err error) {
		r.order = append(r.order, payload)
		r.errs = append(r.errs, err)
		if r.left.Add(-1) == 0 {
			close(r.done)
		}
	}
}

func (r *recorder) wait(t testing.TB) {
	t.Helper()
	<-r.done
	if r.left.Load() != 0 {
		t.Fatalf("done called %d extra times", -r.left.Load())
	}
}
