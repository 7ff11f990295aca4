package sim

import (
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// initialMembership is version 1: the voters and the learners the run
// starts with.
func (s *Simulator) initialMembership() *messages.Membership {
	m := &messages.Membership{Version: 1}
	for _, id := range s.ids {
		m.Members = append(m.Members, &messages.Member{Id: id, Address: endpointName(id), Role: paxos.VoterRole})
	}
	for _, id := range s.learners {
		m.Members = append(m.Members, &messages.Member{Id: id, Address: endpointName(id), Role: paxos.LearnerRole})
	}
	return m
}

// operate is the operator changing the membership through the log
// (§5.4), one change at a time through whichever node is master, while
// faults run: add a node that is not a member as a learner, promote a
// learner to voter (the group grows, 3 to 5 and more), demote a voter to
// learner or remove a member (it shrinks back; removing the master has it
// hand mastership over first). The group keeps at least three voters:
// with two, a lost disk leaves no majority to replace it.
// Afterwards the operator only adds back, as learners, the nodes that are
// not members, so that the run ends with every node following the log.
func (s *Simulator) operate() {
	if s.err != nil || len(s.learners) == 0 {
		return
	}
	defer s.sched.after(int64(300*time.Millisecond)+s.rng.Int64N(int64(time.Second)), s.operate)
	var master *node
	for _, n := range s.nodes {
		if n.up && n.r().IsMaster() {
			master = n
		}
	}
	if master == nil {
		return
	}
	cur := master.r().FrontierMembers()
	next := proto.Clone(cur).(*messages.Membership)
	next.Version++
	var absent, learners, voters []uint32
	for _, id := range s.all {
		switch m := paxos.MemberOf(cur, id); {
		case m == nil:
			absent = append(absent, id)
		case m.Role == paxos.LearnerRole:
			learners = append(learners, id)
		default:
			voters = append(voters, id)
		}
	}
	pick := func(ids []uint32) uint32 { return ids[s.rng.IntN(len(ids))] }
	var what string
	switch op := s.rng.IntN(4); {
	case len(absent) > 0 && (op == 0 || s.sched.now >= s.faultsEnd):
		id := pick(absent)
		next.Members = append(next.Members, &messages.Member{Id: id, Address: endpointName(id), Role: paxos.LearnerRole})
		what = "add learner " + endpointName(id)
	case s.sched.now >= s.faultsEnd:
		return
	case op == 1 && len(learners) > 0 && s.healthy(voters):
		// A promoted learner votes once the configuration records its
		// incarnation, which takes a majority without it: promote only
		// into a healthy group (docs/membership.md).
		id := pick(learners)
		paxos.MemberOf(next, id).Role = paxos.VoterRole
		what = "promote " + endpointName(id)
		s.voterChanges++
	case op == 2 && len(voters) > 3 && s.healthy(voters):
		id := pick(voters)
		paxos.MemberOf(next, id).Role, paxos.MemberOf(next, id).Incarnation = paxos.LearnerRole, 0
		what = "demote " + endpointName(id)
		s.voterChanges++
	case op == 3 && len(learners) > 0:
		id := pick(learners)
		next.Members = slices.DeleteFunc(next.Members, func(m *messages.Member) bool { return m.Id == id })
		what = "remove " + endpointName(id)
	default:
		return
	}
	payload, _ := proto.Marshal(next)
	s.membershipOps++
	if s.trace != nil {
		s.tracef("OPERATOR asks %s for membership v%d: %s", master.name(), next.Version, what)
	}
	master.d.Propose(&messages.Command{Membership: true, Payload: payload})
}

// healthy reports whether every voter is up and no replica is rebuilding.
func (s *Simulator) healthy(voters []uint32) bool {
	for _, id := range voters {
		if !s.nodes[id-1].up {
			return false
		}
	}
	return s.noneRebuilding()
}
