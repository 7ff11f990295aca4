package actors

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/storage"
)

// A data directory records its format. One of a newer format than this
// binary reads is refused with a message naming both, before anything in
// it is touched; one of a known format, or of none recorded (made before
// formats were), opens.
func TestDataDirectoryFormatIsChecked(t *testing.T) {
	for _, tc := range []struct {
		format uint32
		ok     bool
	}{{0, true}, {DataFormat, true}, {DataFormat + 1, false}, {1 << 20, false}} {
		dir := t.TempDir()
		meta := &messages.MetaRecord{ClusterId: "c", NodeId: 1, Incarnation: 7, Fresh: true, Format: tc.format}
		if err := writeIdentity(filepath.Join(dir, identityFile), meta); err != nil {
			t.Fatal(err)
		}
		_, err := checkIdentity(dir, "c", 1, false)
		if tc.ok != (err == nil) {
			t.Fatalf("format %d: %v", tc.format, err)
		}
		if !tc.ok && (!errors.Is(err, ErrDataFormat) || !strings.Contains(err.Error(), fmt.Sprintf("is format %d", tc.format)) ||
			!strings.Contains(err.Error(), fmt.Sprintf("formats 1 to %d", DataFormat))) {
			t.Fatalf("format %d refused with %v: not ErrDataFormat naming both formats", tc.format, err)
		}
	}
}

// A directory whose identity file says its node has voted, but whose log
// segments are gone, is refused as corrupt (so --on-corruption rebuild
// moves it aside): starting on an empty log would forget its promises.
func TestVotedDirectoryWithoutItsLogIsRefused(t *testing.T) {
	dir := t.TempDir()
	meta := &messages.MetaRecord{ClusterId: "c", NodeId: 1, Incarnation: 7, Fresh: false, Format: DataFormat}
	if err := writeIdentity(filepath.Join(dir, identityFile), meta); err != nil {
		t.Fatal(err)
	}
	if _, err := checkIdentity(dir, "c", 1, false); !errors.Is(err, ErrLogMissing) || !errors.Is(err, storage.ErrSegmentMissing) ||
		!errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("a voted directory without segments: %v, want ErrLogMissing wrapping storage.ErrSegmentMissing and ErrCorrupt", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "0000000000000001.wal"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := checkIdentity(dir, "c", 1, false); err != nil {
		t.Fatalf("with its segment back: %v", err)
	}
}

// formatDir makes a data directory of node 1 with a log, and returns it
// with the config that opens it.
func formatDir(t *testing.T) (string, func() Config) {
	t.Helper()
	dir := t.TempDir()
	cfg := func() Config {
		return Config{NodeID: 1, Peers: map[uint32]string{1: "127.0.0.1:1", 2: "127.0.0.1:2"},
			DataDir: dir, ClusterID: "c", StateMachine: db.New()}
	}
	reopen(t, cfg())
	// A promise in the log, as a node that took part would have: a log
	// with no record at all is the crash window storage takes without its
	// range file.
	rec, err := proto.Marshal(&messages.Record{Kind: &messages.Record_Promise{Promise: &messages.PromiseRecord{Ballot: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := storage.Open(dir, storage.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AppendSync([][]byte{rec}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	reopen(t, cfg())
	return dir, cfg
}

// reopen opens the replica on cfg's directory and closes it again.
func reopen(t *testing.T, cfg Config) {
	t.Helper()
	r, err := NewReplica(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

// formatIn reads the format dir's identity file records.
func formatIn(t *testing.T, dir string) uint32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, identityFile))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := decodeIdentity(b)
	if err != nil {
		t.Fatal(err)
	}
	return meta.Format
}

// setFormat rewrites dir's identity file as of format f.
func setFormat(t *testing.T, dir string, f uint32) {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(dir, identityFile))
	meta, err := decodeIdentity(b)
	if err != nil {
		t.Fatal(err)
	}
	meta.Format = f
	if err := writeIdentity(filepath.Join(dir, identityFile), meta); err != nil {
		t.Fatal(err)
	}
}

const rangeFile = "LOGRANGE"

// A directory of format 2 always has the log's range file: one that lost
// it is refused as corrupt, naming the file and the format, instead of
// being taken for a directory made before the file (which would hide
// lost segments).
func TestFormat2DirectoryWithoutItsRangeFileIsRefused(t *testing.T) {
	dir, cfg := formatDir(t)
	if f := formatIn(t, dir); f != DataFormat || DataFormat < rangeFormat {
		t.Fatalf("a new directory is format %d, want %d (>= %d)", f, DataFormat, rangeFormat)
	}
	if err := os.Remove(filepath.Join(dir, rangeFile)); err != nil {
		t.Fatal(err)
	}
	_, err := NewReplica(cfg())
	if !errors.Is(err, storage.ErrRangeMissing) || !IsCorrupt(err) || !strings.Contains(err.Error(), rangeFile) ||
		!strings.Contains(err.Error(), fmt.Sprintf("format %d", DataFormat)) {
		t.Fatalf("format %d without %s: %v, want storage.ErrRangeMissing (corrupt) naming the file and the format", DataFormat, rangeFile, err)
	}
}

// A directory of format 1 (or 0, before formats were recorded) opens
// without the range file, as it always did, and is upgraded: the range
// file written, then format 2 recorded; from then on the file's loss is
// caught.
func TestFormat1DirectoryOpensAndIsUpgraded(t *testing.T) {
	for _, old := range []uint32{0, 1} {
		dir, cfg := formatDir(t)
		setFormat(t, dir, old)
		if err := os.Remove(filepath.Join(dir, rangeFile)); err != nil {
			t.Fatal(err)
		}
		reopen(t, cfg())
		if f := formatIn(t, dir); f != DataFormat {
			t.Fatalf("format %d after opening a format-%d directory, want %d", f, old, DataFormat)
		}
		if _, err := os.Stat(filepath.Join(dir, rangeFile)); err != nil {
			t.Fatalf("upgraded without the range file: %v", err)
		}
		os.Remove(filepath.Join(dir, rangeFile))
		if _, err := NewReplica(cfg()); !errors.Is(err, storage.ErrRangeMissing) {
			t.Fatalf("upgraded directory without its range file: %v", err)
		}
	}
}

// A crash between the upgrade's two writes (the range file is written,
// the identity file still says format 1) is safe: the directory opens,
// and the upgrade is made again. The identity file's replacement is made
// to fail by a directory where its temporary file would go.
func TestFormatUpgradeInterruptedIsSafe(t *testing.T) {
	dir, cfg := formatDir(t)
	setFormat(t, dir, 1)
	if err := os.Remove(filepath.Join(dir, rangeFile)); err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(dir, identityFile+".tmp")
	if err := os.Mkdir(blocker, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := NewReplica(cfg()); err == nil {
		t.Fatal("the upgrade's identity write could not fail: the test proves nothing")
	}
	if _, err := os.Stat(filepath.Join(dir, rangeFile)); err != nil || formatIn(t, dir) != 1 {
		t.Fatalf("after the interrupted upgrade: range file %v, format %d; want the file written and format 1", err, formatIn(t, dir))
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	reopen(t, cfg())
	if f := formatIn(t, dir); f != DataFormat {
		t.Fatalf("format %d after the upgrade was made again, want %d", f, DataFormat)
	}
}
