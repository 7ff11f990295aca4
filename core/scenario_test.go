package core

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// Scenarios of the paper run on the replica core in memory (the in-memory
// test cluster of cluster_test.go).

// §4: a stable master runs phase 1 once, then commits many instances with
// phase 2 only; every replica applies the same sequence.
func TestPaper4_MultiPaxosStableMaster(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	m := c.waitMaster()
	ballot := m.r().Ballot()
	var want []string
	for i := range 20 {
		p := fmt.Sprintf("op%d", i)
		want = append(want, p)
		c.submit(m, p)
		c.run()
	}
	c.advance(200 * time.Millisecond)
	if m.r().Ballot() != ballot || c.master() != m {
		t.Fatal("mastership changed without a fault")
	}
	for _, id := range c.ids {
		if got := c.nodes[id].appliedPayloads(); !slices.Equal(got, want) {
			t.Fatalf("node %d applied %v", id, got)
		}
	}
	c.checkAgreement()
}

// §4: a value accepted by a majority before the master died is chosen; the
// next master must re-propose it, never replace it.
func TestPaper4_NewMasterReproposesAcceptedValue(t *testing.T) {
	c := newTestCluster(t, 3, 2)
	m := c.waitMaster()
	c.submit(m, "before")
	c.run()
	// The master's accept reaches one follower, whose acknowledgement is
	// lost: the value is accepted by a majority (master and follower), so it
	// is chosen, but nobody knows it when the master dies.
	var other, third uint32
	for _, id := range c.ids {
		switch {
		case id == m.id:
		case other == 0:
			other = id
		default:
			third = id
		}
	}
	c.cut[[2]uint32{m.id, third}] = true
	c.cut[[2]uint32{other, m.id}] = true
	c.submit(m, "in-flight")
	c.run()
	if got := c.nodes[other].appliedPayloads(); len(got) != 1 {
		t.Fatalf("follower already applied %v", got)
	}
	m.down = true
	clear(c.cut)
	n := c.waitMaster()
	if n == m {
		t.Fatal("dead master re-elected")
	}
	c.advance(time.Second)
	for _, id := range c.ids {
		if id == m.id {
			continue
		}
		got := c.nodes[id].appliedPayloads()
		if !slices.Equal(got, []string{"before", "in-flight"}) {
			t.Fatalf("node %d applied %v; the value accepted by a majority was lost", id, got)
		}
	}
	c.checkAgreement()
}

// §4: a replica cut off from the others catches up from its peers' logs on
// its own once the partition heals.
func TestPaper4_CatchUpAfterPartition(t *testing.T) {
	c := newTestCluster(t, 3, 3)
	m := c.waitMaster()
	var lag uint32
	for _, id := range c.ids {
		if id != m.id {
			lag = id
		}
	}
	for _, id := range c.ids {
		c.cut[[2]uint32{id, lag}] = true
		c.cut[[2]uint32{lag, id}] = true
	}
	for i := range 12 {
		c.submit(m, fmt.Sprintf("w%d", i))
		c.advance(20 * time.Millisecond)
	}
	if len(c.nodes[lag].appliedPayloads()) != 0 {
		t.Fatal("partitioned replica applied something")
	}
	clear(c.cut)
	c.advance(3 * time.Second)
	if got, want := len(c.nodes[lag].appliedPayloads()), 12; got != want {
		t.Fatalf("lagging replica applied %d of %d", got, want)
	}
	c.checkAgreement()
}

// §4: with messages lost, duplicated by retransmission and reordered across
// master changes, replicas never disagree (a small seeded sweep; the
// simulator runs the long version).
func TestPaper4_LossyNetworkNeverDisagrees(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			c := newTestCluster(t, 3, seed)
			c.drop = 0.2
			for i := range 30 {
				if m := c.master(); m != nil {
					c.submit(m, fmt.Sprintf("s%d-%d", seed, i))
				}
				if c.rng.IntN(10) == 0 { // now and then, the master crashes and returns
					if m := c.master(); m != nil {
						m.down = true
						c.advance(time.Second)
						m.down = false
					}
				}
				c.advance(50 * time.Millisecond)
			}
			c.drop = 0
			c.advance(5 * time.Second)
			c.checkAgreement()
		})
	}
}

