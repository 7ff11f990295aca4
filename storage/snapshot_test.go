package storage

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func writeSnapshot(t *testing.T, dir string, instance uint64, meta, state []byte, chunk int) *SnapshotWriter {
	t.Helper()
	syncs := 0
	w, err := CreateSnapshot(dir, instance, meta, SnapshotOptions{ChunkBytes: chunk,
		syncFn: func(f *os.File) error { syncs++; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	// Write in uneven pieces, as a state machine would.
	for rest := state; len(rest) > 0; {
		n := min(len(rest), 1+len(rest)/3)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return w
}

func randomState(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func readAll(t *testing.T, path string) (SnapshotInfo, []byte) {
	t.Helper()
	r, err := OpenSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return r.Info, b
}

// §5.5: a snapshot is written in chunks, each synced on its own, and reads
// back exactly, with its instance and metadata.
func TestSnapshotRoundTripInSyncedChunks(t *testing.T) {
	dir := t.TempDir()
	state := randomState(1<<20 + 123)
	w := writeSnapshot(t, dir, 42, []byte("members 1,2,3"), state, 64<<10)
	if want := (len(state) + 64<<10 - 1) / (64 << 10); w.Syncs() != want {
		t.Fatalf("%d chunk syncs, want one per 64 KiB chunk (%d)", w.Syncs(), want)
	}
	info, skipped, err := LatestSnapshot(dir)
	if err != nil || len(skipped) != 0 {
		t.Fatalf("latest: %v %v", err, skipped)
	}
	if info.Instance != 42 || string(info.Meta) != "members 1,2,3" || info.Bytes != uint64(len(state)) {
		t.Fatalf("info %+v", info)
	}
	_, got := readAll(t, info.Path)
	if !bytes.Equal(got, state) {
		t.Fatal("state read back differs")
	}
}

// The previous snapshot stays until the new one is durable; then it goes.
// A torn or bit-flipped newest snapshot is passed over for the previous one,
// never reported as good.
func TestSnapshotDamagedNewestFallsBackToPrevious(t *testing.T) {
	for _, damage := range []string{"torn", "flipped", "no end"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			writeSnapshot(t, dir, 10, nil, randomState(300<<10), 32<<10)
			// Keep a copy of the first: committing the second removes it.
			first := filepath.Join(dir, snapshotName(10))
			keep, err := os.ReadFile(first)
			if err != nil {
				t.Fatal(err)
			}
			writeSnapshot(t, dir, 20, nil, randomState(200<<10), 32<<10)
			if _, err := os.Stat(first); !os.IsNotExist(err) {
				t.Fatal("the older snapshot survived a newer durable one")
			}
			if err := os.WriteFile(first, keep, 0o644); err != nil {
				t.Fatal(err)
			}
			second := filepath.Join(dir, snapshotName(20))
			b, _ := os.ReadFile(second)
			switch damage {
			case "torn":
				b = b[:len(b)/2]
			case "flipped":
				b[len(b)/3] ^= 0x10
			case "no end":
				b = b[:len(b)-16]
			}
			if err := os.WriteFile(second, b, 0o644); err != nil {
				t.Fatal(err)
			}
			info, skipped, err := LatestSnapshot(dir)
			if err != nil || info.Instance != 10 || len(skipped) != 1 || !errors.Is(skipped[0], ErrCorrupt) {
				t.Fatalf("latest after a %s newest: %+v skipped %v err %v", damage, info, skipped, err)
			}
		})
	}
}

// A snapshot never committed leaves nothing behind and is never used.
func TestSnapshotAbortAndLeftoverTempAreIgnored(t *testing.T) {
	dir := t.TempDir()
	w, err := CreateSnapshot(dir, 5, nil, SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(randomState(1000))
	w.Abort()
	// A crash mid-write leaves a temporary file.
	crashed, _ := CreateSnapshot(dir, 6, nil, SnapshotOptions{})
	crashed.Write(randomState(1 << 20))
	crashed.f.Close()
	if _, _, err := LatestSnapshot(dir); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("latest with only an aborted and a crashed snapshot: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("leftovers: %v", entries)
	}
}

// A failed chunk sync fails the snapshot; nothing is committed.
func TestSnapshotSyncErrorCommitsNothing(t *testing.T) {
	dir := t.TempDir()
	w, err := CreateSnapshot(dir, 9, nil, SnapshotOptions{ChunkBytes: 1024,
		syncFn: func(*os.File) error { return errors.New("EIO") }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(randomState(4096)); err == nil {
		t.Fatal("write survived a failed sync")
	}
	if err := w.Commit(); err == nil {
		t.Fatal("commit after a failed sync")
	}
	if _, _, err := LatestSnapshot(dir); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("latest: %v", err)
	}
}

// MkdirAllSynced makes every missing level and is a no-op for one that
// exists; a file in the way is an error.
func TestMkdirAllSynced(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b", "snapshots")
	for range 2 {
		if err := MkdirAllSynced(dir); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			t.Fatalf("%s: %v", dir, err)
		}
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAllSynced(filepath.Join(file, "x")); err == nil {
		t.Fatal("a directory under a file was made")
	}
}
