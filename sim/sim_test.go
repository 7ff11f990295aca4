package sim

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/paxos"
)

var (
	flagSeed      = flag.Uint64("seed", 0, "run only this seed (with -trace: print its step-by-step trace)")
	flagSeeds     = flag.Int("seeds", 1000, "number of seeds TestSimulation runs")
	flagSeedStart = flag.Uint64("seed-start", 1, "first seed of TestSimulation, TestSoak and TestFindSituations")
	flagTrace     = flag.Bool("simtrace", false, "print the trace of the -seed run to stdout")
	flagPlanted   = flag.String("planted", "none", "plant a known bug for the -seed run (see paxos.PlantedBug)")
	flagSoakSeeds = flag.Int("soak-seeds", 0, "TestSoak runs this many seeds (0: skip); env LIVEPAXOS_SOAK_SEEDS works too")

	flagFindSituations = flag.Int("find-situations", 0, "TestFindSituations lists the seeds among N from -seed-start that reach each situation")
)

// replayCommand is the one command that replays a seed with its trace.
func replayCommand(seed uint64, bug paxos.PlantedBug) string {
	cmd := fmt.Sprintf("go test ./sim -count=1 -v -run 'TestSimulation$' -seed=%d -simtrace", seed)
	if bug != paxos.BugNone {
		cmd += " -planted=" + bug.String()
	}
	return cmd
}

// runSeeds runs seeds [start, start+count) on up to workers goroutines,
// each run single-threaded and independent, and returns the failures in
// seed order with the total of their results.
func runSeeds(start uint64, count, workers int, progress func(done int, r Result, err error)) (failures []error, total Result, wall time.Duration) {
	return runSeedsWith(ConfigForSeed, start, count, workers, progress)
}

// runSeedsWith is runSeeds with the configurations cfgFor makes.
func runSeedsWith(cfgFor func(uint64) Config, start uint64, count, workers int, progress func(done int, r Result, err error)) (failures []error, total Result, wall time.Duration) {
	began := time.Now()
	errs := make([]error, count)
	results := make([]Result, count)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i], errs[i] = Run(cfgFor(start + uint64(i)))
				if progress != nil {
					mu.Lock()
					done++
					progress(done, results[i], errs[i])
					mu.Unlock()
				}
			}
		}()
	}
	for i := range count {
		next <- i
	}
	close(next)
	wg.Wait()
	for i := range count {
		if errs[i] != nil {
			failures = append(failures, errs[i])
		}
		r := results[i]
		total.Steps += r.Steps
		total.SimTime += r.SimTime
		total.Ops += r.Ops
		total.OpsOK += r.OpsOK
		total.OpsUnknown += r.OpsUnknown
		total.Chosen += r.Chosen
		total.Crashes += r.Crashes
		total.Partitions += r.Partitions
		total.LeaseReads += r.LeaseReads
		total.QuorumReads += r.QuorumReads
		total.Snapshots += r.Snapshots
		total.Installs += r.Installs
		total.Truncations += r.Truncations
		total.PromisePages += r.PromisePages
		total.TransfersCut += r.TransfersCut
		total.Checksums += r.Checksums
		total.MembershipOps += r.MembershipOps
		total.Wipes += r.Wipes
		total.VoterChanges += r.VoterChanges
		total.Handovers += r.Handovers
		for k, v := range r.Situations {
			if total.Situations == nil {
				total.Situations = map[string]int{}
			}
			total.Situations[k] += v
		}
		total.BitFlips += r.BitFlips
		total.Messages += r.Messages
		total.Lost += r.Lost
		total.CutMaxGap = max(total.CutMaxGap, r.CutMaxGap)
	}
	return failures, total, time.Since(began)
}

// seedOf recovers the seed from a run's error (its first word after
// "seed ").
func seedOf(err error) uint64 {
	var seed uint64
	fmt.Sscanf(strings.TrimPrefix(err.Error(), "seed "), "%d", &seed)
	return seed
}

func workers() int { return max(1, min(runtime.GOMAXPROCS(0), 2)) }