// §5.2: a master cut off from the others keeps them from electing anyone
// until the grants it got have run out.
func TestPaper5_2_LeaseBlocksOtherProposersInAGroup(t *testing.T) {
	// In a group: a master cut off from the others keeps them from
	// electing anyone until the grants it got have run out.
	c := newTestCluster(t, 3, 7)
	m := c.waitMaster()
	c.advance(200 * time.Millisecond)
	cutAt := c.now
	c.isolate(m)
	// The acceptors' grants run from when the master's last acknowledged
	// Accept arrived: until the master's own count plus the drift bound.
	until, ok := m.r().LeaseUntil(c.now)
	if !ok {
		t.Fatal("master holds no lease")
	}
	for c.otherMaster(m) == nil {
		c.advance(10 * time.Millisecond)
		if c.now.Sub(cutAt) > 10*time.Second {
			t.Fatal("no new master 10s after the old one was cut off")
		}
	}
	if grantsEnd := until.Add(testDrift); c.now.Before(grantsEnd) {
		t.Fatalf("a new master at %v, while the old master's grants held until %v", c.now.Sub(cutAt), grantsEnd.Sub(cutAt))
	}
	t.Logf("a new master %v after the cut; the old master's grants ran out after %v", c.now.Sub(cutAt), until.Add(testDrift).Sub(cutAt))
}

// §5.2: a master cut off from the others stops serving lease reads before
// any other replica can become master: its lease runs out (counted from
// its sends, less the drift bound) before the acceptors' grants do.
func TestPaper5_2_PartitionedMasterStopsLeaseReadsBeforeNewMaster(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		c := newTestCluster(t, 3, seed)
		m := c.waitMaster()
		c.advance(300 * time.Millisecond)
		if _, ok := m.r().LeaseUntil(c.now); !ok {
			t.Fatalf("seed %d: master holds no lease after its first instances", seed)
		}
		c.isolate(m)
		var leaseEnd time.Time
		for c.otherMaster(m) == nil {
			c.advance(10 * time.Millisecond)
			if _, ok := m.r().LeaseUntil(c.now); !ok && leaseEnd.IsZero() {
				leaseEnd = c.now
			}
		}
		if leaseEnd.IsZero() {
			t.Fatalf("seed %d: the old master still held its lease when a new master was elected", seed)
		}
		if !m.r().IsMaster() {
			t.Logf("seed %d: the old master also stepped down", seed)
		}
		newMaster := c.otherMaster(m)
		t.Logf("seed %d: old lease ended %v before node %d became master", seed, c.now.Sub(leaseEnd), newMaster.id)
	}
}

// §5.2: the master raises its ballot with a full phase 1 now and then,
// and at once above a higher ballot an acceptor reports, without ending
// its mastership (same epoch, no step-down).
func TestPaper5_2_BallotBoost(t *testing.T) {
	c := newTestCluster(t, 3, 11)
	m := c.waitMaster()
	c.advance(100 * time.Millisecond)
	epoch, ballot := m.r().MasterEpoch(), m.r().Ballot()
	c.advance(11 * time.Second) // past the default BoostInterval (10 s)
	if m.r().Stats().Boosts == 0 || m.r().Ballot() <= ballot {
		t.Fatalf("no ballot boost in 11s: boosts %d, ballot %d -> %d", m.r().Stats().Boosts, ballot, m.r().Ballot())
	}
	if !m.r().IsMaster() || m.r().MasterEpoch() != epoch {
		t.Fatalf("the boost ended the mastership: master %v, epoch %d -> %d", m.r().IsMaster(), epoch, m.r().MasterEpoch())
	}
	// A rival's prepare, refused for the lease, leaves its ballot at an
	// acceptor; the master hears of it in the next acknowledgement and
	// boosts above it.
	rival := c.others(m)[0]
	high := paxos.NextBallot(m.r().Ballot()+10*paxos.BallotStride, rival.id)
	for _, id := range c.ids {
		c.send(rival.id, id, &messages.Prepare{From: rival.id, Ballot: high, FirstInstance: 1})
	}
	c.run()
	c.submit(m, "after-rival")
	c.advance(time.Second)
	if m.r().Ballot() <= high || !m.r().IsMaster() || m.r().MasterEpoch() != epoch {
		t.Fatalf("after a rival ballot %d: master %v ballot %d epoch %d (was %d)", high, m.r().IsMaster(), m.r().Ballot(), m.r().MasterEpoch(), epoch)
	}
	c.checkAgreement()
}

