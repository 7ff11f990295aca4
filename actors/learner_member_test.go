package actors_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/actors"
)

// §5.4: a non-voting member (a learner) is sent the log and holds the same
// database, but never votes or becomes master: with the master gone, a new
// master comes only from the voters.
func TestPaper5_4_LearnerLearnsTheLogAndNeverVotes(t *testing.T) {
	g := newTestGroupWith(t, 4, func(cfg *actors.Config) {
		voters := map[uint32]string{}
		for id, addr := range cfg.Peers {
			if id != 4 {
				voters[id] = addr
			}
		}
		cfg.Learners = map[uint32]string{4: cfg.Peers[4]}
		cfg.Peers = voters
	})
	putKeys(t, g, 0, 50)
	g.sameState(50)
	waitFor(t, 5*time.Second, func() error {
		st := g.hosts[4].replica.Status()
		if st.Role != "learner" || st.MasterId == 0 || st.MasterId == 4 {
			return fmt.Errorf("learner status: role %q, master %d", st.Role, st.MasterId)
		}
		return nil
	})
	old := g.master()
	g.stop(old)
	waitFor(t, 10*time.Second, func() error {
		if m := g.master(); m == 0 || m == old {
			return fmt.Errorf("master is %d", m)
		}
		return nil
	})
	if m := g.master(); m == 4 {
		t.Fatal("the learner became master")
	}
	putKeys(t, g, 50, 60)
	g.sameState(60)
}
