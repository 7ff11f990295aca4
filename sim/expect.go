package sim

import (
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// The checker's own account of membership (§5.4), written from
// docs/membership.md and not from the code it checks (paxos.FoldMembership
// and paxos.CheckMembershipChange): a replica whose rule drifts from the
// document disagrees with this one, and the checker's count of
// acceptances against the configuration of each instance tells.
//
// The document's rule: a change is a membership command carrying the
// whole next configuration with version + 1; it takes effect only if its
// version follows the one in force, its members have distinct non-zero
// ids and the role voter or learner, at least one voter stays, and at most
// one voter is added or removed or has its recorded incarnation replaced
// (recording an incarnation where none was, and learners coming and
// going, are free). Otherwise it changes nothing.

// expectConfig returns the configuration in force after value v, given
// cur in force before it: cur itself when v changes nothing.
func expectConfig(cur *messages.Membership, v *messages.Value) *messages.Membership {
	for _, cmd := range v.GetCommands() {
		if !cmd.Membership {
			continue
		}
		next := &messages.Membership{}
		if proto.Unmarshal(cmd.Payload, next) != nil || !acceptableChange(cur, next) {
			continue
		}
		cur = next
	}
	return cur
}

// acceptableChange is the document's rule for next following cur.
func acceptableChange(cur, next *messages.Membership) bool {
	if next.Version != cur.Version+1 {
		return false
	}
	before, after := voterIncarnations(cur), voterIncarnations(next)
	if before == nil || after == nil || len(after) == 0 {
		return false // a malformed configuration, or no voter left
	}
	changes := 0
	for id, inc := range before {
		now, stays := after[id]
		switch {
		case !stays:
			changes++ // removed (or made a learner)
		case inc != 0 && now != inc:
			changes++ // its recorded incarnation replaced
		}
	}
	for id := range after {
		if _, was := before[id]; !was {
			changes++ // added (or promoted)
		}
	}
	return changes <= 1
}

// voterIncarnations maps each voter of m to the incarnation m records for
// it (0: none), or returns nil if m has a member with id 0, an id twice,
// or a role that is neither voter nor learner.
func voterIncarnations(m *messages.Membership) map[uint32]uint64 {
	seen := map[uint32]bool{}
	voters := map[uint32]uint64{}
	for _, mem := range m.GetMembers() {
		if mem.Id == 0 || seen[mem.Id] {
			return nil
		}
		seen[mem.Id] = true
		switch mem.Role {
		case "voter":
			voters[mem.Id] = mem.Incarnation
		case "learner":
		default:
			return nil
		}
	}
	return voters
}
