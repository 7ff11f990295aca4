package sim

import (
	"io"
	"math/rand/v2"
	"time"

	"github.com/livepaxos/livepaxos/paxos"
	"github.com/livepaxos/livepaxos/session"
)

// Named bounds. Units are at the end of names.
const (
	// TickInterval is how often a node's role timers fire, in its own
	// (drifting) time: the actors' default.
	TickInterval = 20 * time.Millisecond
	// flushDelay is how long a proposer's flush waits after a submit: the
	// actor flushes once its mailbox has drained, which lets commands that
	// arrive together share an instance (§4 batching).
	flushDelay = 200 * time.Microsecond
	// maxStepsPerSimSecond bounds the work per simulated second; a run that
	// exceeds it is a livelock (ErrStepBudget).
	maxStepsPerSimSecond = 200_000
)

// Faults sets the fault rates of safety mode. Liveness mode turns them all
// off.
type Faults struct {
	Drop      float64 // probability a message is lost
	Duplicate float64 // probability a message is delivered twice
	// Every message is delayed uniformly in [DelayMin, DelayMax), which
	// reorders messages; LongDelay of them are held up to LongDelayMax,
	// long enough to arrive from an older ballot.
	DelayMin, DelayMax time.Duration
	LongDelay          float64
	LongDelayMax       time.Duration
	// A node crashes on average every CrashEvery (0: never) and stays down
	// for a time in [DownMin, DownMax).
	CrashEvery       time.Duration
	DownMin, DownMax time.Duration
	// TornWrites: a crash keeps a random prefix of the unsynced records (the
	// page cache may have written some), never a later record without the
	// earlier ones; otherwise exactly the synced records survive.
	TornWrites bool
	// Wipes: once in a run, a crash loses the whole disk (§5.1) of a voter
	// whose incarnation the configuration records, in a group of three
	// voters or more. Once only, and not in a run that damaged a snapshot
	// (nor one after): a second loss of state before every replica has
	// applied past the first one's replacement is two failures for the
	// instances in between (docs/membership.md).
	Wipes bool
	// A partition forms on average every PartitionEvery (0: never) and
	// heals after a time in [PartitionMin, PartitionMax). OneWay of them
	// cut only one direction.
	PartitionEvery             time.Duration
	PartitionMin, PartitionMax time.Duration
	OneWay                     float64
	// A master hands mastership over (paxos/handover.go) on average every
	// TransferEvery (0: never), to a random voter or the most caught-up.
	TransferEvery time.Duration
}

// Config describes one run. ConfigForSeed derives a varied one from a seed.
type Config struct {
	// Sessions is the number of session clients (sessions.go): 0 runs
	// none, and leaves every other seed's run as it was. SessionTTL and
	// LockDelay are theirs (defaults 1.5 s and 500 ms).
	Sessions   int
	SessionTTL time.Duration
	LockDelay  time.Duration
	// SessionPlanted and PlantedNoLockDelay plant the lock service's bugs
	// (tests only).
	SessionPlanted     session.Planted
	PlantedNoLockDelay bool
	// Watchers is the number of watchers (watchers.go); 0 leaves every
	// other seed's run as it was. PlantedWatchResumeLate plants a resume
	// one instance late in their cursors (tests only).
	Watchers               int
	PlantedWatchResumeLate bool

	Seed    uint64
	Nodes   int // voters: 3 or 5
	Clients int
	Keys    int
	// SafetyDuration of faults, then LivenessDuration without them.
	SafetyDuration   time.Duration
	LivenessDuration time.Duration
	// RecoveryBound: in liveness mode, operations issued this long after
	// the faults stopped must succeed, each within OpBound.
	RecoveryBound time.Duration
	OpBound       time.Duration
	// DrainTime: clients issue nothing new in the last DrainTime of a run,
	// so every operation can finish and the replicas converge.
	DrainTime time.Duration
	Faults    Faults
	// FsyncMin/FsyncMax bound one simulated group-commit fsync.
	FsyncMin, FsyncMax time.Duration
	// MaxDriftPPM bounds each node's clock rate error, in parts per million.
	MaxDriftPPM int64
	// AttemptTimeout bounds one client request to one node.
	AttemptTimeout time.Duration
	// ThinkMax bounds the pause between a client's operations.
	ThinkMax time.Duration
	// Proposer and Learner are templates; ID, Peers and Rand are filled in.
	Proposer paxos.ProposerConfig
	Learner  paxos.LearnerConfig
	// Trace, if set, receives one line per step.
	Trace io.Writer
	// NoContractCheck turns off the persist-before-send check, so a test
	// can show that breaking the contract is also caught by what it leads
	// to (a lost promise, two values chosen), not only by the check itself.
	NoContractCheck bool
	// NoLinearizability skips the porcupine check (the invariants still
	// run at every step).
	NoLinearizability bool
	// SnapshotEvery is the replicas' snapshot policy: a snapshot once this
	// many instances were applied since the last one (0: never on this
	// account; core.Config.SnapshotEvery). SnapshotAsk is how often, on
	// average, an operator asks each node for a snapshot (0: never). A
	// restart recovers from the newest snapshot and the log after it
	// (§5.5).
	SnapshotEvery int64
	SnapshotAsk   time.Duration
	// RestartGrace is how long a replica that restarts with history holds
	// its first campaign (core.Config.RestartGrace).
	RestartGrace time.Duration
	// Learners is how many non-voting members run beside the Nodes voters
	// (ids Nodes+1...): they get the log and never vote (§5.4).
	Learners int
	// Planted is a known bug the replicas run with (divergent-apply: n2
	// only).
	Planted paxos.PlantedBug
	// MaxPromiseBytes is the replicas' promise page budget
	// (core.Config.MaxPromiseBytes; 0: the default, which no run here
	// comes near). Tiny budgets have promises come in pages routinely,
	// and Proposer.MaxAcceptBytes likewise splits Accepts.
	MaxPromiseBytes int
	// Cut is the partial partition liveness mode plays once the group has
	// recovered, for CutDuration (which lengthens the run by as much):
	// while it lasts, a client write must be chosen at least every
	// ProgressBound (liveness.go).
	Cut           CutShape
	CutDuration   time.Duration
	ProgressBound time.Duration
}

