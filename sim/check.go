package sim

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/core"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// tallyKey names one (instance, ballot) pair: in Paxos one ballot proposes
// at most one value per instance.
type tallyKey struct{ instance, ballot uint64 }

// tally lists the acceptors that durably accepted a value at one
// (instance, ballot), each as (node, incarnation): whether they make a
// majority depends on the configuration that governs the instance.
type tally struct {
	value   string
	entry   *messages.Entry
	voters  []voterID
	decided bool
}

// voterID is one incarnation of one node (§5.1).
type voterID struct {
	id  uint32
	inc uint64
}

// checker holds the invariants checked at every step (§6 "runtime
// consistency checks"). It sees the run from outside: the ground truth of
// what was chosen comes from the acceptors' durable records, not from what
// any learner believes.
type checker struct {
	// versionAt is the membership version after each membership command.
	versionAt map[uint64]uint64
	s         *Simulator
	// configs is the checker's own account of §5.4: the configuration
	// that governs each instance, from the one log: configs[k] governs
	// from configFrom[k] on. pending holds tallies of instances whose
	// configuration is not known yet (the log has not reached them).
	configs    []*messages.Membership
	configFrom []uint64
	pending    map[uint64][]tallyKey
	// tallies and chosen are the ground truth: a value is chosen at an
	// instance once a majority durably accepted it under one ballot.
	tallies map[tallyKey]*tally
	chosen  map[uint64]string
	// chosenBy is, per instance, the node whose ballot first got it chosen:
	// until that node applies it, it may still serve linearizable reads
	// that do not see it (see effectBound).
	chosenBy map[uint64]uint32
	// log is the one sequence every replica's applied sequence must be a
	// prefix of: log[i-1] is the value applied at instance i.
	log []string
	// Liveness: when operations must start completing.
	strictFrom int64
	// epochs[i-1] is the epoch in force at instance i of log, computed here
	// from the log itself: the checker's own account of §5.3.
	epochs []uint64
	// maxAcked is the highest instance of a write some replica has
	// acknowledged: every lease or quorum read must reflect it.
	maxAcked uint64
	// leases are, per node, the real-time intervals of the leases under
	// which it served lease reads (merged when they overlap).
	leases map[uint32][]interval
	// aheadOfChooser holds instances a replica applied before the one
	// whose ballot got them chosen did (a situation); applyCount counts
	// the replicas that applied each instance.
	aheadOfChooser map[uint64]uint32
	applyCount     map[uint64]int
	// LeaseReads and QuorumReads count the reads served, for the Result.
	leaseReads, quorumReads int
}

// interval is a span of true simulated time.
type interval struct{ from, to int64 }

func newChecker(s *Simulator) *checker {
	return &checker{s: s, configs: []*messages.Membership{s.initialMembership()}, configFrom: []uint64{1},
		pending: make(map[uint64][]tallyKey), tallies: make(map[tallyKey]*tally), chosen: make(map[uint64]string), leases: make(map[uint32][]interval),
		chosenBy: make(map[uint64]uint32), aheadOfChooser: make(map[uint64]uint32), applyCount: make(map[uint64]int)}
}

