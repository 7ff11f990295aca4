package sim

import (
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// Result summarizes one run.
type Result struct {
	Seed       uint64
	Nodes      int
	Steps      int
	SimTime    time.Duration
	Ops        int // operations issued
	OpsOK      int
	OpsUnknown int
	Chosen     int // instances applied by the replicas
	Crashes    int
	// LostRecords counts records that crashes took before they were
	// synced.
	LostRecords int
	Partitions  int
	Messages    int
	Lost        int
	// Reads served by a master's lease, and after a quorum confirmed it.
	LeaseReads, QuorumReads int
	Snapshots               int // snapshots committed
	Installs                int // snapshots installed from a peer
	Truncations             int // log checkpoints made durable (older records deleted)
	TransfersCut            int // snapshot transfers given up mid-way (provider crashed, quiet or moved on)
	Checksums               int // runtime consistency checksums computed (§6.2)
	MembershipOps           int // membership changes the operator asked for (§5.4)
	Wipes                   int // disks lost or found corrupt (§5.1)
	BitFlips                int // of those, corrupt log records
	VoterChanges            int // of the membership changes, promotions and demotions
	Handovers               int // masterships handed over (Faults.TransferEvery)
	// PromisePages counts Promises that stopped at their byte budget
	// (Promise.accepted_upto): a candidate had to ask for more.
	PromisePages int
	// Cut is the shape of the partial partition liveness mode played,
	// and CutMaxGap the longest it went without a client write chosen.
	Cut       CutShape
	CutMaxGap time.Duration
	// Situations counts the moments past bugs needed that the run reached
	// (observe.go).
	Situations map[string]int
}

func (r Result) String() string {
	return fmt.Sprintf("seed %d: %d nodes, %d steps, %s simulated, %d ops (%d ok, %d unknown), %d instances, "+
		"%d crashes (%d unsynced records lost), %d partitions, %d messages (%d lost), %d lease reads, %d quorum reads, "+
		"%d snapshots (%d installed, %d transfers cut, %d truncations), %d checksums, %d membership changes asked, %d disks lost (%d of them a corrupt record)", r.Seed, r.Nodes, r.Steps, r.SimTime, r.Ops, r.OpsOK, r.OpsUnknown, r.Chosen, r.Crashes, r.LostRecords,
		r.Partitions, r.Messages, r.Lost, r.LeaseReads, r.QuorumReads, r.Snapshots, r.Installs, r.TransfersCut, r.Truncations, r.Checksums, r.MembershipOps, r.Wipes, r.BitFlips)
}

// Simulator runs one seeded run. It is single-threaded and not reusable:
// make a new one per run.
type Simulator struct {
	cfg   Config
	rng   *rand.Rand
	sched scheduler
	net   *network
	ids   []uint32 // the voters
	// learners are the non-voting members; all is voters then learners.
	learners, all []uint32
	nodes         []*node
	clients       []*client
	sessClients   []*sessClient
	locks         *lockChecker
	watchers      []*watcher
	watchStats    watchStats
	history       []*op
	lockHistory   []*lockOp // the session clients' lock operations and the log's expiries
	check         *checker
	trace         io.Writer

	steps  int
	budget int
	reqSeq uint64
	// reqOps maps every request id a client sent to its operation, so the
	// checker can follow commands into the log. Only looked up.
	reqOps      map[uint64]*op
	crashes     int
	lostRecords int
	partitions  int
	snapshots   int
	installs    int
	truncations int
	// promisePages: Promises sent that stopped at their budget.
	promisePages int
	// membershipOps counts membership changes the operator asked for.
	membershipOps int
	wipes         int
	voterChanges  int // promotions and demotions asked
	bitFlips      int // of the wipes, those that were a corrupt log record
	// checksums counts checksums computed at checksum values (§6.2).
	checksums int
	// transfersCut counts snapshot transfers given up mid-way.
	transfersCut int
	// handovers counts masterships handed over (transferOne).
	handovers int
	// damagedSnapshots counts snapshot files a crash left unreadable.
	damagedSnapshots int
	situations       map[string]int
	// cut is the partial partition of liveness mode in progress, if any
	// (liveness.go).
	cut *cutEpisode
	// cutMaxGap is the longest the cut went without a client write.
	cutMaxGap int64
	// faultsEnd ends safety mode; issueStop is when clients stop issuing;
	// end ends the run.
	faultsEnd, issueStop, end int64
	err                       error
}

// New returns a simulator for cfg.
func New(cfg Config) *Simulator {
	s := &Simulator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed)), trace: cfg.Trace,
		reqOps: make(map[uint64]*op)}
	for i := 1; i <= cfg.Nodes; i++ {
		s.ids = append(s.ids, uint32(i))
	}
	for i := cfg.Nodes + 1; i <= cfg.Nodes+cfg.Learners; i++ {
		s.learners = append(s.learners, uint32(i))
	}
	s.all = append(append([]uint32{}, s.ids...), s.learners...)
	s.faultsEnd = int64(cfg.SafetyDuration)
	s.end = s.faultsEnd + int64(cfg.LivenessDuration)
	if cfg.Cut != CutNone {
		s.end += int64(cfg.CutDuration) // the cut comes on top of the recovery and the drain
	}
	s.issueStop = s.end - int64(cfg.DrainTime)
	s.net = newNetwork(s)
	s.check = newChecker(s)
	s.locks = newLockChecker(s)
	if s.cfg.SessionTTL == 0 {
		s.cfg.SessionTTL = 1500 * time.Millisecond
	}
	if s.cfg.LockDelay == 0 {
		s.cfg.LockDelay = 500 * time.Millisecond
	}
	s.check.strictFrom = s.faultsEnd + int64(cfg.RecoveryBound)
	return s
}