// TestSimulation runs the seed budget: every seed runs safety mode, then
// liveness mode, checking the invariants at every step and the client
// history for linearizability at the end. With -seed it replays one seed.
func TestSimulation(t *testing.T) {
	if *flagSeed != 0 {
		replayOne(t, *flagSeed)
		return
	}
	count := *flagSeeds
	if testing.Short() {
		count = min(count, 50)
	}
	failures, total, wall := runSeeds(*flagSeedStart, count, workers(), nil)
	for _, err := range failures {
		t.Errorf("%v\n  replay: %s", err, replayCommand(seedOf(err), paxos.BugNone))
	}
	t.Logf("%d seeds in %s (%d workers): %d steps (%.0f steps/s), %s simulated (%.1f simulated s per wall s), "+
		"%d ops (%d ok, %d unknown), %d instances, %d crashes, %d partitions, %d lease reads, %d quorum reads, "+
		"%d snapshots, %d installed from a peer (%d transfers cut mid-way), %d log truncations, %d consistency checksums, %d membership changes asked (%d of voters), %d disks lost (%d of them a corrupt record)",
		count, wall.Round(time.Millisecond), workers(), total.Steps, float64(total.Steps)/wall.Seconds(),
		total.SimTime, total.SimTime.Seconds()/wall.Seconds(), total.Ops, total.OpsOK, total.OpsUnknown,
		total.Chosen, total.Crashes, total.Partitions, total.LeaseReads, total.QuorumReads, total.Snapshots, total.Installs, total.TransfersCut, total.Truncations, total.Checksums, total.MembershipOps,
		total.VoterChanges, total.Wipes, total.BitFlips)
	t.Logf("partial partitions (issue 14): the longest any cut went without a write chosen: %s (bound %s)",
		total.CutMaxGap, DefaultConfig(0).ProgressBound)
	t.Logf("phase 1 in pages (issue 15): %d promises stopped at their byte budget", total.PromisePages)
}

// replayOne runs one seed, with its trace on stdout if asked.
func replayOne(t *testing.T, seed uint64) {
	bug, err := paxos.ParsePlantedBug(*flagPlanted)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ConfigForSeed(seed)
	cfg.Planted = bug
	if *flagTrace {
		cfg.Trace = os.Stdout
	}
	r, err := Run(cfg)
	t.Log(r)
	if err != nil {
		t.Fatalf("%v\n  replay: %s", err, replayCommand(seed, bug))
	}
}

// TestSoak runs many seeds, for `make soak`: -soak-seeds=N or
// LIVEPAXOS_SOAK_SEEDS=N. It prints a progress line now and then, and
// every failing seed with its replay command as soon as it fails.
func TestSoak(t *testing.T) {
	count := *flagSoakSeeds
	if count == 0 {
		if v := os.Getenv("LIVEPAXOS_SOAK_SEEDS"); v != "" {
			fmt.Sscanf(v, "%d", &count)
		}
	}
	if count == 0 {
		t.Skip("soak off: set -soak-seeds=N or LIVEPAXOS_SOAK_SEEDS=N")
	}
	began := time.Now()
	steps := 0
	var simTime time.Duration
	nfail := 0
	every := max(1, count/100)
	progress := func(done int, r Result, err error) {
		steps += r.Steps
		simTime += r.SimTime
		if err != nil {
			nfail++
			fmt.Printf("FAIL %v\n  replay: %s\n", err, replayCommand(r.Seed, paxos.BugNone))
		}
		if done%every == 0 || done == count {
			el := time.Since(began).Seconds()
			fmt.Printf("soak: %d/%d seeds, %d failed, %.0f steps/s, %.1f simulated s per wall s, %s elapsed\n",
				done, count, nfail, float64(steps)/el, simTime.Seconds()/el, time.Since(began).Round(time.Second))
		}
	}
	failures, total, _ := runSeeds(*flagSeedStart, count, runtime.GOMAXPROCS(0), progress)
	for _, err := range failures {
		t.Errorf("%v\n  replay: %s", err, replayCommand(seedOf(err), paxos.BugNone))
	}
	fmt.Printf("soak: the longest any partial partition went without a write chosen: %s (bound %s)\n",
		total.CutMaxGap, DefaultConfig(0).ProgressBound)
	fmt.Printf("soak: %d promises stopped at their byte budget (phase 1 in pages)\n", total.PromisePages)
}

// traceHash runs a seed with tracing into a hash.
func traceHash(t *testing.T, seed uint64) ([32]byte, Result, error) {
	h := sha256.New()
	cfg := ConfigForSeed(seed)
	cfg.Trace = h
	r, err := Run(cfg)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, r, err
}

// TestSameSeedSameRun: two runs of one seed produce identical traces, step
// for step, and a different seed a different one.
func TestSameSeedSameRun(t *testing.T) {
	for _, seed := range []uint64{7, 8} {
		a, ra, erra := traceHash(t, seed)
		b, rb, errb := traceHash(t, seed)
		if a != b || fmt.Sprint(ra) != fmt.Sprint(rb) || fmt.Sprint(ra.Situations) != fmt.Sprint(rb.Situations) || fmt.Sprint(erra) != fmt.Sprint(errb) {
			t.Fatalf("seed %d: two runs differ: %x %v vs %x %v", seed, a, ra, b, rb)
		}
		if ra.Steps < 1000 {
			t.Fatalf("seed %d ran only %d steps", seed, ra.Steps)
		}
	}
	a, _, _ := traceHash(t, 7)
	b, _, _ := traceHash(t, 8)
	if a == b {
		t.Fatal("seeds 7 and 8 gave the same trace")
	}
}
