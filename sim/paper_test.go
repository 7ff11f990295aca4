package sim

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// Scenario tests named after the paper's sections. Each scripts one
// situation the paper describes and runs it on the real roles under the
// simulator, over many seeds, so the timing around the script varies:
// message delays reorder, fsyncs take their time, clocks drift. Every
// invariant of a random run is checked here too.

// scenarioSeeds is how many seeds each scenario runs.
const scenarioSeeds = 40

// quietConfig is a run without random faults: the scenario makes its own.
// Messages still take random time, so they reorder.
func quietConfig(seed uint64, nodes int) Config {
	c := DefaultConfig(seed)
	c.Nodes = nodes
	c.Faults = Faults{DelayMin: 100 * time.Microsecond, DelayMax: 3 * time.Millisecond}
	c.SafetyDuration = 0
	c.LivenessDuration = 30 * time.Second
	c.RecoveryBound = c.LivenessDuration // operations may take what they take
	return c
}

// scenario drives a simulator step by step.
type scenario struct {
	t *testing.T
	s *Simulator
	// noRegistrationWait: master() returns as soon as one master is
	// elected, before it records the voters' incarnations.
	noRegistrationWait bool
}

func newScenario(t *testing.T, cfg Config) *scenario {
	s := New(cfg)
	s.start()
	s.net.faulty = true // partitions apply; loss and long delays are zero
	return &scenario{t: t, s: s}
}

func (sc *scenario) run(d time.Duration) {
	sc.s.runUntil(sc.s.sched.now + int64(d))
	sc.ok()
}

func (sc *scenario) ok() {
	sc.t.Helper()
	if sc.s.err != nil {
		sc.t.Fatal(sc.s.err)
	}
}

// master runs until exactly one node is master and returns it.
func (sc *scenario) master() *node {
	sc.t.Helper()
	for range 100 {
		var m *node
		count := 0
		for _, n := range sc.s.nodes {
			if n.up && n.r().IsMaster() {
				m = n
				count++
			}
		}
		if count == 1 && (sc.noRegistrationWait || registered(sc.s, m)) {
			return m
		}
		sc.run(100 * time.Millisecond)
	}
	sc.t.Fatal("no master elected")
	return nil
}

// registered reports whether m's configuration records the incarnation of
// every voter that is up (§5.1): a new master does that first, and the
// scenarios start once it is done.
func registered(s *Simulator, m *node) bool {
	for _, mem := range m.r().FrontierMembers().Members {
		if mem.Role == paxos.VoterRole && mem.Incarnation == 0 && s.nodes[mem.Id-1].up {
			return false
		}
	}
	return m.r().InflightLen() == 0
}

// put has client c write key=value through node to.
func (sc *scenario) put(c int, to *node, key, value string) *op {
	cl := sc.s.clients[c]
	cl.master = to.id
	o := &op{kind: opPut, key: key, value: value}
	fmt.Sscanf(key, "k%d", &o.keyIdx)
	cl.begin(o, db.Put([]byte(key), []byte(value)))
	return o
}

// cut drops messages from a to b until healed.
func (sc *scenario) cut(a, b *node) { sc.s.net.cut[[2]uint32{a.id, b.id}] = true }

// others returns the nodes other than n, in id order.
func (sc *scenario) others(n *node) []*node {
	var out []*node
	for _, o := range sc.s.nodes {
		if o != n {
			out = append(out, o)
		}
	}
	return out
}

// lagging picks, by seed, a node other than the master m, and cuts it off
// while clients write: the replica that falls behind.
func (sc *scenario) lagging(seed uint64, m *node) *node {
	lag := sc.s.nodes[int(seed)%len(sc.s.nodes)]
	if lag == m {
		lag = sc.s.nodes[(int(seed)+1)%len(sc.s.nodes)]
	}
	sc.isolate(lag)
	sc.startClients()
	return lag
}