// Run runs the simulation to its end or its first violation. The error
// wraps ErrSafety or ErrLiveness and the specific sentinel.
func Run(cfg Config) (Result, error) { return New(cfg).Run() }

// Run runs the simulation. See the package comment for the two modes.
func (s *Simulator) Run() (Result, error) {
	s.start()
	for _, c := range s.sessClients {
		c.start()
	}
	for _, w := range s.watchers {
		w.start()
	}
	for _, c := range s.clients {
		c.start()
	}
	s.startFaults()
	s.sched.at(s.faultsEnd, s.stopFaults)
	s.scheduleCut()
	if len(s.learners) > 0 {
		s.sched.after(int64(500*time.Millisecond), s.operate)
	}
	s.runUntil(s.end)
	return s.finish()
}

// start boots the nodes and makes the clients; nothing runs yet.
func (s *Simulator) start() {
	s.tracef("START seed %d: %d nodes, %d clients, %d keys, faults %+v", s.cfg.Seed, s.cfg.Nodes,
		s.cfg.Clients, s.cfg.Keys, s.cfg.Faults)
	for _, id := range s.all {
		n := newNode(s, id)
		s.nodes = append(s.nodes, n)
		n.boot(nil)
	}
	for i := range s.cfg.Clients {
		s.clients = append(s.clients, newClient(s, i))
	}
	for i := range s.cfg.Sessions {
		s.sessClients = append(s.sessClients, newSessClient(s, i))
	}
	for i := range s.cfg.Watchers {
		s.watchers = append(s.watchers, newWatcher(s, i))
	}
	s.budget = int(time.Duration(s.end).Seconds()*maxStepsPerSimSecond) + 1
}

// runUntil runs every event up to simulated time t, or to the first
// violation.
func (s *Simulator) runUntil(t int64) {
	for s.err == nil {
		at, ok := s.sched.peek()
		if !ok || at > t {
			break
		}
		e, _ := s.sched.next()
		s.steps++
		if s.steps > s.budget {
			s.fail(ErrLiveness, ErrStepBudget, "more than %d steps", s.budget)
			break
		}
		e.fn()
	}
	if s.err == nil && s.sched.now < t {
		s.sched.now = t
	}
}

// finish runs the end-of-run checks: convergence, then linearizability.
func (s *Simulator) finish() (Result, error) {
	if s.err == nil {
		s.settle()
		s.check.final()
	}
	if s.err == nil {
		s.checkWatchers()
	}
	if s.err == nil && !s.cfg.NoLinearizability {
		if err := checkLinearizable(s.history, s.cfg.Keys); err != nil {
			s.err = fmt.Errorf("seed %d: %w", s.cfg.Seed, err)
		}
	}
	if s.err == nil && !s.cfg.NoLinearizability && len(s.lockHistory) > 0 {
		if err := checkLocksLinearizable(s.lockHistory); err != nil {
			s.err = fmt.Errorf("seed %d: %w", s.cfg.Seed, err)
		}
	}
	return s.result(), s.err
}

