package paxos

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// §4: a stable master runs phase 1 once, then commits many instances with
// phase 2 only; every replica applies the same sequence.
func TestPaper4_MultiPaxosStableMaster(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	m := c.waitMaster()
	ballot := m.p.Ballot()
	var want []string
	for i := range 20 {
		p := fmt.Sprintf("op%d", i)
		want = append(want, p)
		c.submit(m, p)
		c.run()
	}
	c.advance(200 * time.Millisecond)
	if m.p.Ballot() != ballot || c.master() != m {
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
