package core

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/paxos"
)

// §5.1: a brand-new group (every voter fresh and empty) elects after its
// poll; a group whose every voter lost its data and was rebuilt looks the
// same on disk, but its acceptors are not empty (they may have voted
// before): it must not start over empty on its own, and elects no one.
// Only the operator's start-over (Rebuilt false) lets it begin again.
func TestPaper5_1_AGroupThatLostEveryDiskDoesNotStartOverEmpty(t *testing.T) {
	for _, rebuilt := range []bool{false, true} {
		c := newTestClusterWith(t, 3, 9, paxos.BugNone, func(cfg *Config) {
			cfg.Incarnation, cfg.Fresh, cfg.Rebuilt = rand.Uint64()>>1+1, true, rebuilt
		})
		c.advance(20 * time.Second)
		switch m := c.master(); {
		case rebuilt && m != nil:
			t.Fatalf("a group whose every voter was rebuilt elected node %d: it would start over empty", m.id)
		case !rebuilt && m == nil:
			t.Fatal("a brand-new group elected no one in 20 s")
		}
	}
}