// TestPaper5_2_HandoverSkipsElectionAndLease: a master that hands
// mastership over (a restart, an operator's transfer) stops taking
// commands and serving lease reads, has what it had in flight chosen, and
// tells the successor, which campaigns at once; the acceptors release the
// old master's lease on the successor's Prepare, so a new master serves
// within a few message rounds, not after an election timeout and the rest
// of a lease (about 2.7 s here). Nothing acknowledged is lost, and never do
// two masters hold leases (c.master checks it at every step).
func TestPaper5_2_HandoverSkipsElectionAndLease(t *testing.T) {
	c := newTestCluster(t, 3, 7)
	m := c.waitMaster()
	for i := range 10 {
		c.submit(m, fmt.Sprintf("before%d", i))
		if i == 4 {
			c.run() // the first five chosen; the rest in flight or queued
		}
	}
	if err := m.r().TransferMastership(0, c.now); err != nil {
		t.Fatal(err)
	}
	if m.r().IsMaster() {
		t.Fatal("a master handing over still says it is master")
	}
	if _, ok := m.r().LeaseUntil(c.now); ok {
		t.Fatal("a master handing over still holds a lease to serve reads on")
	}
	if v := m.r().View(c.now); v.Decide(messages.Consistency_CONSISTENCY_LEASE, c.now).Lease {
		t.Fatal("a master handing over serves lease reads")
	}
	c.submit(m, "refused")
	c.run()
	refused := false
	for _, r := range m.replies {
		if string(r.Cmd.Payload) == "refused" {
			refused = r.Response.Code == messages.ErrorCode_ERROR_CODE_NOT_MASTER
		}
	}
	if !refused {
		t.Fatal("a command during the handover was not refused as not master")
	}
	start := c.now
	var next *node
	for c.now.Sub(start) < 2*time.Second {
		c.advance(10 * time.Millisecond)
		if next = c.otherMaster(m); next != nil {
			if _, ok := next.r().LeaseUntil(c.now); ok {
				break
			}
		}
	}
	took := c.now.Sub(start)
	if next == nil || took > 200*time.Millisecond {
		t.Fatalf("a new master with a lease after %v (%v), want within 200ms", took, next)
	}
	t.Logf("node %d handed mastership to node %d; it serves lease reads after %v", m.id, next.id, took)
	c.submit(next, "after")
	c.advance(100 * time.Millisecond)
	// Every command is either applied everywhere (and acknowledged, if it
	// was answered) or refused as not master and applied nowhere.
	answered := map[string]messages.ErrorCode{}
	for _, n := range c.nodes {
		for _, r := range n.replies {
			answered[string(r.Cmd.Payload)] = r.Response.Code
		}
	}
	want := m.appliedPayloads()
	for p, code := range answered {
		if code != messages.ErrorCode_ERROR_CODE_OK && slices.Contains(want, p) {
			t.Fatalf("%s refused (%v) but applied", p, code)
		}
		if code == messages.ErrorCode_ERROR_CODE_OK && !slices.Contains(want, p) {
			t.Fatalf("%s acknowledged but not applied", p)
		}
	}
	if len(want) < 5 || want[len(want)-1] != "after" {
		t.Fatalf("applied %v", want)
	}
	t.Logf("applied %v", want)
	for _, n := range c.nodes {
		if !slices.Equal(n.appliedPayloads(), want) {
			t.Fatalf("node %d applied %v, node %d %v", n.id, n.appliedPayloads(), m.id, want)
		}
	}
	c.checkAgreement()
}

// A transfer names a voter: not the master itself, not a stranger, and only
// a master transfers.
func TestTransferMastershipRefusals(t *testing.T) {
	c := newTestCluster(t, 3, 8)
	m := c.waitMaster()
	f := c.others(m)[0]
	for _, tc := range []struct {
		n  *node
		to uint32
	}{{m, m.id}, {m, 9}, {f, 0}} {
		if err := tc.n.r().TransferMastership(tc.to, c.now); !errors.Is(err, paxos.ErrNoSuccessor) {
			t.Errorf("node %d transferring to %d: %v, want ErrNoSuccessor", tc.n.id, tc.to, err)
		}
	}
	if err := m.r().TransferMastership(f.id, c.now); err != nil {
		t.Fatal(err)
	}
	c.advance(300 * time.Millisecond)
	if got := c.master(); got != f {
		t.Fatalf("master after a transfer to node %d: %v", f.id, got)
	}
}

