package sim

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/messages"
)

// Real bugs the simulator found, kept as regression tests: seeds whose
// runs reach the moment the bug needed, and scripted versions that do not
// depend on how seeds map to runs.
//
// A seed is only a seed: any change to the code or the workload maps it to
// another run, which may no longer reach the moment. So each seed names
// its situation (observe.go), and the test fails unless the run reached
// it: a seed that stopped testing its bug says so instead of passing.
// TestFindSituations (-find-situations=N) lists seeds that reach each
// situation, to pick new ones. The seeds that first found each bug (before
// the simulator ran the replica core itself) are in the comments.
var regressionSeeds = []struct {
	seeds     []uint64
	situation string
	bug       string
}{
	// A new master prepared from the chosen prefix its heartbeats reported
	// (paxos.Proposer.campaign used chosenUpto + 1). Instances 15-16 were
	// chosen, every learner that knew it crashed and lost its lazy chosen
	// marks, and the new master never re-proposed them: no learner could
	// apply past 14 again, and reads never completed (a liveness bug).
	// Found as seeds 705, 1509, 1706.
	{[]uint64{82, 328}, sitPrepareBelowLostPrefix, "new master skipped instances no live learner held"},
	// With thrifty accepts (only a majority syncs), a lazy Accept raised
	// n3's promise to 0.2 in memory; a late Prepare at 0.2 was then taken
	// for a duplicate and promised without a record (paxos.Acceptor now
	// tracks durablePromised). Found as seed 754.
	{[]uint64{252, 263}, sitPromiseRaisedLazily, "promise at a ballot raised only by a lazy accept was not recorded"},
	// The checker bounded an unacknowledged write's effect by the first
	// apply anywhere; a follower applied it before the master, whose lease
	// read meanwhile (correctly) did not see it: a false alarm of the
	// linearizability check (checker.effectBound). Found as seeds 9890,
	// 18133.
	{[]uint64{331, 493}, sitReadBeforeChooserApplied, "lease read before the master applied an unacknowledged write"},
	// A ballot boost re-proposed a rival's epoch start, accepted under a
	// lower ballot at an instance the master's election had not seen; the
	// log moved into the rival's epoch while the master kept its own, and
	// every command it proposed after was refused (paxos.Proposer.interrupted).
	// Found as seed 15125. After pre-votes and check-quorum (issue 14) no
	// seed among 1..2000 reached it until the shorter default election
	// timeout (300 ms) made seed 1292 do so (and 2442, 5356 among 6,000); paxos's
	// TestPaper5_3_BoostFindingARivalEpochStartStartsANewEpoch plays it
	// whatever the seeds do.
	{[]uint64{1292}, sitRivalEpochStartInBoost, "ballot boost re-proposed another master's epoch start"},
	// Found as seeds 7195 and 17967.
	{[]uint64{39}, sitRestoreHoles, "snapshot damaged after a restart from it: the chosen mark runs past values it held"},
	{[]uint64{57}, sitRestoreHoles, "checkpoint after a snapshot dropped learned values the chosen mark covers"},
	// A master elected on two peers' promises crashed before its own
	// acceptor's promise of the ballot was synced, came back knowing no
	// higher ballot and used the same one again with another value.
	// Found as seed 11653.
	{[]uint64{1}, sitQuorumWithoutOwnPromise, "ballot reused after a crash: the own promise was not durable"},
	// A node whose snapshot was damaged after its log was truncated past
	// it kept campaigning, refused by its own acceptor, and its rising
	// ballots kept the others from electing anyone. Found as seed 1645.
	// After pre-votes and check-quorum (issue 14) no seed among 1..1500
	// reached it; with the 300 ms election timeout seed 2159 does (one in
	// 6,000), and paxos's TestPaper5_5_CandidateBehindItsOwnTruncationWaits
	// plays it whatever the seeds do.
	{[]uint64{2159}, sitOwnAcceptorTruncated, "candidate behind its own acceptor's truncation campaigned forever"},
	// A deposed master (still master in its own eyes, its boost hiding the
	// higher promise) applied a membership change another master had
	// chosen, kept its own older view, and accepted an operator's change
	// built on that view; the learners refused it (wrong version), the
	// proposer adopted it and counted votes with voters the log never had.
	// Found as seed 78226; paxos's
	// TestPaper5_4_MasterAppliesAChangeAnotherMasterChose plays it too.
	{[]uint64{2370}, sitMasterAppliesOthersChange, "master's configuration view fell behind a change chosen by another master"},
	// A fresh replica that could never win kept campaigning (§5.1). Found
	// as seed 19633.
	{[]uint64{9}, sitFreshCandidate, "fresh replica's campaigns kept the others from electing anyone"},
	// A wiped voter, a damaged snapshot and a behind candidate: two losses
	// of state, no majority for the old configuration's instances. Found
	// as seed 17211; TestRegression_SettleOutlastsALostNotice plays seed
	// 89778's bug (an end-of-run wait shorter than a lost notice's resend).
	{[]uint64{28}, sitLossesExclusive, "a lost disk and a damaged snapshot in one run"},
}

