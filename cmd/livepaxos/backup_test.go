package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/storage"
)

// writeBackup makes a backup file as `snapshot save` keeps it: a snapshot
// file at instance 7 with some state.
func writeBackup(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	handle, _ := proto.Marshal(&messages.SnapshotMeta{Instance: 7, MembershipVersion: 3})
	w, err := storage.CreateSnapshot(dir, 7, handle, storage.SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("state")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, storage.SnapshotFileName(7))
}

// A restore refuses a damaged backup, a directory with something in it,
// and a node that is not among the new members, and writes nothing then;
// restores of one backup for one new group agree on a cluster id that is
// not the one --peers alone gives.
func TestRestoreRefusesWhatItCannotRestore(t *testing.T) {
	backup := writeBackup(t)
	peers := "1=127.0.0.1:7201,2=127.0.0.1:7202,3=127.0.0.1:7203"

	damaged := filepath.Join(t.TempDir(), "damaged.lps")
	b, _ := os.ReadFile(backup)
	b[len(b)/2] ^= 0xff
	os.WriteFile(damaged, b, 0o600)
	dir := filepath.Join(t.TempDir(), "n1")
	if _, err := run("restore", damaged, "--data", dir, "--id", "1", "--peers", peers); !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("restore of a damaged backup: %v, want storage.ErrCorrupt", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused restore left %s behind (%v)", dir, err)
	}

	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "something"), nil, 0o600)
	if _, err := run("restore", backup, "--data", full, "--id", "1", "--peers", peers); !errors.Is(err, actors.ErrNotEmpty) {
		t.Fatalf("restore into a directory with something in it: %v, want actors.ErrNotEmpty", err)
	}
	if _, err := run("restore", backup, "--data", dir, "--id", "4", "--peers", peers); !errors.Is(err, actors.ErrConfig) {
		t.Fatalf("restore of a node not among --peers: %v, want actors.ErrConfig", err)
	}

	out1, err := run("restore", backup, "--data", filepath.Join(t.TempDir(), "n1"), "--id", "1", "--peers", peers)
	if err != nil {
		t.Fatal(err)
	}
	out2, err := run("restore", backup, "--data", filepath.Join(t.TempDir(), "n2"), "--id", "2", "--peers", peers)
	if err != nil {
		t.Fatal(err)
	}
	id := func(out string) string { return strings.Fields(out[strings.Index(out, "--cluster-id"):])[1] }
	if id(out1) != id(out2) || id(out1) == defaultClusterID(mustPeers(t, peers)) {
		t.Fatalf("cluster ids %s and %s; --peers alone gives %s", id(out1), id(out2), defaultClusterID(mustPeers(t, peers)))
	}
}

func mustPeers(t *testing.T, s string) cluster.Peers {
	t.Helper()
	p, err := cluster.ParsePeers(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