// awaitMaster runs until one of nodes that is up is master (at most 5 s)
// and returns it.
func (sc *scenario) awaitMaster(nodes []*node) *node {
	sc.t.Helper()
	for range 50 {
		sc.run(100 * time.Millisecond)
		for _, n := range nodes {
			if n.up && n.r().IsMaster() {
				return n
			}
		}
	}
	sc.t.Fatal("no master among the nodes")
	return nil
}

// isolate cuts every link between n and the other nodes, both ways.
func (sc *scenario) isolate(n *node) {
	for _, o := range sc.s.nodes {
		if o != n {
			sc.cut(o, n)
			sc.cut(n, o)
		}
	}
}

// startClients has every client start issuing operations.
func (sc *scenario) startClients() {
	for _, c := range sc.s.clients {
		c.start()
	}
}

// finish heals everything, lets the system settle and runs the end checks.
func (sc *scenario) finish() Result {
	sc.t.Helper()
	s := sc.s
	s.net.quiet()
	for _, n := range s.nodes {
		n.restart()
	}
	sc.run(5 * time.Second)
	r, err := s.finish()
	if err != nil {
		sc.t.Fatal(err)
	}
	// Progress: the log moved, and some operation took effect (a write
	// applied, or anything answered) if any was issued.
	took := 0
	for _, o := range s.history {
		if o.instance != 0 || o.status == opOK {
			took++
		}
	}
	if len(s.check.log) == 0 || (r.Ops > 0 && took == 0) {
		sc.t.Fatalf("no progress: %d instances applied, none of %d operations took effect", len(s.check.log), r.Ops)
	}
	return r
}

// §4: a value accepted by a majority before its master failed is chosen,
// though nobody knows it; the next master finds it in the promises and
// re-proposes it under its own ballot, never another value there.
func TestPaper4_ReproposalUnderSimulation(t *testing.T) {
	for seed := uint64(1); seed <= scenarioSeeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			cfg := quietConfig(seed, 3+2*int(seed%2))
			cfg.Clients, cfg.Keys = 1, 1
			sc := newScenario(t, cfg)
			m := sc.master()
			var others []*node
			for _, n := range sc.s.nodes {
				if n != m {
					others = append(others, n)
				}
			}
			sc.run(200 * time.Millisecond) // past the epoch's first instance
			// The accept reaches the others (a majority of them durably:
			// thrifty accepts), and no acknowledgement comes back: chosen,
			// and nobody knows.
			for _, n := range others {
				sc.cut(n, m)
			}
			o := sc.put(0, m, "k0", "before-failover")
			sc.run(100 * time.Millisecond)
			// The put is the newest instance chosen: nothing after it is
			// proposed while it waits for acknowledgements (not even an
			// idle lease renewal).
			instance := uint64(0)
			for i := range sc.s.check.chosen {
				instance = max(instance, i)
			}
			first, ok := sc.s.check.chosen[instance]
			if !ok {
				t.Fatalf("instance %d not chosen by a majority yet", instance)
			}
			for _, n := range others {
				if n.applied >= instance {
					t.Fatalf("%s applied instance %d before anyone could know it was chosen", n.name(), instance)
				}
			}
			m.crash()
			sc.s.net.heal()
			next := sc.master()
			sc.run(time.Second)
			// The new master re-proposed the same value under its ballot.
			reproposed := false
			for k, tl := range sc.s.check.tallies { // under its ballot, or a boosted one of its own
				if k.instance == instance && paxos.BallotOwner(k.ballot) == next.id {
					if tl.value != first {
						t.Fatalf("instance %d re-proposed with %s, chosen was %s", instance, describeKey(tl.value), describeKey(first))
					}
					reproposed = true
				}
			}
			if !reproposed {
				t.Fatalf("new master %s did not re-propose instance %d under ballot %s", next.name(), instance,
					fmtBallot(next.r().Ballot()))
			}
			for _, n := range others {
				if n.applied < instance || sc.s.check.log[instance-1] != first {
					t.Fatalf("%s applied up to %d; instance %d must hold the chosen value", n.name(), n.applied, instance)
				}
			}
			r := sc.finish()
			t.Logf("instance %d re-proposed by %s under %s; write %s; %v", instance, next.name(),
				fmtBallot(next.r().Ballot()), o, r)
			if o.status == opOK && o.instance != instance {
				t.Fatalf("the write was acknowledged at instance %d, chosen at %d", o.instance, instance)
			}
		})
	}
}

