package sim

import (
	"errors"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/paxos"
)

// plantedBudget is how many seeds a planted bug may take to be caught by
// its own invariant. Each bug below is caught within its first few dozen
// seeds; the budget leaves room for changes to the workload.
const plantedBudget = 300

// caughtBy names, for each bug the random runs must catch, the invariant
// that is its own: the one that shows what the bug breaks.
var caughtBy = map[paxos.PlantedBug]error{
	paxos.BugReplyBeforePersist:          ErrDurableContradiction, // an answer leaves before its records are durable
	paxos.BugIgnorePromiseValues:         ErrTwoValuesChosen,      // a chosen value replaced by a no-op
	paxos.BugApplyOutOfOrder:             ErrAppliedOutOfOrder,
	paxos.BugIgnoreLease:                 ErrLeaseOverlap, // two masters serve lease reads at once
	paxos.BugIgnoreEpoch:                 ErrEpochIgnored,
	paxos.BugPromiseBelowTruncation:      ErrTwoValuesChosen,    // chosen instances filled with no-ops
	paxos.BugDivergentApply:              ErrChecksumMismatch,   // only the runtime consistency check sees it
	paxos.BugCorruptVotesAtOnce:          ErrLearnedNotChosen,   // a vote counted for an incarnation the configuration does not record
	paxos.BugQuorumFromStaleConfig:       ErrTwoValuesChosen,    // acceptances counted against the wrong voters
	paxos.BugNoStepDown:                  ErrNoProgress,         // a master cut off one way holds elections off
	paxos.BugNoPreVote:                   ErrDisruptiveCampaign, // a follower cut off raises its ballot
	paxos.BugPromisePageAsWhole:          ErrTwoValuesChosen,    // chosen instances past a promise's first page overwritten
	paxos.BugCheckpointForgetsBeforeMark: ErrAcceptanceLost,     // a restart misses what the checkpoint dropped
}

// TestPlantedBugIsCaught plants each known bug in the replicas (§6:
// "known bugs were planted to prove the tests catch them") and fails
// unless a seed in the budget reports the bug's own invariant broken. The
// bugs are settings of each replica (core.Config.Planted), so the runs of
// different bugs go in parallel.
func TestPlantedBugIsCaught(t *testing.T) {
	for _, bug := range paxos.PlantedBugs() {
		want := caughtBy[bug]
		t.Run(bug.String(), func(t *testing.T) {
			t.Parallel()
			for seed := uint64(1); seed <= plantedBudget; seed++ {
				cfg := ConfigForSeed(seed)
				cfg.Planted = bug
				r, err := Run(cfg)
				switch {
				case err == nil:
					continue
				case !errors.Is(err, want):
					t.Logf("seed %d: caught first by another invariant: %v", seed, firstLine(err))
					continue
				}
				t.Logf("caught after %d seeds (%d steps) by %v: %v\n  replay: %s", seed, r.Steps, want, firstLine(err),
					replayCommand(seed, bug))
				return
			}
			t.Fatalf("planted bug %s not caught by %v in %d seeds", bug, want, plantedBudget)
		})
	}
	// Replying before persisting is caught at once by the contract check;
	// with that check off it must still be caught by its consequences: a
	// crash loses a promise or acceptance that was already counted.
	t.Run("reply-before-persist/consequences", func(t *testing.T) {
		t.Parallel()
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
