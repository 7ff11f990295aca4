package paxos

import (
	"bytes"
	"sort"
)

// ChecksumTally compares the replicas' checksums of their state at the
// instances of checksum values (§6.2 runtime consistency checks). It is
// plain bookkeeping: the shell records its own checksum once computed and
// every peer's report as it arrives, and acts on the verdicts.
type ChecksumTally struct {
	id     uint32
	voters int
	keep   int
	checks map[uint64]*checkState
}

type checkState struct {
	sums    map[uint32][]byte
	decided bool // this replica's verdict was given
	flagged map[uint32]bool
}

// Verdict is what a tally learned about one instance.
type Verdict struct {
	Instance uint64
	// Agreed: this replica's checksum matches a majority's.
	Agreed bool
	// SelfDiverged: a majority agrees on a checksum this replica does not
	// have. Its state cannot be trusted: it must stop serving.
	SelfDiverged bool
	// Diverged lists peers whose checksum differs from the majority's,
	// newly found.
	Diverged []uint32
}

// NewChecksumTally returns a tally for replica id in a group of voters,
// remembering the last keep checked instances.
func NewChecksumTally(id uint32, voters, keep int) *ChecksumTally {
	return &ChecksumTally{id: id, voters: voters, keep: keep, checks: make(map[uint64]*checkState)}
}

// Record adds node's checksum at instance and returns what is now known
// there (a zero Verdict when nothing new).
func (t *ChecksumTally) Record(instance uint64, node uint32, sum []byte) Verdict {
	c := t.checks[instance]
	if c == nil {
		if len(t.checks) >= t.keep && instance < t.oldest() {
			return Verdict{} // too old to matter
		}
		c = &checkState{sums: make(map[uint32][]byte), flagged: make(map[uint32]bool)}
		t.checks[instance] = c
		t.trim()
	}
	if _, dup := c.sums[node]; dup {
		return Verdict{}
	}
	c.sums[node] = sum
	v := Verdict{Instance: instance}
	majority, ok := c.majority(quorum(t.voters))
	if !ok {
		return Verdict{}
	}
	if own, have := c.sums[t.id]; have && !c.decided {
		c.decided = true
		v.Agreed = bytes.Equal(own, majority)
		v.SelfDiverged = !v.Agreed
	}
	for _, n := range sortedNodes(c.sums) {
		if !bytes.Equal(c.sums[n], majority) && !c.flagged[n] && n != t.id {
			c.flagged[n] = true
			v.Diverged = append(v.Diverged, n)
		}
	}
	return v
}

// majority returns the checksum at least q replicas reported, if any.
func (c *checkState) majority(q int) ([]byte, bool) {
	for _, a := range c.sums {
		n := 0
		for _, b := range c.sums {
			if bytes.Equal(a, b) {
				n++
			}
		}
		if n >= q {
			return a, true
		}
	}
	return nil, false
}

func (t *ChecksumTally) oldest() uint64 {
	first := true
	var o uint64
	for i := range t.checks {
		if first || i < o {
			o, first = i, false
		}
	}
	return o
}

func (t *ChecksumTally) trim() {
	for len(t.checks) > t.keep {
		delete(t.checks, t.oldest())
	}
}

func sortedNodes(m map[uint32][]byte) []uint32 {
	ns := make([]uint32, 0, len(m))
	for n := range m {
		ns = append(ns, n)
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i] < ns[j] })
	return ns
}
