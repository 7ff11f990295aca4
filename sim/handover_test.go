package sim

import (
	"testing"
	"time"
)

// handoverConfig is ConfigForSeed with masters handing mastership over
// every few hundred milliseconds on top of the seed's faults.
func handoverConfig(seed uint64) Config {
	c := ConfigForSeed(seed)
	c.Faults.TransferEvery = []time.Duration{200 * time.Millisecond, 700 * time.Millisecond}[seed%2]
	return c
}

// TestPaper5_2_HandoverUnderSimulation: masters hand mastership over
// (paxos/handover.go) amid the seed's crashes, partitions, lost and late
// messages. The acceptors release a lease before it runs out, on the word
// of a master that stopped serving reads on it; the checker holds every
// lease read to its lease, ended where its master gave it up, and no two
// replicas' leases may overlap; every other invariant and linearizability
// hold as in TestSimulation.
func TestPaper5_2_HandoverUnderSimulation(t *testing.T) {
	count := 60
	if testing.Short() {
		count = 20
	}
	failures, total, wall := runSeedsWith(handoverConfig, 1, count, workers(), nil)
	for _, err := range failures {
		t.Errorf("%v\n  replay: go test ./sim -count=1 -v -run 'TestPaper5_2_HandoverUnderSimulation$' (seed %d, handoverConfig)", err, seedOf(err))
	}
	if total.Handovers == 0 || total.LeaseReads == 0 || total.Situations[sitHandoverCampaign] == 0 {
		t.Fatalf("%d handovers, %d lease reads, %d successors campaigning on a handover: the test proves nothing",
			total.Handovers, total.LeaseReads, total.Situations[sitHandoverCampaign])
	}
	t.Logf("%d seeds in %s: %d handovers (%d successors campaigned on one), %d crashes, %d partitions, %d lease reads, %d ops (%d ok)",
		count, wall.Round(time.Millisecond), total.Handovers, total.Situations[sitHandoverCampaign], total.Crashes, total.Partitions, total.LeaseReads, total.Ops, total.OpsOK)
}