func TestRegressionSeeds(t *testing.T) {
	for _, rs := range regressionSeeds {
		for _, seed := range rs.seeds {
			t.Run(fmt.Sprintf("%d/%s", seed, rs.situation), func(t *testing.T) {
				t.Parallel()
				r, err := Run(ConfigForSeed(seed))
				if err != nil {
					t.Fatalf("%s: %v\n  replay: %s", rs.bug, err, replayCommand(seed, 0))
				}
				if r.Situations[rs.situation] == 0 {
					t.Fatalf("seed %d no longer reaches %q (%s): pick another with -find-situations (it reached %v)",
						seed, rs.situation, rs.bug, r.Situations)
				}
				t.Log(r)
			})
		}
	}
}

// TestFindSituations lists seeds whose runs reach each situation
// (-find-situations=N: N seeds from -seed-start, 1 by default), for
// regressionSeeds.
func TestFindSituations(t *testing.T) {
	if *flagFindSituations == 0 {
		t.Skip("-find-situations=N lists the seeds among N from -seed-start that reach each situation")
	}
	first := map[string][]uint64{}
	counts := map[string]int{}
	failures, _, _ := runSeeds(*flagSeedStart, *flagFindSituations, workers(), func(_ int, r Result, _ error) {
		for k := range r.Situations {
			counts[k]++
			if len(first[k]) < 8 {
				first[k] = append(first[k], r.Seed)
			}
		}
	})
	for _, err := range failures {
		t.Errorf("%v", err)
	}
	var names []string
	for k := range counts {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		t.Logf("%-30s %5d runs, for example seeds %v", k, counts[k], first[k])
	}
}

// The end of a run waits for the replicas to settle (Simulator.settle) so
// that convergence is checked on a quiet group. A learner that missed the
// notice of the last instance chosen hears it again only with the next
// one, resent every heartbeat; with a 200 ms wait, two lost in a row
// failed the run (found as seed 89778). Here every Chosen notice to one
// replica is lost for the first 300 ms of the wait.
func TestRegression_SettleOutlastsALostNotice(t *testing.T) {
	cfg := quietConfig(1, 3)
	sc := newScenario(t, cfg)
	m := sc.master()
	sc.startClients()
	sc.run(time.Second)
	sc.s.issueStop = sc.s.sched.now
	sc.run(time.Second) // every operation done
	x := sc.s.nodes[0]
	if x == m {
		x = sc.s.nodes[1]
	}
	until := sc.s.sched.now + int64(300*time.Millisecond)
	sc.s.net.drop = func(from, to uint32, msg any) bool {
		_, notice := msg.(*messages.Chosen)
		return notice && to == x.id && sc.s.sched.now < until
	}
	// An idle master renews its lease with a no-op now and then: wait for
	// one whose notice x misses.
	for before := m.r().ChosenUpto(); m.r().ChosenUpto() == before; {
		sc.s.runUntil(sc.s.sched.now + int64(time.Millisecond))
	}
	sc.s.settle()
	sc.ok()
	if sc.s.situations[sitLongSettle] == 0 {
		t.Fatal("the settle did not outlast the lost notices: the situation did not arise")
	}
	if r, err := sc.s.finish(); err != nil {
		t.Fatal(err)
	} else {
		t.Log(r)
	}
}