// DefaultConfig is a moderate run: three nodes, faults at a steady rate.
func DefaultConfig(seed uint64) Config {
	return Config{
		Seed:             seed,
		Nodes:            3,
		Clients:          4,
		Keys:             3,
		SafetyDuration:   6 * time.Second,
		LivenessDuration: 9 * time.Second,
		RecoveryBound:    3 * time.Second,
		OpBound:          2 * time.Second,
		DrainTime:        2500 * time.Millisecond,
		Faults: Faults{
			Drop: 0.05, Duplicate: 0.03,
			DelayMin: 100 * time.Microsecond, DelayMax: 3 * time.Millisecond,
			LongDelay: 0.02, LongDelayMax: 1500 * time.Millisecond,
			CrashEvery: 1500 * time.Millisecond, DownMin: 50 * time.Millisecond, DownMax: 2 * time.Second,
			TornWrites:     true,
			PartitionEvery: 2 * time.Second, PartitionMin: 100 * time.Millisecond, PartitionMax: 2 * time.Second,
			OneWay: 0.3,
		},
		RestartGrace: 300 * time.Millisecond,
		// Four lease timeouts of cut; a write at least every three
		// (a lease to step down or run out, then an election).
		CutDuration:    4 * time.Second,
		ProgressBound:  3 * time.Second,
		FsyncMin:       100 * time.Microsecond,
		FsyncMax:       3 * time.Millisecond,
		MaxDriftPPM:    20_000, // 2%: far worse than real quartz, so drift bugs show
		AttemptTimeout: time.Second,
		ThinkMax:       30 * time.Millisecond,
		// A 1 s lease keeps fail-overs inside the runs' recovery bound. The
		// drift margin covers MaxDriftPPM: two clocks 2% fast and 2% slow
		// disagree by about 41 ms over one lease.
		Proposer: paxos.ProposerConfig{LeaseTimeout: time.Second, ClockDriftMax: 50 * time.Millisecond,
			CheckInterval: 700 * time.Millisecond},
	}
}

// ConfigForSeed derives a run's shape from its seed alone, so a seed is a
// complete bug report: the group size, load and fault rates vary from seed
// to seed, which covers calm runs and storms with one budget.
func ConfigForSeed(seed uint64) Config {
	c := DefaultConfig(seed)
	r := rand.New(rand.NewPCG(seed, 0xc0f1))
	if r.IntN(2) == 1 {
		c.Nodes = 5
	}
	c.Clients = 2 + r.IntN(5)
	c.Keys = 1 + r.IntN(4)
	f := &c.Faults
	f.Drop = []float64{0, 0.02, 0.1, 0.25}[r.IntN(4)]
	f.Duplicate = []float64{0, 0.03, 0.1}[r.IntN(3)]
	f.LongDelay = []float64{0, 0.02, 0.1}[r.IntN(3)]
	f.CrashEvery = []time.Duration{0, 3 * time.Second, 1 * time.Second, 300 * time.Millisecond, 100 * time.Millisecond}[r.IntN(5)]
	if r.IntN(2) == 0 { // short outages: nodes bounce while work goes on
		f.DownMin, f.DownMax = 10*time.Millisecond, 150*time.Millisecond
	}
	f.PartitionEvery = []time.Duration{0, 2 * time.Second, 500 * time.Millisecond}[r.IntN(3)]
	f.TornWrites = r.IntN(2) == 0
	if r.IntN(4) == 0 { // slow disks: group commit batches more
		c.FsyncMax = 30 * time.Millisecond
	}
	c.SnapshotAsk = []time.Duration{0, 2 * time.Second, 500 * time.Millisecond}[r.IntN(3)]
	c.SnapshotEvery = []int64{0, 0, 60, 200}[r.IntN(4)]
	if r.IntN(4) == 0 {
		// Membership changes run (the operator), and disks are lost.
		c.Learners = 1 + r.IntN(2)
		c.Faults.Wipes = c.Faults.CrashEvery > 0
	}
	c.Cut = CutShape(r.IntN(int(cutShapes)))
	if r.IntN(3) == 0 {
		// Phase 1 in pages and Accepts in chunks: one entry each (a page
		// always holds one), a few, a dozen or so.
		budget := []int{1, 300, 2000}[r.IntN(3)]
		c.MaxPromiseBytes, c.Proposer.MaxAcceptBytes = budget, budget
	}
	return c
}