// valueKey is a value's identity: its deterministic encoding.
func valueKey(v *messages.Value) string {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// durablyAccepted records that n's acceptor made (instance, ballot, value)
// durable, and checks the two Paxos facts that follow: one ballot never
// carries two values for one instance, and at most one value is chosen per
// instance.
func (c *checker) durablyAccepted(n *node, e *messages.Entry) {
	k := tallyKey{e.Instance, e.Ballot}
	v := valueKey(e.Value)
	t := c.tallies[k]
	if t == nil {
		t = &tally{value: v, entry: e}
		c.tallies[k] = t
	}
	if t.value != v {
		c.s.fail(ErrSafety, ErrTwoValuesChosen,
			"instance %d ballot %s: %s accepted %s, another acceptor %s under the same ballot (ballot reused)",
			e.Instance, fmtBallot(e.Ballot), n.name(), describeValue(e.Value), describeKey(t.value))
		return
	}
	who := voterID{n.id, n.diskInc}
	if slices.Contains(t.voters, who) {
		return
	}
	t.voters = append(t.voters, who)
	c.judge(k)
}

// configAt returns the configuration that governs instance, if the log
// has reached it.
func (c *checker) configAt(instance uint64) (*messages.Membership, bool) {
	if instance > uint64(len(c.log))+1 {
		return nil, false
	}
	k, _ := slices.BinarySearch(c.configFrom, instance+1)
	return c.configs[k-1], true
}

// judge decides whether the tally k makes its value chosen: a majority of
// the voters of the instance's configuration, each counted only as the
// incarnation the configuration records (or any, where it records none).
// Written here from docs/membership.md, not shared with the roles, so a
// role that counts wrongly disagrees with it.
func (c *checker) judge(k tallyKey) {
	t := c.tallies[k]
	if t.decided {
		return
	}
	cfg, ok := c.configAt(k.instance)
	if !ok {
		c.pending[k.instance] = append(c.pending[k.instance], k)
		return
	}
	voters, count := 0, 0
	for _, m := range cfg.Members {
		if m.Role == paxos.LearnerRole {
			continue
		}
		voters++
		for _, w := range t.voters {
			if w.id == m.Id && (m.Incarnation == 0 || m.Incarnation == w.inc) {
				count++
				break
			}
		}
	}
	if count < voters/2+1 {
		return
	}
	t.decided = true
	e, v := t.entry, t.value
	if prev, ok := c.chosen[e.Instance]; ok && prev != v {
		c.s.fail(ErrSafety, ErrTwoValuesChosen, "instance %d: %s chosen under ballot %s, %s chosen before",
			e.Instance, describeValue(e.Value), fmtBallot(e.Ballot), describeKey(prev))
		return
	}
	c.chosen[e.Instance] = v
	c.chosenBy[e.Instance] = paxos.BallotOwner(e.Ballot)
	if c.s.trace != nil {
		c.s.tracef("CHOSEN instance %d ballot %s: %s", e.Instance, fmtBallot(e.Ballot), describeValue(e.Value))
	}
	if e.Instance <= uint64(len(c.log)) && c.log[e.Instance-1] != v {
		c.s.fail(ErrSafety, ErrLearnedNotChosen, "instance %d: replicas applied %s, but %s was chosen",
			e.Instance, describeKey(c.log[e.Instance-1]), describeValue(e.Value))
	}
}

// applied checks one entry a replica handed to its apply side: in order,
// each once, the same value every other replica applied there, the value
// the acceptors chose, and each command admitted or refused as the
// checker's own account of the epochs says.
func (c *checker) applied(n *node, a *core.Apply) {
	e := a.Entry
	if e.Instance != n.applied+1 {
		c.s.fail(ErrSafety, ErrAppliedOutOfOrder, "%s applied instance %d after instance %d",
			n.name(), e.Instance, n.applied)
		return
	}
	v := valueKey(e.Value)
	if ch, ok := c.chosen[e.Instance]; ok && ch != v {
		c.s.fail(ErrSafety, ErrLearnedNotChosen, "%s applied %s at instance %d, but %s was chosen",
			n.name(), describeValue(e.Value), e.Instance, describeKey(ch))
		return
	}
	switch {
	case e.Instance == uint64(len(c.log))+1:
		epoch := uint64(0)
		if len(c.epochs) > 0 {
			epoch = c.epochs[len(c.epochs)-1]
		}
		if e.Value.GetStartsEpoch() {
			epoch = e.Instance
		}
		if _, ok := c.chosen[e.Instance]; !ok {
			c.s.fail(ErrSafety, ErrLearnedNotChosen, "%s applied %s at instance %d; no majority of its configuration accepted it",
				n.name(), describeValue(e.Value), e.Instance)
			return
		}
		c.log = append(c.log, v)
		c.epochs = append(c.epochs, epoch)
		cur := c.configs[len(c.configs)-1]
		if next := expectConfig(cur, e.Value); next != cur {
			c.configs = append(c.configs, next)
			c.configFrom = append(c.configFrom, e.Instance+1)
		}
		for _, k := range c.pending[e.Instance+1] {
			c.judge(k)
		}
		delete(c.pending, e.Instance+1)
		c.firstApplied(e)
	case c.log[e.Instance-1] != v:
		c.s.fail(ErrSafety, ErrAppliedDiverged, "%s applied %s at instance %d, another replica %s",
			n.name(), describeValue(e.Value), e.Instance, describeKey(c.log[e.Instance-1]))
		return
	}
	if n.id == c.chosenBy[e.Instance] {
		c.effectBound(e)
		delete(c.aheadOfChooser, e.Instance)
	} else if _, ok := c.chosenBy[e.Instance]; ok && c.applyCount[e.Instance] == 0 {
		c.aheadOfChooser[e.Instance] = c.chosenBy[e.Instance]
	}
	c.applyCount[e.Instance]++
	for i, cmd := range e.Value.GetCommands() {
		if e.Value.GetNoop() {
			break
		}
		if want := c.admits(cmd, e.Instance); a.Commands[i].Admitted != want {
			c.s.fail(ErrSafety, ErrEpochIgnored, "%s: request %d of epoch %d at instance %d (epoch %d there): admitted %v",
				n.name(), cmd.RequestId, cmd.Epoch, e.Instance, c.epochs[e.Instance-1], !want)
			return
		}
	}
}

// admits is the checker's verdict on a command at instance: it applies
// only in the epoch it was proposed in.
func (c *checker) admits(cmd *messages.Command, instance uint64) bool {
	return cmd.Epoch == 0 || cmd.Epoch == c.epochs[instance-1]
}

// installed checks a snapshot install: the snapshot is of a prefix of the
// one log (instances the replicas applied), past what n applied. The state
// itself is compared at the end of the run (every replica's database hash).
func (c *checker) installed(n *node, instance uint64) {
	if instance > uint64(len(c.log)) {
		c.s.fail(ErrSafety, ErrRestore, "%s installs a snapshot at %d; no replica applied past %d",
			n.name(), instance, len(c.log))
	}
}

// acked notes that a replica acknowledged a write applied at instance.
func (c *checker) acked(instance uint64) { c.maxAcked = max(c.maxAcked, instance) }

// servedRead checks a lease or quorum read as n serves it: its state must
// hold every acknowledged write, and a lease read's lease (until, on n's
// clock) must not overlap in real time with a lease another replica served
// reads under.
func (c *checker) servedRead(n *node, lease bool, until time.Time) {
	if n.applied < c.maxAcked {
		c.s.fail(ErrSafety, ErrStaleRead, "%s served a %s read at applied %d; instance %d was acknowledged",
			n.name(), map[bool]string{true: "lease", false: "quorum"}[lease], n.applied, c.maxAcked)
		return
	}
	if !lease {
		c.quorumReads++
		return
	}
	c.leaseReads++
	for _, chooser := range c.aheadOfChooser {
		if chooser == n.id {
			c.s.situation(sitReadBeforeChooserApplied)
			break
		}
	}
	pc := c.s.cfg.Proposer
	iv := interval{from: n.clock.trueTime(until.Add(-(pc.LeaseTimeout - pc.ClockDriftMax))), to: n.clock.trueTime(until)}
	for id, ivs := range c.leases {
		if id == n.id {
			continue
		}
		for _, o := range ivs {
			if iv.from < o.to && o.from < iv.to {
				c.s.fail(ErrSafety, ErrLeaseOverlap, "%s serves a lease read under a lease for [%s, %s]; %s served under [%s, %s]",
					n.name(), fmtDur(iv.from), fmtDur(iv.to), endpointName(id), fmtDur(o.from), fmtDur(o.to))
				return
			}
		}
	}
	ivs := c.leases[n.id]
	if k := len(ivs) - 1; k >= 0 && iv.from <= ivs[k].to {
		ivs[k].to = max(ivs[k].to, iv.to)
		ivs[k].from = min(ivs[k].from, iv.from)
	} else {
		ivs = append(ivs, iv)
	}
	c.leases[n.id] = ivs
}

// leaseGivenUp: n, master until now, handed mastership over after it
// stopped serving reads on its lease (paxos/handover.go), and the
// acceptors may release the lease early: its lease intervals end now, not
// when the lease would have run out. A read it served later would open a
// new interval, still checked against every other replica's.
func (c *checker) leaseGivenUp(n *node) {
	now := c.s.sched.now
	ivs := c.leases[n.id]
	for i := range ivs {
		ivs[i].to = min(ivs[i].to, now)
	}
}

// firstApplied follows the client writes of an entry the log just grew by:
// each must be in the log once (a write is not retried once it may have
// been proposed), and the time it first took effect bounds the operation
// if its client never heard the outcome.
func (c *checker) firstApplied(e *messages.Entry) {
	for _, cmd := range e.Value.GetCommands() {
		o := c.s.reqOps[cmd.RequestId]
		if o == nil || o.kind == opGet || !c.admits(cmd, e.Instance) {
			continue
		}
		if o.instance != 0 {
			c.s.fail(ErrSafety, ErrAppliedTwice, "op #%d applied at instances %d and %d: %s",
				o.id, o.instance, e.Instance, o)
			return
		}
		o.instance = e.Instance
		c.s.wrote()
	}
}

// effectBound records, for the client writes of entry e, the latest moment
// they can have taken effect: when the node whose ballot chose them applied
// them. Any other node that serves a linearizable read afterwards became
// master by a phase 1 that found them, so it applied them first; only that
// node, still master, could answer reads without them until then. (The
// first apply anywhere is too early a bound: a follower may apply an
// instance before the master, which meanwhile serves lease reads.)
func (c *checker) effectBound(e *messages.Entry) {
	for _, cmd := range e.Value.GetCommands() {
		if o := c.s.reqOps[cmd.RequestId]; o != nil && o.instance == e.Instance && o.appliedAt == 0 {
			o.appliedAt = c.s.sched.now
		}
	}
}

// bounded checks a peer message as it leaves: a Promise's or an Accept's
// entries fit their byte budget, or are one entry alone.
func (c *checker) bounded(n *node, msg proto.Message) {
	var es []*messages.Entry
	var budget int
	switch m := msg.(type) {
	case *messages.Promise:
		es, budget = m.Accepted, cmp.Or(c.s.cfg.MaxPromiseBytes, paxos.DefaultMaxPromiseBytes)
		if m.AcceptedUpto != 0 {
			c.s.promisePages++
		}
	case *messages.Accept:
		es, budget = m.Entries, cmp.Or(c.s.cfg.Proposer.MaxAcceptBytes, paxos.DefaultMaxAcceptBytes)
	}
	if len(es) < 2 {
		return
	}
	size := 0
	for _, e := range es {
		size += proto.Size(e)
	}
	if size > budget {
		c.s.fail(ErrSafety, ErrMessageTooLarge, "%s sends a %s of %d entries, %d bytes of them, budget %d",
			n.name(), proto.MessageName(msg).Name(), len(es), size, budget)
	}
}

// decided checks an acceptor's answer when it is made: an ok promise or
// acceptance for ballot b is a contradiction if the acceptor's durable
// state already promised more than b (its memory fell behind its disk).
func (c *checker) decided(n *node, reply *paxos.Envelope) {
	if reply == nil || c.s.cfg.NoContractCheck {
		return
	}
	var ok bool
	var ballot uint64
	var what string
	switch m := reply.Msg.(type) {
	case *messages.Promise:
		ok, ballot, what = m.Ok, m.Ballot, "promises ballot"
	case *messages.Accepted:
		ok, ballot, what = m.Ok, m.Ballot, "accepts under ballot"
	}
	if ok && ballot < n.durablePromised {
		c.s.fail(ErrSafety, ErrDurableContradiction, "%s %s %s but durably promised %s",
			n.name(), what, fmtBallot(ballot), fmtBallot(n.durablePromised))
	}
}

// released checks an acceptor's answer as it leaves: what it promises or
// acknowledges must be on the disk (the persist-before-send contract).
func (c *checker) released(n *node, reply *paxos.Envelope) {
	if c.s.cfg.NoContractCheck {
		return
	}
	switch m := reply.Msg.(type) {
	case *messages.Promise:
		if m.Ok && n.durablePromised < m.Ballot {
			c.s.fail(ErrSafety, ErrDurableContradiction, "%s sends a promise for ballot %s while its disk holds %s",
				n.name(), fmtBallot(m.Ballot), fmtBallot(n.durablePromised))
		}
	case *messages.Accepted:
		if !m.Ok {
			return
		}
		for _, i := range m.Instances {
			if n.durableAccepted[i] < m.Ballot {
				c.s.fail(ErrSafety, ErrDurableContradiction,
					"%s acknowledges instance %d under ballot %s while its disk holds ballot %s there",
					n.name(), i, fmtBallot(m.Ballot), fmtBallot(n.durableAccepted[i]))
				return
			}
		}
	}
}

// opDone checks liveness for one finished operation: once the system had
// RecoveryBound to recover from the last fault, every operation must
// succeed within OpBound.
func (c *checker) opDone(o *op) {
	if o.call < c.strictFrom || c.s.exempt(o.call) {
		return
	}
	switch {
	case o.status != opOK:
		c.s.fail(ErrLiveness, ErrOpTooSlow, "op #%d issued %s after the faults stopped lost its answer: %s",
			o.id, fmtDur(o.call-c.s.faultsEnd), o)
	case o.ret-o.call > int64(c.s.cfg.OpBound):
		c.s.fail(ErrLiveness, ErrOpTooSlow, "op #%d took %s (bound %s): %s", o.id, fmtDur(o.ret-o.call), c.s.cfg.OpBound, o)
	}
}

// final checks the end state of liveness mode: no operation left pending,
// exactly one master with nothing in flight, every replica caught up to it,
// and every replica's database equal.
func (c *checker) final() {
	s := c.s
	for _, o := range s.history {
		if o.status == opPending {
			s.fail(ErrLiveness, ErrOpTooSlow, "op #%d never completed: %s", o.id, o)
			return
		}
	}
	var master *node
	for _, n := range s.nodes {
		if !n.up {
			s.fail(ErrLiveness, ErrNotConverged, "%s is down at the end", n.name())
			return
		}
		if n.r().IsMaster() {
			if master != nil {
				s.fail(ErrLiveness, ErrNotConverged, "%s and %s are both master at the end", master.name(), n.name())
				return
			}
			master = n
		}
	}
	if master == nil {
		s.fail(ErrLiveness, ErrNotConverged, "no master at the end")
		return
	}
	if master.r().InflightLen() > 0 || master.r().QueueLen() > 0 {
		s.fail(ErrLiveness, ErrNotConverged, "master %s still has %d instances in flight and %d commands queued",
			master.name(), master.r().InflightLen(), master.r().QueueLen())
		return
	}
	if n := len(c.epochs); n > 0 && master.r().MasterEpoch() != c.epochs[n-1] {
		s.fail(ErrLiveness, ErrNotConverged, "master %s works in epoch %d, the log is in epoch %d: its commands would all be refused",
			master.name(), master.r().MasterEpoch(), c.epochs[n-1])
		return
	}
	upto := master.r().ChosenUpto()
	for _, n := range s.nodes {
		if n.applied != upto {
			s.fail(ErrLiveness, ErrNotConverged, "%s applied up to %d, master %s chose up to %d",
				n.name(), n.applied, master.name(), upto)
			return
		}
	}
	h := master.kv.Hash()
	for _, n := range s.nodes {
		if n.kv.Hash() != h {
			s.fail(ErrSafety, ErrStateDiverged, "%s and %s applied up to %d but hold different databases",
				n.name(), master.name(), upto)
			return
		}
	}
}

func fmtDur(d int64) string { return fmt.Sprint(timeDuration(d)) }

// membership checks that every replica holds the same membership version
// after applying a membership command at instance (§5.4).
func (c *checker) membership(n *node, instance, version uint64) {
	if c.versionAt == nil {
		c.versionAt = make(map[uint64]uint64)
	}
	if v, ok := c.versionAt[instance]; ok && v != version {
		c.s.fail(ErrSafety, ErrMembershipDiverged, "%s holds membership v%d after instance %d, another replica v%d",
			n.name(), version, instance, v)
		return
	}
	c.versionAt[instance] = version
}
