package sim

import (
	"errors"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/paxos"
)

// plantedBudget is how many seeds a planted bug may take to be caught. Each
// bug below is caught within its first few seeds; the budget leaves room
// for changes to the workload.
const plantedBudget = 200

// TestPlantedBugIsCaught plants each known bug (§6: "known bugs were
// planted to prove the tests catch them") and fails if no seed in the
// budget reports a violation.
func TestPlantedBugIsCaught(t *testing.T) {
	for _, bug := range paxos.PlantedBugs() {
		t.Run(bug.String(), func(t *testing.T) {
			for seed := uint64(1); seed <= plantedBudget; seed++ {
				cfg := ConfigForSeed(seed)
				cfg.Planted = bug
				r, err := Run(cfg)
				if err == nil {
					continue
				}
				if !errors.Is(err, ErrSafety) {
					t.Logf("seed %d: a liveness failure, not what this bug breaks: %v", seed, err)
					continue
				}
				if bug == paxos.BugDivergentApply && !errors.Is(err, ErrChecksumMismatch) {
					t.Fatalf("seed %d: divergent-apply caught by %v, not by the runtime consistency check (§6.2)", seed, firstLine(err))
				}
				t.Logf("caught after %d seeds (%d steps): %v\n  replay: %s", seed, r.Steps, firstLine(err),
					replayCommand(seed, bug))
				return
			}
			t.Fatalf("planted bug %s not caught in %d seeds", bug, plantedBudget)
		})
	}
	// Replying before persisting is caught at once by the contract check;
	// with that check off it must still be caught by its consequences: a
	// crash loses a promise or acceptance that was already counted.
	t.Run("reply-before-persist/consequences", func(t *testing.T) {
		for seed := uint64(1); seed <= plantedBudget; seed++ {
			cfg := ConfigForSeed(seed)
			cfg.NoContractCheck = true
			cfg.Planted = paxos.BugReplyBeforePersist
			// Frequent crashes and slow disks widen the window between a
			// reply and the fsync that should have preceded it.
			cfg.Faults.CrashEvery = 100 * time.Millisecond
			cfg.Faults.DownMin, cfg.Faults.DownMax = 10*time.Millisecond, 100*time.Millisecond
			cfg.FsyncMin, cfg.FsyncMax = 5*time.Millisecond, 50*time.Millisecond
			r, err := Run(cfg)
			if err != nil && errors.Is(err, ErrSafety) {
				t.Logf("caught after %d seeds (%d steps): %v", seed, r.Steps, firstLine(err))
				return
			}
		}
		t.Fatalf("reply-before-persist not caught by its consequences in %d seeds", plantedBudget)
	})
}

func firstLine(err error) string {
	s := err.Error()
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