// §4: a replica cut off while the others go on catches up from its peers'
// logs on its own once it can hear them again, in bounded chunks, and one
// that crashed meanwhile catches up from what its disk kept.
func TestPaper4_CatchUpUnderSimulation(t *testing.T) {
	for seed := uint64(1); seed <= scenarioSeeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			cfg := quietConfig(seed, 3+2*int(seed%2))
			cfg.Learner.MaxCatchupEntries = 8 // many chunks
			sc := newScenario(t, cfg)
			lag := sc.lagging(seed, sc.master())
			sc.run(3 * time.Second)
			if seed%3 == 0 { // and it crashes while cut off
				lag.crash()
				sc.run(200 * time.Millisecond)
				lag.restart()
			}
			before := lag.applied
			sc.s.issueStop = sc.s.sched.now // the clients stop; the log stands still
			sc.run(2 * time.Second)
			upto := sc.master().r().ChosenUpto()
			if upto < before+3*8 {
				t.Fatalf("only %d instances chosen, %d applied by the lagging replica: too few to need chunks", upto, before)
			}
			sc.s.net.heal()
			// Catch-up runs on the learner's timers: a lagging replica asks
			// within CatchupInterval, then chunk after chunk at once.
			sc.run(3 * time.Second)
			if lag.applied < upto { // idle lease renewals (§5.2) go on adding instances
				t.Fatalf("%s applied %d of %d instances 3s after the partition healed", lag.name(), lag.applied, upto)
			}
			r := sc.finish()
			t.Logf("%s caught up %d instances after the partition healed; %v", lag.name(), upto-before, r)
		})
	}
}

// §4: values from many concurrent submitters go into one instance. With
// slow disks and a narrow pipeline the master's queue fills, and instances
// carry many commands; every operation still completes, in one order.
func TestPaper4_BatchingUnderSimulation(t *testing.T) {
	for seed := uint64(1); seed <= scenarioSeeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			cfg := quietConfig(seed, 3+2*int(seed%2))
			cfg.Clients, cfg.Keys = 24, 4
			cfg.ThinkMax = time.Millisecond
			cfg.FsyncMin, cfg.FsyncMax = 4*time.Millisecond, 8*time.Millisecond
			cfg.Proposer.MaxInflight = 2
			cfg.Proposer.MaxBatchCommands = 16
			sc := newScenario(t, cfg)
			sc.master()
			sc.startClients()
			sc.run(2 * time.Second)
			sc.s.issueStop = sc.s.sched.now
			r := sc.finish()
			commands, biggest := 0, 0
			for _, k := range sc.s.check.log {
				v := &messages.Value{}
				if err := proto.Unmarshal([]byte(k), v); err != nil {
					t.Fatal(err)
				}
				commands += len(v.Commands)
				biggest = max(biggest, len(v.Commands))
			}
			if biggest < 4 || commands < 2*len(sc.s.check.log) {
				t.Fatalf("%d commands in %d instances, at most %d in one: no batching", commands,
					len(sc.s.check.log), biggest)
			}
			if biggest > cfg.Proposer.MaxBatchCommands {
				t.Fatalf("an instance carries %d commands, bound %d", biggest, cfg.Proposer.MaxBatchCommands)
			}
			t.Logf("%d commands in %d instances, at most %d in one; %v", commands, len(sc.s.check.log), biggest, r)
			if r.OpsOK != r.Ops {
				t.Fatalf("%d of %d operations completed without faults", r.OpsOK, r.Ops)
			}
		})
	}
}
