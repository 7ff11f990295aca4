package actors_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/storage"
)

// putKeys writes keys [from, to) through the group's client.
func putKeys(t *testing.T, g *testGroup, from, to int) {
	t.Helper()
	c := g.client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := from; i < to; i++ {
		for {
			err := c.Put(ctx, []byte(fmt.Sprintf("k%04d", i)), []byte(fmt.Sprint(i)))
			if err == nil {
				break
			}
			// The same put again is harmless: a loaded machine can move
			// mastership while one is in flight.
			if !errors.Is(err, client.ErrOutcomeUnknown) && !errors.Is(err, client.ErrMasterChanged) || ctx.Err() != nil {
				t.Fatalf("put %d: %v", i, err)
			}
		}
	}
}

// snapshot has node id snapshot now and returns the instance.
func (g *testGroup) snapshot(id uint32) uint64 {
	g.t.Helper()
	h := g.hosts[id]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	at, err := h.replica.Snapshot(ctx, h.sys.Root)
	if err != nil {
		g.t.Fatalf("node %d: snapshot: %v", id, err)
	}
	return at
}

// sameState waits until every live replica holds n keys and the same hash.
func (g *testGroup) sameState(n int) {
	g.t.Helper()
	waitFor(g.t, 15*time.Second, func() error {
		var want [32]byte
		first := true
		for id, h := range g.hosts {
			if h.replica == nil {
				continue
			}
			if h.kv.Len() != n {
				return fmt.Errorf("node %d holds %d keys, want %d", id, h.kv.Len(), n)
			}
			if first {
				want, first = h.kv.Hash(), false
			} else if h.kv.Hash() != want {
				return fmt.Errorf("node %d: state hash differs", id)
			}
		}
		return nil
	})
}

// A snapshot lets go of the log below it (the acceptor's checkpoint starts
// a new segment and the older ones are deleted), and a restart is the
// snapshot plus the log after it, with the same state as the replicas that
// kept running.
func TestPaper5_5_SnapshotTruncatesLogAndRestartRecovers(t *testing.T) {
	g := newTestGroup(t, 3)
	putKeys(t, g, 0, 100)
	g.sameState(100)
	at := g.snapshot(1)
	if at == 0 {
		t.Fatal("snapshot at instance 0")
	}
	waitFor(t, 5*time.Second, func() error {
		if st := g.hosts[1].replica.Status(); st.LogTruncated < at || st.SnapshotInstance < at {
			return fmt.Errorf("status: snapshot %d, log let go of up to %d; want %d", st.SnapshotInstance, st.LogTruncated, at)
		}
		return nil
	})
	segs, _ := os.ReadDir(g.hosts[1].dir)
	for _, e := range segs {
		if e.Name() == fmt.Sprintf("%016x.wal", 1) {
			t.Errorf("segment 1 is still on disk after the checkpoint")
		}
	}
	putKeys(t, g, 100, 150)
	g.stop(1)
	g.start(1)
	if got := g.hosts[1].replica.Applied(); got < at {
		t.Fatalf("restarted at %d, below its snapshot at %d", got, at)
	}
	putKeys(t, g, 150, 160)
	g.sameState(160)
}

// A replica whose data directory was wiped, behind what its peers still
// hold in their logs, fetches a peer's snapshot in chunks, installs it and
// learns the rest of the log (§5.5).
func TestPaper5_5_WipedReplicaCatchesUpFromSnapshot(t *testing.T) {
	g := newTestGroupWith(t, 3, func(cfg *actors.Config) { cfg.SnapshotEvery = -1; cfg.SnapshotLogBytes = -1 })
	wipeNode3BehindSnapshots(t, g)
	g.start(3)
	g.sameState(300)
	waitFor(t, 5*time.Second, func() error { // the status is published on the proposer's tick
		if st := g.hosts[3].replica.Status(); st.Installs == 0 {
			return fmt.Errorf("node 3 caught up without installing a snapshot (status %v)", st)
		}
		return nil
	})
	putKeys(t, g, 300, 310)
	g.sameState(310)
}

// wipeNode3BehindSnapshots writes keys 0 to 49 on all three nodes, stops
// node 3 and wipes its data directory, writes keys 50 to 299 on the other
// two and has both snapshot: node 3, started again, is behind their
// snapshots.
func wipeNode3BehindSnapshots(t *testing.T, g *testGroup) {
	t.Helper()
	putKeys(t, g, 0, 50)
	g.sameState(50)
	g.stop(3)
	if err := os.RemoveAll(g.hosts[3].dir); err != nil {
		t.Fatal(err)
	}
	putKeys(t, g, 50, 300)
	g.snapshot(1)
	g.snapshot(2)
}

// refuseFirstRestore is a db.KV whose first Restore fails, changing
// nothing; damage, if set, runs then (to damage the file on disk).
type refuseFirstRestore struct {
	*db.KV
	refused atomic.Bool
	damage  func() error
}

func (k *refuseFirstRestore) Restore(r io.Reader) error {
	if k.refused.CompareAndSwap(false, true) {
		if k.damage != nil {
			return k.damage()
		}
		return errors.New("restore refused once, by the test")
	}
	return k.KV.Restore(r)
}

// A fetched snapshot whose install fails after it is in place is
// installed again on the next offer (the state machine refused it once),
// or fetched again if the file no longer reads back whole: the replica
// does not wait for a newer snapshot, which its peers may not take for a
// long time.
func TestSnapshotInstallFailingAfterItsRenameIsRetried(t *testing.T) {
	for _, damaged := range []bool{false, true} {
		t.Run(fmt.Sprintf("damaged=%v", damaged), func(t *testing.T) {
			var refusing *refuseFirstRestore
			g := newTestGroupWith(t, 3, func(cfg *actors.Config) {
				cfg.SnapshotEvery, cfg.SnapshotLogBytes = -1, -1
				if cfg.NodeID == 3 && refusing != nil {
					refusing.KV = cfg.StateMachine.(*db.KV)
					cfg.StateMachine = refusing
				}
			})
			wipeNode3BehindSnapshots(t, g)
			refusing = &refuseFirstRestore{}
			if damaged {
				refusing.damage = func() error { return damageSnapshots(filepath.Join(g.hosts[3].dir, "snapshots")) }
			}
			g.start(3)
			g.sameState(300)
			if !refusing.refused.Load() {
				t.Fatal("node 3 caught up without the refused install: the test proves nothing")
			}
			putKeys(t, g, 300, 310)
			g.sameState(310)
		})
	}
}

// damageSnapshots flips a byte in the middle of every snapshot file in
// dir and returns what reading one would: an error wrapping
// storage.ErrCorrupt.
func damageSnapshots(dir string) error {
	files, _ := filepath.Glob(filepath.Join(dir, "snap-*.snap"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(f, b, 0o644); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w: %d snapshot files damaged by the test", storage.ErrCorrupt, len(files))
}