// A deposed master's Chosen notice covered an instance its own learner had
// learned from the new master: paxos.Proposer raised chosenUpto with
// LearnerProgress and the notice claimed chosenUpto under the old ballot,
// so a learner holding the old master's (never chosen) value there took it
// as chosen. Found as seed 1202 (before the seeds were reshuffled): "n4
// applied [n5/r60] at instance 37, but [n3/r67] was chosen". Scripted
// here: A is master; its messages reach only X; X is cut off from the
// rest; the rest elect C, which chooses another value at the instance A
// proposed; A hears C's accept and notice but none of C's heartbeats.
func TestRegression_DeposedMasterNoticeCoversOnlyItsOwnBallot(t *testing.T) {
	probeSeeds(t, 20, "in no seed did a deposed master, still master in its own eyes, learn the new master's value",
		func(t *testing.T, cfg Config, arose func()) {
			cfg.Proposer.CheckInterval = -1 // no checksum value may take the instance the script counts on
			// A hears no majority answer, and would step down after a
			// QuorumTimeout (check-quorum, issue 14): held off here, as
			// for a master whose answers come late, so that it is still
			// master in its own eyes when it learns the new master's value.
			cfg.Proposer.QuorumTimeout = time.Minute
			sc := newScenario(t, cfg)
			a := sc.master()
			sc.put(0, a, "k0", "warmup")
			sc.run(200 * time.Millisecond)
			others := sc.others(a)
			x, rest := others[0], others[1:]
			for _, n := range rest {
				sc.cut(a, n)
				sc.cut(x, n)
				sc.cut(n, x)
			}
			// A never hears that it was deposed.
			sc.s.net.drop = func(from, to uint32, msg any) bool {
				_, hb := msg.(*messages.Heartbeat)
				return hb && to == a.id
			}
			instance := uint64(len(sc.s.check.log)) + 1
			sc.put(0, a, "k0", "from-deposed")
			sc.run(100 * time.Millisecond)
			if x.r().AcceptedAt(instance) == nil {
				t.Fatalf("%s did not accept the deposed master's value at %d", x.name(), instance)
			}
			// The rest elect a master of their own.
			c := sc.awaitMaster(rest)
			sc.put(1, c, "k0", "from-new-master")
			sc.run(time.Second)
			if a.r().IsMaster() && a.applied >= instance {
				arose() // a deposed master that learned what the new one chose
			}
			sc.s.net.drop = nil
			sc.finish()
		})
}

// A learner that learned a chosen value by catch-up, whose acceptor then
// accepted a late Accept of an older ballot at the same instance (its
// promise was still low: it learned without voting), restored the later
// record on restart, not the learned one, and applied a value that was
// never chosen. Found by this scripted probe after reading
// paxos.Learner.Restore; fixed there (a learned record is chosen and no
// later record replaces it).
func TestRegression_RestoreKeepsLearnedValue(t *testing.T) {
	probeSeeds(t, 400, "no seed made a learner accept a stale value after learning the chosen one",
		func(t *testing.T, cfg Config, arose func()) {
			sc := newScenario(t, cfg)
			sc.noRegistrationWait = true
			a := sc.master()
			sc.put(0, a, "k0", "warmup")
			sc.run(300 * time.Millisecond)
			x := sc.s.nodes[0]
			if x == a {
				x = sc.s.nodes[1]
			}
			// A's accept for the next instance reaches nobody but itself;
			// the copy for X is held back, to arrive much later.
			var held []*messages.Accept
			sc.s.net.drop = func(from, to uint32, msg any) bool {
				acc, ok := msg.(*messages.Accept)
				if !ok || from != a.id {
					return false
				}
				if to == x.id {
					held = append(held, acc)
				}
				return true
			}
			instance := uint64(len(sc.s.check.log)) + 1
			sc.put(0, a, "k0", "never-chosen")
			sc.run(100 * time.Millisecond)
			staleBallot := a.r().Ballot()
			a.crash()
			x.crash() // down while the others move on, so it never votes
			sc.s.net.drop = nil
			c := sc.awaitMaster(sc.s.nodes)
			sc.put(1, c, "k0", "chosen")
			sc.run(500 * time.Millisecond)
			x.restart()
			for range 30 {
				if x.applied >= instance {
					break
				}
				sc.run(100 * time.Millisecond)
			}
			for _, m := range held {
				sc.s.net.send(a.id, x.id, m)
			}
			sc.run(200 * time.Millisecond)
			if e := x.r().AcceptedAt(instance); e != nil && e.Ballot == staleBallot && x.applied >= instance {
				arose()
			}
			x.crash()
			x.restart()
			sc.run(100 * time.Millisecond)
			sc.finish()
		})
}

// probeSeeds runs a scripted probe as a subtest for each seed from 1 to
// seeds, each on a quiet five-node group with two clients on one key; the
// script calls arose when the situation it aims at arose. The test fails
// with none if the situation arose in no seed: a probe that no longer
// reaches its moment tests nothing.
func probeSeeds(t *testing.T, seeds uint64, none string, script func(t *testing.T, cfg Config, arose func())) {
	t.Helper()
	count := 0
	for seed := uint64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			cfg := quietConfig(seed, 5)
			cfg.Clients, cfg.Keys = 2, 1
			script(t, cfg, func() { count++ })
		})
	}
	if count == 0 {
		t.Fatal(none)
	}
	t.Logf("the situation arose in %d of %d seeds", count, seeds)
}
