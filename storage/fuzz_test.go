package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fuzzOptions keep a fuzzed log small and off the disk's flush path: the
// recovery code under test is the same.
var fuzzOptions = Options{SegmentBytes: 64 << 10, syncFn: func(*os.File) error { return nil }}

// seedFile is a seed for a fuzz target: the bytes of the file name that
// write makes, with the real code, in a new directory.
func seedFile(f *testing.F, name string, write func(dir string) error) []byte {
	dir := f.TempDir()
	if err := write(dir); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		f.Fatal(err)
	}
	return seed
}

// FuzzWALRecovery opens a log whose only segment holds arbitrary bytes (the
// seed: a real segment of a few records). Recovery may refuse it or cut a
// torn tail, never panic; and what it recovered is stable: opening the
// log again replays exactly the same records.
func FuzzWALRecovery(f *testing.F) {
	seed := seedFile(f, segmentName(1), func(dir string) error {
		w, err := Open(dir, fuzzOptions, func([]byte) error { return nil })
		if err != nil {
			return err
		}
		for i := range 4 {
			if err := w.AppendSync([][]byte{[]byte(fmt.Sprintf("record %d", i)), bytes.Repeat([]byte{byte(i)}, 40*i)}); err != nil {
				return err
			}
		}
		return w.Close()
	})
	// The segment is preallocated: keep its records and a little of the
	// zeros after them (the fuzzer's inputs are bounded in size).
	seed = append(bytes.TrimRight(seed, "\x00"), make([]byte, 32)...)
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Add(append(slices.Clone(seed), make([]byte, 64)...))
	f.Fuzz(func(t *testing.T, segment []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), segment, 0o644); err != nil {
			t.Fatal(err)
		}
		replay := func() ([][]byte, error) {
			var got [][]byte
			w, err := Open(dir, fuzzOptions, func(r []byte) error {
				got = append(got, slices.Clone(r))
				return nil
			})
			if err != nil {
				return nil, err
			}
			return got, w.Close()
		}
		first, err := replay()
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("recovery failed with %v, not ErrCorrupt", err)
			}
			return
		}
		again, err := replay()
		if err != nil || len(again) != len(first) {
			t.Fatalf("a recovered log does not reopen the same: %d records, then %d (%v)", len(first), len(again), err)
		}
		for i := range first {
			if !bytes.Equal(first[i], again[i]) {
				t.Fatalf("record %d changed between two recoveries", i)
			}
		}
	})
}

// FuzzSnapshotFile reads arbitrary bytes as a snapshot file (the seed: a
// real one). It is refused or read whole, never a panic, and a snapshot
// that verifies reads back to the same bytes a second time.
func FuzzSnapshotFile(f *testing.F) {
	seed := seedFile(f, snapshotName(42), func(dir string) error {
		sw, err := CreateSnapshot(dir, 42, []byte("meta"), SnapshotOptions{})
		if err != nil {
			return err
		}
		if _, err := sw.Write(bytes.Repeat([]byte("state "), 100)); err != nil {
			return err
		}
		return sw.Commit()
	})
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Fuzz(func(t *testing.T, file []byte) {
		path := filepath.Join(t.TempDir(), snapshotName(42))
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		info, err := VerifySnapshot(path)
		if err != nil {
			return
		}
		s, err := OpenSnapshot(path)
		if err != nil {
			t.Fatalf("verified (%+v), then refused: %v", info, err)
		}
		defer s.Close()
		if _, err := io.Copy(io.Discard, s); err != nil {
			t.Fatalf("verified (%+v), then unreadable: %v", info, err)
		}
	})
}

// FuzzLogRange opens a log of three segments (after a checkpoint, 2 to 4)
// beside a range file of arbitrary bytes (the seeds: the real one, and
// ranges naming too much or too little). Recovery refuses with ErrCorrupt
// or opens, never panics; a log it opens replays every record of the
// segments the range names, and leaves a range file that opens again.
func FuzzLogRange(f *testing.F) {
	f.Add(encodeRange(logRange{2, 4}))
	f.Add(encodeRange(logRange{1, 4}))
	f.Add(encodeRange(logRange{2, 5}))
	f.Add(encodeRange(logRange{3, 3}))
	f.Add(encodeRange(logRange{2, 4})[:20])
	f.Fuzz(func(t *testing.T, rangeFile []byte) {
		dir := t.TempDir()
		for seq := uint64(2); seq <= 4; seq++ {
			seg := append(segmentHeader(seq), appendFrame(nil, fmt.Appendf(nil, "in %d", seq))...)
			if err := os.WriteFile(segmentPath(dir, seq), seg, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, rangeFileName), rangeFile, 0o644); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			var got []string
			w, err := Open(dir, fuzzOptions, func(r []byte) error {
				got = append(got, string(r))
				return nil
			})
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("recovery failed with %v, not ErrCorrupt", err)
				}
				return
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if want := []string{"in 2", "in 3", "in 4"}; !slices.Equal(got, want) {
				t.Fatalf("replayed %q, want %q", got, want)
			}
		}
	})
}