func (s *Simulator) result() Result {
	r := Result{Seed: s.cfg.Seed, Nodes: s.cfg.Nodes, Steps: s.steps, SimTime: time.Duration(s.sched.now),
		Ops: len(s.history), Chosen: len(s.check.log), Crashes: s.crashes, LostRecords: s.lostRecords, Partitions: s.partitions,
		Messages: s.net.sent, Lost: s.net.lost, LeaseReads: s.check.leaseReads, QuorumReads: s.check.quorumReads,
		Snapshots: s.snapshots, Installs: s.installs, Truncations: s.truncations, PromisePages: s.promisePages, TransfersCut: s.transfersCut, Checksums: s.checksums, MembershipOps: s.membershipOps, Wipes: s.wipes, BitFlips: s.bitFlips, VoterChanges: s.voterChanges,
		Handovers: s.handovers, Situations: s.situations, Cut: s.cfg.Cut, CutMaxGap: time.Duration(s.cutMaxGap)}
	for _, o := range s.history {
		switch o.status {
		case opOK:
			r.OpsOK++
		case opUnknown:
			r.OpsUnknown++
		}
	}
	return r
}

// fail stops the run with its first violation.
func (s *Simulator) fail(kind, specific error, format string, args ...any) {
	if s.err != nil {
		return
	}
	s.err = fmt.Errorf("seed %d step %d at %s: %w: %w: %s", s.cfg.Seed, s.steps, time.Duration(s.sched.now),
		kind, specific, fmt.Sprintf(format, args...))
	s.tracef("VIOLATION %v", s.err)
}

// deliver hands a message that arrived to its endpoint.
func (s *Simulator) deliver(from, to uint32, msg any) {
	if s.err != nil {
		return
	}
	if to >= watcherBase {
		s.watchers[to-watcherBase].receive(msg)
		return
	}
	if to >= sessionBase {
		s.sessClients[to-sessionBase].receive(from, msg)
		return
	}
	if to >= clientBase {
		c := s.clients[to-clientBase]
		if s.trace != nil {
			s.tracef("%s <- %s %s", c.name(), endpointName(from), describe(msg))
		}
		c.receive(from, msg)
		return
	}
	n := s.nodes[to-1]
	if !n.up {
		if req, ok := msg.(*clientRequest); ok {
			s.net.send(to, req.client, &deadLetter{reqID: req.reqID})
		}
		return
	}
	if s.trace != nil {
		s.tracef("%s <- %s %s", n.name(), endpointName(from), describe(msg))
	}
	n.receive(from, msg)
}

// settleBound bounds how long the end of a run may wait for an idle
// master's lease renewal (a heartbeat instance, §5.2) or checksum value to
// be chosen and applied everywhere before convergence is checked. A learner
// hears of the last one from a Chosen notice, resent every heartbeat: the
// bound covers a few lost in a row (seed 89778 lost one at 200 ms).
const settleBound = 500 * time.Millisecond

// settle runs on, a little at a time, until the master has nothing in
// flight and every replica applied what it chose, or settleBound passed.
func (s *Simulator) settle() {
	start := s.sched.now
	for end := s.sched.now + int64(settleBound); s.err == nil && s.sched.now < end && !s.quiet(); {
		s.runUntil(s.sched.now + int64(5*time.Millisecond))
	}
	if s.sched.now-start > int64(200*time.Millisecond) {
		s.situation(sitLongSettle)
	}
}

// quiet reports whether exactly one master is idle and every node applied
// everything it chose.
func (s *Simulator) quiet() bool {
	var master *node
	for _, n := range s.nodes {
		if n.up && n.r().IsMaster() {
			master = n
		}
	}
	if master == nil || master.r().InflightLen() > 0 {
		return false
	}
	for _, n := range s.nodes {
		if !n.up || n.applied != master.r().ChosenUpto() {
			return false
		}
	}
	return true
}
