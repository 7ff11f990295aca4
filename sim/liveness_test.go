package sim

import (
	"errors"
	"fmt"
	"testing"

	"github.com/livepaxos/livepaxos/paxos"
)

// cutSeeds is how many seeds each cut shape runs in TestLivenessUnderCuts
// (the random runs of TestSimulation play every shape as well).
const cutSeeds = 12

// Issue 14: a group keeps choosing writes whenever a majority can talk,
// under each shape of partial partition: the master cut off one way (its
// heartbeats still arrive) or both, a flapping link, a follower cut off
// and let back in (it raises no ballot meanwhile).
func TestLivenessUnderCuts(t *testing.T) {
	for shape := CutMasterOneWay; shape < cutShapes; shape++ {
		t.Run(shape.String(), func(t *testing.T) {
			t.Parallel()
			for seed := uint64(1); seed <= cutSeeds; seed++ {
				cfg := ConfigForSeed(seed)
				cfg.Cut = shape
				if _, err := Run(cfg); err != nil {
					t.Errorf("%v\n  replay: %s", err, replayCommand(seed, paxos.BugNone))
				}
			}
		})
	}
}

// Each liveness mechanism, planted away, is caught by its own check under
// the cut it exists for: without check-quorum a master whose answers are
// cut off holds every election off (no progress); without pre-vote a
// follower cut off raises its ballot.
func TestLivenessPlantedBugsAreCaughtByTheirCut(t *testing.T) {
	for _, tc := range []struct {
		bug   paxos.PlantedBug
		shape CutShape
	}{
		{paxos.BugNoStepDown, CutMasterOneWay},
		{paxos.BugNoPreVote, CutIsolateRejoin},
	} {
		t.Run(fmt.Sprint(tc.bug), func(t *testing.T) {
			t.Parallel()
			want := caughtBy[tc.bug]
			for seed := uint64(1); seed <= 20; seed++ {
				cfg := ConfigForSeed(seed)
				cfg.Cut, cfg.Planted = tc.shape, tc.bug
				_, err := Run(cfg)
				if err != nil && errors.Is(err, want) {
					t.Logf("caught at seed %d: %v", seed, firstLine(err))
					return
				}
				if err != nil {
					t.Logf("seed %d: caught first by another invariant: %v", seed, firstLine(err))
				}
			}
			t.Fatalf("%s not caught by %v under cut %s in 20 seeds", tc.bug, want, tc.shape)
		})
	}
}
