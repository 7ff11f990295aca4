package sim

import "github.com/livepaxos/livepaxos/paxos"

// The fault injector of safety mode. Each kind of fault is its own
// process: it waits a random time around its mean, strikes, and schedules
// its next strike, until the faults stop.

// jitter draws a wait with the given mean, uniform in [0, 2*mean).
func (s *Simulator) jitter(mean int64) int64 { return s.rng.Int64N(2*mean) + 1 }

// between draws uniformly from [lo, hi].
func (s *Simulator) between(lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	return lo + s.rng.Int64N(hi-lo+1)
}

func (s *Simulator) startFaults() {
	f := s.cfg.Faults
	if f.CrashEvery > 0 {
		s.sched.after(s.jitter(int64(f.CrashEvery)), s.crashOne)
	}
	if f.PartitionEvery > 0 {
		s.sched.after(s.jitter(int64(f.PartitionEvery)), s.partitionSome)
	}
	if f.TransferEvery > 0 {
		s.sched.after(s.jitter(int64(f.TransferEvery)), s.transferOne)
	}
}

// transferOne has the master hand mastership over, as a restart or an
// operator would: to the most caught-up voter, or to one picked at random
// (which may be down or cut off: then the others elect as after a
// fail-over).
func (s *Simulator) transferOne() {
	if !s.faulty() {
		return
	}
	defer s.sched.after(s.jitter(int64(s.cfg.Faults.TransferEvery)), s.transferOne)
	for _, n := range s.nodes {
		if !n.up || !n.r().IsMaster() {
			continue
		}
		var to uint32
		if s.rng.IntN(2) == 0 {
			to = s.ids[s.rng.IntN(len(s.ids))]
		}
		err := n.d.TransferMastership(to)
		s.tracef("TRANSFER %s hands mastership to %d (0: the most caught up): %v", n.name(), to, err)
		if err == nil {
			s.handovers++
			if s.rng.IntN(2) == 0 {
				n.d.Leave() // as a node stopping on SIGTERM does next
			}
		}
		return
	}
}

func (s *Simulator) faulty() bool { return s.sched.now < s.faultsEnd && s.err == nil }

// crashOne crashes a random live node and schedules its restart (at the
// latest when the faults stop).
func (s *Simulator) crashOne() {
	if !s.faulty() {
		return
	}
	// Half the crashes strike a node whose fsync is in progress, if there
	// is one: the moment when what was written and what was promised can
	// differ, which a crash at a random moment rarely hits.
	var live, syncing []*node
	for _, n := range s.nodes {
		if n.up {
			live = append(live, n)
			if n.disk.syncing >= 0 {
				syncing = append(syncing, n)
			}
		}
	}
	if len(syncing) > 0 && s.rng.IntN(2) == 0 {
		live = syncing
	}
	if len(live) > 0 {
		n := live[s.rng.IntN(len(live))]
		n.crash()
		s.crashes++
		f := s.cfg.Faults
		back := min(s.sched.now+s.between(int64(f.DownMin), int64(f.DownMax)), s.faultsEnd)
		s.sched.at(back, func() {
			if s.err == nil {
				n.restart()
			}
		})
	}
	s.sched.after(s.jitter(int64(s.cfg.Faults.CrashEvery)), s.crashOne)
}

// partitionSome cuts a random non-empty proper subset of the nodes off
// from the rest, in both directions or one, and heals every cut later.
func (s *Simulator) partitionSome() {
	if !s.faulty() {
		return
	}
	f := s.cfg.Faults
	size := 1 + s.rng.IntN(len(s.all)-1)
	perm := s.rng.Perm(len(s.all))
	side := make([]uint32, size)
	for i := range side {
		side[i] = s.all[perm[i]]
	}
	oneWay := s.rng.Float64() < f.OneWay
	s.net.partition(side, s.all, oneWay)
	s.partitions++
	if s.trace != nil {
		s.tracef("PARTITION %v cut off (one-way %v)", side, oneWay)
	}
	s.sched.after(s.between(int64(f.PartitionMin), int64(f.PartitionMax)), func() {
		if s.faulty() {
			s.net.heal()
			s.tracef("HEAL")
		}
	})
	s.sched.after(s.jitter(int64(f.PartitionEvery)), s.partitionSome)
}

// stopFaults ends safety mode: the network turns reliable, partitions heal
// and every node that is down restarts.
func (s *Simulator) stopFaults() {
	s.tracef("FAULTS STOP: liveness mode")
	s.net.quiet()
	for _, n := range s.nodes {
		if s.err == nil {
			n.restart()
		}
	}
}

// noneRebuilding reports whether every node holds again what a damaged
// snapshot took from it. Damage strikes one node at a time: a value lost
// from a majority's disks is lost (§5.1 rebuilds one replica from the
// others, not a majority from nothing).
func (s *Simulator) noneRebuilding() bool {
	for _, n := range s.nodes {
		if n.damagedAt > 0 && (!n.up || n.applied < n.damagedAt) {
			return false
		}
		if n.wiped && (!n.up || !s.recorded(n)) {
			return false
		}
	}
	return true
}

// mayWipe reports whether n may lose its disk now: it is a voter, and the
// configuration the one log reached records the incarnation of every
// voter (one the group has not recorded yet cannot vote, and losing
// another would be two failures). With two voters, losing one's disk
// leaves no majority to replace it: a group of two survives no failure,
// a lost disk included.
func (s *Simulator) mayWipe(n *node) bool {
	cfg := s.check.configs[len(s.check.configs)-1]
	if m := paxos.MemberOf(cfg, n.id); m == nil || m.Role != paxos.VoterRole || len(paxos.MembershipVoters(cfg)) < 3 {
		return false
	}
	for _, id := range paxos.MembershipVoters(cfg) {
		if paxos.MemberOf(cfg, id).Incarnation != s.nodes[id-1].diskInc {
			return false
		}
	}
	return true
}

// recorded reports whether the configuration the one log reached records
// n's current incarnation, or does not count n as a voter at all.
func (s *Simulator) recorded(n *node) bool {
	cfg := s.check.configs[len(s.check.configs)-1]
	m := paxos.MemberOf(cfg, n.id)
	return m == nil || m.Role == paxos.LearnerRole || m.Incarnation == n.diskInc
}
