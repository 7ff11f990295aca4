package sim

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// snapshotConfig is a quiet run in which nobody snapshots on their own:
// the scenario decides.
func snapshotConfig(seed uint64, nodes int) Config {
	cfg := quietConfig(seed, nodes)
	cfg.SnapshotEvery = 0
	return cfg
}

// snapshotNow has n snapshot (through the replica, as an operator asks)
// and waits until the snapshot is durable.
func (sc *scenario) snapshotNow(n *node) {
	sc.t.Helper()
	var answer *messages.SnapshotResponse
	n.d.RequestSnapshot(func(m proto.Message) { answer = m.(*messages.SnapshotResponse) })
	for i := 0; answer == nil; i++ {
		if i > 1000 {
			sc.t.Fatalf("%s: snapshot did not commit", n.name())
		}
		sc.run(time.Millisecond)
	}
	if answer.Error != "" || n.snapshot == nil {
		sc.t.Fatalf("%s: no snapshot: %v", n.name(), answer)
	}
}

// snapshotAllBut has every node but lag snapshot now.
func (sc *scenario) snapshotAllBut(lag *node) {
	sc.t.Helper()
	for _, n := range sc.s.nodes {
		if n != lag {
			sc.snapshotNow(n)
		}
	}
}

// §5.5: a snapshot that fails (the replica crashes while writing it) is
// never used and lets go of nothing: the previous one stays, and so does
// the log after it.
func TestPaper5_5_FailedSnapshotTruncatesNothing(t *testing.T) {
	sc := newScenario(t, snapshotConfig(1, 3))
	m := sc.master()
	sc.startClients()
	sc.run(time.Second)
	n := sc.s.nodes[0]
	sc.snapshotNow(n)
	first := n.snapshot.meta.Instance
	sc.run(500 * time.Millisecond)
	n.d.RequestSnapshot(nil)
	if !n.snapshotting {
		t.Fatal("no second snapshot started")
	}
	n.crash()
	sc.run(100 * time.Millisecond)
	n.restart()
	if n.snapshot.meta.Instance != first {
		t.Fatalf("after a crash mid-snapshot the node has a snapshot at %d, want the previous one at %d", n.snapshot.meta.Instance, first)
	}
	if n.r().SnapshotInstance() != first {
		t.Fatalf("the learner counts a snapshot at %d, want %d", n.r().SnapshotInstance(), first)
	}
	sc.s.issueStop = sc.s.sched.now
	r := sc.finish()
	t.Logf("master %s; snapshot at %d kept through a crash mid-snapshot; %v", m.name(), first, r)
}

// §5.5: a replica cut off while the others moved on and let go of their
// log (by snapshotting) cannot catch up from the log: it installs a
// peer's snapshot, then learns the rest, and ends with the same database.
func TestPaper5_5_ReplicaBehindTruncationRecoversThroughSnapshot(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			sc := newScenario(t, snapshotConfig(seed, 3+2*int(seed%2)))
			lag := sc.lagging(seed, sc.master())
			sc.run(2 * time.Second)
			sc.snapshotAllBut(lag)
			sc.run(500 * time.Millisecond)
			before := lag.applied
			sc.s.net.heal()
			sc.run(3 * time.Second)
			if sc.s.installs == 0 || lag.snapshot == nil {
				t.Fatalf("%s (applied %d) caught up without installing a snapshot", lag.name(), before)
			}
			sc.s.issueStop = sc.s.sched.now
			r := sc.finish() // every database hash equal at the end
			t.Logf("%s installed a snapshot at %d (it had applied %d); %v", lag.name(), lag.snapshot.meta.Instance, before, r)
		})
	}
}

