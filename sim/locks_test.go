package sim

import (
	"errors"
	"flag"
	"testing"

	"github.com/livepaxos/livepaxos/session"
)

// lockSeeds is how many seeds the lock service's runs take (40 in make
// test; -lock-seeds=N for more).
var lockSeedsFlag = flag.Uint64("lock-seeds", 40, "seeds of TestLockServiceInvariants")

// lockConfig is a seed's run with session clients beside the others.
func lockConfig(seed uint64) Config {
	cfg := ConfigForSeed(seed)
	cfg.Sessions = 3
	cfg.Watchers = 2
	return cfg
}

// Issue 16, item 8: sessions, locks, lock-delay, sequencers and
// exactly-once writes under every fault the simulator has, with the lock
// invariants judged after every command on every replica.
func TestLockServiceInvariants(t *testing.T) {
	var total lockStats
	var watched watchStats
	lockOps := 0 // judged by the porcupine lock model too
	lockSeeds := *lockSeedsFlag
	for seed := uint64(1); seed <= lockSeeds; seed++ {
		s := New(lockConfig(seed))
		if _, err := s.Run(); err != nil {
			t.Fatalf("seed %d: %v\n  replay: go test ./sim -run TestLockServiceInvariants (lockConfig(%d))", seed, firstLine(err), seed)
		}
		total.add(s.locks.stats)
		lockOps += len(s.lockHistory)
		watched.Delivered += s.watchStats.Delivered
		watched.Reconnects += s.watchStats.Reconnects
		watched.Resets += s.watchStats.Resets
	}
	t.Logf("%d seeds: %+v, watchers %+v, %d lock operations in the lock model's histories", lockSeeds, total, watched, lockOps)
	if lockOps == 0 || total.Acquired == 0 || total.Expired == 0 || total.FencedApplied == 0 || total.FencedRefused == 0 || total.SequencedRetries == 0 ||
		watched.Delivered == 0 || watched.Reconnects == 0 {
		t.Fatalf("the workload did not reach every case: %+v %+v", total, watched)
	}
}

// The lock service's planted bugs, each caught by its own invariant.
func TestLockServicePlantedBugs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plant func(*Config)
		want  error
	}{
		{"no-lock-delay", func(c *Config) { c.PlantedNoLockDelay = true }, ErrLockDelayIgnored},
		{"sessions-not-extended-at-takeover", func(c *Config) { c.SessionPlanted = session.PlantedNoExtensionAtTakeover }, ErrSessionExpiredEarly},
		{"watch-resumes-one-instance-late", func(c *Config) { c.PlantedWatchResumeLate = true }, ErrWatchMissed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for seed := uint64(1); seed <= plantedBudget; seed++ {
				cfg := lockConfig(seed)
				tc.plant(&cfg)
				r, err := Run(cfg)
				switch {
				case err == nil:
					continue
				case !errors.Is(err, tc.want):
					t.Logf("seed %d: caught first by another invariant: %v", seed, firstLine(err))
					continue
				}
				t.Logf("caught after %d seeds (%d steps): %v", seed, r.Steps, firstLine(err))
				return
			}
			t.Fatalf("%s not caught by %v in %d seeds", tc.name, tc.want, plantedBudget)
		})
	}
}
