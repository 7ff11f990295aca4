package sim

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// change has the master propose the configuration edit makes of its own,
// retrying while it answers "try again", and waits until every node that is
// up has applied it. It returns the new version.
func (sc *scenario) change(edit func(next *messages.Membership)) uint64 {
	sc.t.Helper()
	for range 100 {
		m := sc.master()
		next := proto.Clone(m.r().FrontierMembers()).(*messages.Membership)
		next.Version++
		edit(next)
		payload, _ := proto.Marshal(next)
		sc.s.reqSeq++ // a request id no client's operation has
		id := sc.s.reqSeq
		m.d.Propose(&messages.Command{Membership: true, Payload: payload, ReplyAddress: scenarioAddress, RequestId: id})
		sc.run(300 * time.Millisecond)
		if rep := m.scenarioReply(id); rep != nil && rep.Response.Code != messages.ErrorCode_ERROR_CODE_OK {
			continue // refused: try again
		}
		done := true
		for _, n := range sc.s.nodes {
			if members := n.r().Members(); n.up && paxos.MemberOf(members, n.id) != nil && members.Version < next.Version {
				done = false
			}
		}
		if done {
			return next.Version
		}
	}
	sc.t.Fatal("membership change never applied")
	return 0
}

// voters lists the voters of the configuration the one log reached.
func (sc *scenario) voters() []uint32 {
	return paxos.MembershipVoters(sc.s.check.configs[len(sc.s.check.configs)-1])
}

// writes has client 0 write n keys through the master and waits for them.
func (sc *scenario) writes(prefix string, n int) {
	sc.t.Helper()
	for i := range n {
		o := sc.put(0, sc.master(), "k0", fmt.Sprintf("%s%d", prefix, i))
		for range 100 {
			if o.status != opPending {
				break
			}
			sc.run(50 * time.Millisecond)
		}
		if o.status != opOK {
			sc.t.Fatalf("write %s%d: %v", prefix, i, o)
		}
	}
}

// §5.4: the group grows from three voters to five through the log (two
// learners added, then promoted one at a time), writes go on under each
// configuration, the master is removed (it hands mastership over first),
// and the group shrinks back to three; every replica applies the same
// configurations (the checker counts each instance's acceptances against
// the configuration its log gives it) and the end state converges.
func TestPaper5_4_GrowThreeToFiveAndShrinkBack(t *testing.T) {
	cfg := quietConfig(3, 3)
	cfg.Learners = 2
	sc := newScenario(t, cfg)
	sc.writes("a", 3)
	for _, id := range []uint32{4, 5} {
		sc.change(func(next *messages.Membership) { paxos.MemberOf(next, id).Role = paxos.VoterRole })
		sc.writes(fmt.Sprintf("p%d-", id), 3)
	}
	if v := sc.voters(); !slices.Equal(v, []uint32{1, 2, 3, 4, 5}) {
		t.Fatalf("voters %v, want 1..5", v)
	}
	// Two voters down: five voters survive it.
	sc.s.nodes[0].crash()
	sc.s.nodes[1].crash()
	sc.writes("two-down", 3)
	sc.s.nodes[0].restart()
	sc.s.nodes[1].restart()
	sc.run(time.Second)
	old := sc.master()
	sc.change(func(next *messages.Membership) {
		next.Members = slices.DeleteFunc(next.Members, func(m *messages.Member) bool { return m.Id == old.id })
	})
	if m := sc.master(); m == old {
		t.Fatalf("%s is master after its removal", old.name())
	}
	sc.writes("removed", 3)
	var other uint32
	for _, id := range sc.voters() {
		if id != sc.master().id {
			other = id
		}
	}
	sc.change(func(next *messages.Membership) {
		m := paxos.MemberOf(next, other)
		m.Role, m.Incarnation = paxos.LearnerRole, 0
	})
	if v := sc.voters(); len(v) != 3 || slices.Contains(v, old.id) || slices.Contains(v, other) {
		t.Fatalf("voters %v after removing %s and demoting n%d", v, old.name(), other)
	}
	sc.writes("three", 3)
	// The removed node is added back as a learner so that it converges.
	sc.change(func(next *messages.Membership) {
		next.Members = append(next.Members, &messages.Member{Id: old.id, Address: old.name(), Role: paxos.LearnerRole})
	})
	sc.finish()
}

