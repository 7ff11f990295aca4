package actors_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/storage"
)

func dirContents(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = b
	}
	return m
}

// A node started on another node's (or cluster's) data directory is refused
// before the log is opened: nothing there changes, not even a torn tail
// that the rightful owner would cut.
func TestForeignDataDirectoryIsRefusedUntouched(t *testing.T) {
	dir := t.TempDir()
	cfg := func(id uint32, cluster string) actors.Config {
		return actors.Config{NodeID: id, Peers: map[uint32]string{1: "127.0.0.1:1", 2: "127.0.0.1:2"},
			DataDir: dir, ClusterID: cluster, StateMachine: db.New()}
	}
	r, err := actors.NewReplica(cfg(1, "a"))
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	f, err := os.OpenFile(logs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{9, 0, 0, 0, 1, 2}, 4096) // a torn record after the header
	f.Close()
	before := dirContents(t, dir)
	for _, c := range []actors.Config{cfg(2, "a"), cfg(1, "b")} {
		if _, err := actors.NewReplica(c); !errors.Is(err, actors.ErrForeignData) {
			t.Fatalf("node %d of %q on node 1 of \"a\"'s directory: %v", c.NodeID, c.ClusterID, err)
		}
	}
	after := dirContents(t, dir)
	for name, b := range before {
		if !bytes.Equal(b, after[name]) {
			t.Fatalf("%s changed by a refused start", name)
		}
	}
	os.WriteFile(filepath.Join(dir, "IDENTITY"), []byte("garbage!"), 0o644)
	if _, err := actors.NewReplica(cfg(1, "a")); !errors.Is(err, actors.ErrCorruptIdentity) {
		t.Fatalf("garbled identity file: %v", err)
	}
}

// A data directory whose log segments are gone while its IDENTITY stays
// is refused as corrupt, naming what is missing, even for a node that has
// not voted yet (the identity file alone would pass it): the log's range
// file says which segments it must hold.
func TestDataDirectoryWithoutItsSegmentsIsRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := actors.Config{NodeID: 1, Peers: map[uint32]string{1: "127.0.0.1:1", 2: "127.0.0.1:2"},
		DataDir: dir, ClusterID: "a", StateMachine: db.New()}
	r, err := actors.NewReplica(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(logs) == 0 {
		t.Fatal("no log segment written")
	}
	for _, l := range logs {
		if err := os.Remove(l); err != nil {
			t.Fatal(err)
		}
	}
	before := dirContents(t, dir)
	_, err = actors.NewReplica(cfg)
	if !errors.Is(err, storage.ErrSegmentMissing) || !actors.IsCorrupt(err) ||
		!strings.Contains(err.Error(), filepath.Base(logs[0])) {
		t.Fatalf("a directory without its segments: %v, want storage.ErrSegmentMissing naming %s", err, filepath.Base(logs[0]))
	}
	after := dirContents(t, dir)
	delete(before, "LOCK")
	delete(after, "LOCK")
	for name, b := range before {
		if !bytes.Equal(b, after[name]) {
			t.Fatalf("%s changed by a refused start", name)
		}
	}
	if len(after) != len(before) {
		t.Fatalf("a refused start changed the directory: %d entries -> %d", len(before), len(after))
	}
}
