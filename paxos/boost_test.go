package paxos

import (
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/messages"
)

// §5.3 with a boost (§5.2): a rival elected just before this master, under
// a lower ballot, got its epoch start accepted at an instance this master's
// election did not see. The boost must re-propose it (the highest-ballot
// value reported there), and the log then moves into the rival's epoch: the
// mastership cannot go on in its own, so it starts a new epoch after it.
// Found as sim seed 15125; scripted here since pre-votes made the
// interleaving too rare for a seed to keep (regressionSeeds).
func TestPaper5_3_BoostFindingARivalEpochStartStartsANewEpoch(t *testing.T) {
	p := newTestProposer(1, 4, 4)
	p.cfg.QuorumTimeout = time.Hour // the script answers no probe
	rivalBallot := NextBallot(0, 3)
	p.ObserveBallot(rivalBallot) // the master's ballot is above the rival's
	electBy12(t, p)
	ackEpochStart(p)
	p.LearnerApplied(p.Epoch(), t0.Add(10*time.Second))
	old := p.Epoch()
	now := t0.Add(10*time.Second + p.cfg.BoostInterval)
	var prep *messages.Prepare
	for _, e := range p.Tick(now).Messages {
		if m, ok := e.Msg.(*messages.Prepare); ok && e.To == 2 {
			prep = m
		}
	}
	if prep == nil {
		t.Fatal("no boost after the boost interval")
	}
	rival := &messages.Entry{Instance: old + 1, Ballot: rivalBallot,
		Value: &messages.Value{Noop: true, StartsEpoch: true, EpochMaster: 3}}
	p.Step(&messages.Promise{From: 1, Ballot: prep.Ballot, Ok: true}, now)
	p.Step(&messages.Promise{From: 2, Ballot: prep.Ballot, Ok: true, Accepted: []*messages.Entry{rival}}, now)
	if !p.IsMaster() || p.Ballot() != prep.Ballot {
		t.Fatalf("master %v under ballot %d after the boost's promises (boost ballot %d)", p.IsMaster(), p.Ballot(), prep.Ballot)
	}
	if p.Epoch() <= rival.Instance {
		t.Fatalf("epoch %d after the boost re-proposed the rival's epoch start at %d: its commands would be refused",
			p.Epoch(), rival.Instance)
	}
}