// §5.5: recovery is the newest snapshot plus the log after it, and gives
// exactly the state of a replica that never crashed.
func TestPaper5_5_RecoveryIsSnapshotPlusReplay(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			sc := newScenario(t, snapshotConfig(seed, 3))
			sc.master()
			sc.startClients()
			sc.run(time.Second)
			n := sc.s.nodes[int(seed)%3]
			sc.snapshotNow(n)
			sc.run(time.Second) // more writes after the snapshot: the log replays them
			n.crash()
			n.restart()
			if n.applied < n.snapshot.meta.Instance {
				t.Fatalf("%s restarted at %d, below its snapshot at %d", n.name(), n.applied, n.snapshot.meta.Instance)
			}
			sc.s.issueStop = sc.s.sched.now
			r := sc.finish() // the replicas converge to one instance
			var other *node
			for _, o := range sc.s.nodes {
				if o != n && o.crashes == 0 {
					other = o
				}
			}
			if other.applied != n.applied || n.kv.Hash() != other.kv.Hash() {
				t.Fatalf("%s (snapshot at %d + replay to %d) differs from %s (at %d), which never crashed", n.name(),
					n.snapshot.meta.Instance, n.applied, other.name(), other.applied)
			}
			t.Logf("%s: snapshot at %d + replay to %d = %s; %v", n.name(), n.snapshot.meta.Instance, n.applied, other.name(), r)
		})
	}
}

// §5.5: the peer streaming a snapshot to a replica that is behind crashes
// part way; the replica gives the transfer up, fetches from another peer,
// installs and catches up.
func TestPaper5_5_ProviderDiesMidTransfer(t *testing.T) {
	sc := newScenario(t, snapshotConfig(3, 5))
	lag := sc.lagging(0, sc.master())
	sc.run(2 * time.Second)
	sc.snapshotAllBut(lag)
	sc.s.net.heal()
	var provider *node
	for i := 0; provider == nil; i++ {
		if i > 5000 {
			t.Fatalf("%s never started a transfer", lag.name())
		}
		sc.run(time.Millisecond)
		if f := lag.fetching; f != nil && len(f.buf) > 0 {
			provider = sc.s.nodes[f.from-1]
		}
	}
	provider.crash() // a group of five goes on, even if it was the master
	sc.run(4 * time.Second)
	if lag.snapshot == nil || sc.s.transfersCut == 0 {
		t.Fatalf("%s: snapshot %v after its provider %s crashed (transfers cut: %d)", lag.name(), lag.snapshot, provider.name(), sc.s.transfersCut)
	}
	provider.restart()
	sc.s.issueStop = sc.s.sched.now
	r := sc.finish()
	t.Logf("%s's provider %s crashed mid-transfer; it installed a snapshot at %d from another peer; %v",
		lag.name(), provider.name(), lag.snapshot.meta.Instance, r)
}

// behindTruncation plays a follower cut off while the others snapshot and
// let go of their logs, then the master crashing as the partition heals:
// the follower that is behind may be the next candidate. It returns what
// the run found.
func behindTruncation(t *testing.T, seed uint64, bug paxos.PlantedBug) error {
	cfg := snapshotConfig(seed, 3)
	cfg.Planted = bug
	sc := newScenario(t, cfg)
	m := sc.master()
	others := sc.others(m)
	lag, other := others[0], others[1]
	sc.isolate(lag)
	sc.startClients()
	sc.run(2 * time.Second)
	sc.snapshotNow(m)
	sc.snapshotNow(other)
	sc.run(100 * time.Millisecond)
	sc.s.net.heal()
	m.crash()
	sc.s.runUntil(sc.s.sched.now + int64(5*time.Second))
	return sc.s.err
}

// §5.5: an acceptor that let go of its log refuses a prepare from below
// its truncation point; planted bug promise-below-truncation answers it as
// if it had accepted nothing there, and a candidate that is behind fills
// chosen instances with no-ops.
func TestPaper5_5_CandidateBehindTruncationIsRefused(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		if err := behindTruncation(t, seed, paxos.BugNone); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
	for seed := uint64(1); seed <= 40; seed++ {
		if err := behindTruncation(t, seed, paxos.BugPromiseBelowTruncation); err != nil && errors.Is(err, ErrSafety) {
			t.Logf("planted promise-below-truncation caught with seed %d: %v", seed, firstLine(err))
			return
		}
	}
	t.Fatal("planted promise-below-truncation not caught in 40 seeds")
}