// §5.3: the epoch changes with every new mastership, and only then: not
// with a ballot boost, and again when a former master is re-elected.
func TestPaper5_3_EpochChangesOnEveryNewMastershipOnly(t *testing.T) {
	c := newTestCluster(t, 3, 5)
	m := c.waitMaster()
	c.advance(100 * time.Millisecond)
	e1 := m.r().MasterEpoch()
	c.advance(11 * time.Second) // a ballot boost
	if m.r().MasterEpoch() != e1 {
		t.Fatalf("epoch moved from %d to %d without a new mastership", e1, m.r().MasterEpoch())
	}
	c.isolate(m)
	for c.otherMaster(m) == nil {
		c.advance(10 * time.Millisecond)
	}
	n := c.otherMaster(m)
	c.advance(100 * time.Millisecond)
	e2 := n.r().MasterEpoch()
	if e2 == e1 || e2 == 0 {
		t.Fatalf("new master %d has epoch %d, the old one had %d", n.id, e2, e1)
	}
	clear(c.cut)
	c.advance(time.Second)
	if m.r().IsMaster() {
		t.Fatal("the old master did not step down once it heard of the new one")
	}
	// The old master is elected again: a new epoch, not its old one. Cut
	// off whichever other node is master until m wins an election.
	for i := 0; !m.r().IsMaster(); i++ {
		if i > 3000 {
			t.Fatal("the old master was not re-elected in 30s")
		}
		if o := c.otherMaster(m); o != nil {
			clear(c.cut)
			c.isolate(o)
		}
		c.advance(10 * time.Millisecond)
	}
	c.advance(100 * time.Millisecond)
	if e3 := m.r().MasterEpoch(); e3 == e1 || e3 == e2 || e3 < e2 {
		t.Fatalf("re-elected master %d has epoch %d; earlier epochs %d and %d", m.id, e3, e1, e2)
	}
}

// §5.3, the paper's anomaly: a master handles a command, loses
// mastership, and is re-installed; the command, chosen only after a new
// epoch began, must not apply, although the same replica is master again.
func TestPaper5_3_ReinstalledMasterAnomalyIsRejected(t *testing.T) {
	for _, bug := range []paxos.PlantedBug{paxos.BugNone, paxos.BugIgnoreEpoch} {
		refused := reinstalledMaster(t, bug)
		switch {
		case bug == paxos.BugNone && !refused:
			t.Fatal("a command of an ended epoch applied after its master was re-installed")
		case bug == paxos.BugIgnoreEpoch && refused:
			t.Fatal("planted bug ignore-epoch went unnoticed")
		}
	}
}

// reinstalledMaster plays the anomaly and reports whether the epoch
// refused the stranded command.
func reinstalledMaster(t *testing.T, bug paxos.PlantedBug) (refused bool) {
	c := newPlantedCluster(t, 3, 3, bug)
	m := c.waitMaster()
	c.advance(100 * time.Millisecond)
	// m's sends are lost: X1 and X2 are accepted by its own acceptor only.
	for _, o := range c.others(m) {
		c.cut[[2]uint32{m.id, o.id}] = true
	}
	c.submit(m, "X1")
	c.submit(m, "X2")
	c.run()
	// Another replica becomes master (after m's lease), and its epoch
	// begins where X1 sits; then it dies.
	var n *node
	for n = c.otherMaster(m); n == nil; n = c.otherMaster(m) {
		c.advance(10 * time.Millisecond)
	}
	c.advance(50 * time.Millisecond)
	n.down = true
	clear(c.cut)
	// m (or the third replica) is master again, with promises from m's
	// acceptor, which reports X2: it is re-proposed after n's epoch start.
	for c.otherMaster(n) == nil {
		c.advance(10 * time.Millisecond)
	}
	c.advance(500 * time.Millisecond)
	live := c.otherMaster(n)
	var tr paxos.EpochTracker
	tr.Plant(bug)
	found := false
	for _, e := range live.entries {
		tr.Enter(e)
		for _, cmd := range e.Value.GetCommands() {
			if string(cmd.Payload) == "X2" {
				found = true
				refused = !tr.Admits(cmd)
				t.Logf("%v: X2 (epoch %d) chosen at instance %d in epoch %d: refused %v", bug, cmd.Epoch, e.Instance, func() uint64 { e, _ := tr.Epoch(); return e }(), refused)
			}
		}
	}
	if !found {
		t.Fatalf("%v: X2 was not re-proposed; the scenario did not happen", bug)
	}
	return refused
}

// BenchmarkCommitBatch measures the replica core (no disk or network, but
// the in-memory wire copies every message as the real one would) committing
// one batch of 64 commands on a 3-replica group: the master's flushes, three
// acceptors, the acknowledgements, the chosen notice and three learners.
func BenchmarkCommitBatch(b *testing.B) {
	c := newTestCluster(&testing.T{}, 3, 1)
	m := c.waitMaster()
	payload := make([]byte, 128)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range 64 {
			m.d.Propose(&messages.Command{RequestId: uint64(j), Payload: payload})
		}
		c.run()
	}
	b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "commands/s")
}
