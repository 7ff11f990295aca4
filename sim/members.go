package sim

import (
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// initialMembership is version 1: the voters and the learners the run
// starts with.
func (s *Simulator) initialMembership() *messages.Membership {
	m := &messages.Membership{Version: 1}
	for _, id := range s.ids {
		m.Members = append(m.Members, &messages.Member{Id: id, Address: endpointName(id), Role: "voter"})
	}
	for _, id := range s.learners {
		m.Members = append(m.Members, &messages.Member{Id: id, Address: endpointName(id), Role: "learner"})
	}
	return m
}

// operate is the operator changing the membership through the log
// (§5.4): while faults run it removes the first learner and adds it back,
// again and again, through whichever node is master; afterwards it only
// adds it back whenever the master's membership lacks it, so that the run
// ends with every node following the log.
func (s *Simulator) operate() {
	if s.err != nil || len(s.learners) == 0 {
		return
	}
	learner := s.learners[0]
	for _, n := range s.nodes {
		if !n.up || !n.p.IsMaster() {
			continue
		}
		member := slices.ContainsFunc(n.members.GetMembers(), func(m *messages.Member) bool { return m.Id == learner })
		if member && s.sched.now >= s.faultsEnd {
			break // it stays; keep watching: a removal may still be on its way through the log
		}
		next := proto.Clone(n.members).(*messages.Membership)
		next.Version++
		if member {
			next.Members = slices.DeleteFunc(next.Members, func(m *messages.Member) bool { return m.Id == learner })
		} else {
			next.Members = append(next.Members, &messages.Member{Id: learner, Address: endpointName(learner), Role: "learner"})
		}
		payload, _ := proto.Marshal(next)
		s.membershipOps++
		if s.trace != nil {
			s.tracef("OPERATOR asks %s for membership v%d (learner n%d %s)", n.name(), next.Version, learner,
				map[bool]string{true: "removed", false: "added"}[member])
		}
		n.proposerOut(n.p.Submit(&messages.Command{Origin: n.id, Membership: true, Payload: payload}))
		break
	}
	s.sched.after(int64(300*time.Millisecond)+s.rng.Int64N(int64(time.Second)), s.operate)
}