// wipe crashes n and loses its whole disk (§5.1): it comes back empty,
// with a new incarnation.
func (sc *scenario) wipe(n *node) {
	n.crash()
	n.loseDisk()
	n.restart()
}

// §5.1: a voter that lost its disk comes back with a new incarnation. It
// sends no promise or acceptance while the configuration records its old
// one; the master replaces it through the log, after which it votes again
// (the group survives the loss of another voter with its help) and it
// catches up. Nothing acknowledged is lost.
func TestPaper5_1_WipedReplicaRebuildsAsNonVoting(t *testing.T) {
	sc := newScenario(t, quietConfig(5, 3))
	sc.writes("a", 5)
	m := sc.master()
	var x *node
	for _, n := range sc.s.nodes {
		if n != m {
			x = n
		}
	}
	oldInc := x.diskInc
	sc.wipe(x)
	if !x.r().Fresh() || x.diskInc == oldInc {
		t.Fatalf("%s after the wipe: fresh %v, incarnation changed %v", x.name(), x.r().Fresh(), x.diskInc != oldInc)
	}
	// Until the configuration records its new incarnation, the master's
	// requests name the old one and it refuses them all.
	x.d.Step(&messages.Accept{From: m.id, Ballot: m.r().Ballot(), ToIncarnation: oldInc, Cluster: simCluster,
		Entries: []*messages.Entry{{Instance: 999, Value: &messages.Value{Noop: true}}}})
	if acc, ok := x.lastAnswer.Msg.(*messages.Accepted); !ok || acc.Ok || acc.Incarnation != x.diskInc {
		t.Fatalf("wiped acceptor answered a request naming its old incarnation: %v", x.lastAnswer.Msg)
	}
	sc.writes("b", 5)
	for range 100 {
		if paxos.MemberOf(sc.master().r().FrontierMembers(), x.id).Incarnation == x.diskInc {
			break
		}
		sc.run(100 * time.Millisecond)
	}
	if got := paxos.MemberOf(sc.master().r().FrontierMembers(), x.id).Incarnation; got != x.diskInc {
		t.Fatalf("the configuration records incarnation %d for %s, want its new one %d", got, x.name(), x.diskInc)
	}
	sc.run(time.Second)
	if x.r().Fresh() {
		t.Fatalf("%s still fresh after its replacement", x.name())
	}
	// It votes again: with the third voter down, it makes the majority.
	var y *node
	for _, n := range sc.s.nodes {
		if n != sc.master() && n != x {
			y = n
		}
	}
	y.crash()
	sc.writes("c", 5)
	sc.finish()
}

// §5.1: the same loss with the bug planted that lets a wiped replica vote
// at once under its new incarnation. The scripted run shows the wiped
// acceptor answering the old incarnation's requests when the bug is on;
// that the random runs catch it (a safety violation) is
// TestPlantedBugIsCaught/corrupt-votes-at-once.
func TestPaper5_1_PlantedCorruptReplicaVotesAtOnce(t *testing.T) {
	cfg := quietConfig(5, 3)
	cfg.Planted = paxos.BugCorruptVotesAtOnce
	sc := newScenario(t, cfg)
	sc.writes("a", 3)
	m := sc.master()
	x := sc.s.nodes[0]
	if x == m {
		x = sc.s.nodes[1]
	}
	oldInc := x.diskInc
	sc.wipe(x)
	x.d.Step(&messages.Accept{From: m.id, Ballot: m.r().Ballot() + 1<<16, ToIncarnation: oldInc, Cluster: simCluster,
		Entries: []*messages.Entry{{Instance: 999, Value: &messages.Value{Noop: true}}}})
	if acc, ok := x.lastAnswer.Msg.(*messages.Accepted); !ok || !acc.Ok {
		t.Fatalf("with the bug planted the wiped acceptor should vote: %v", x.lastAnswer.Msg)
	}
}
