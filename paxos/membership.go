package paxos

import (
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// ErrMembership refuses a membership change (§5.4).
var ErrMembership = errors.New("paxos: membership change refused")

// Member roles in a Membership.
const (
	VoterRole   = "voter"
	LearnerRole = "learner"
)

// MembershipVoters returns the voters of m, sorted.
func MembershipVoters(m *messages.Membership) []uint32 {
	var ids []uint32
	for _, mem := range m.GetMembers() {
		if mem.Role != LearnerRole {
			ids = append(ids, mem.Id)
		}
	}
	slices.Sort(ids)
	return ids
}

// MembershipLearners returns the learners of m, sorted.
func MembershipLearners(m *messages.Membership) []uint32 {
	var ids []uint32
	for _, mem := range m.GetMembers() {
		if mem.Role == LearnerRole {
			ids = append(ids, mem.Id)
		}
	}
	slices.Sort(ids)
	return ids
}

// MemberOf returns id's entry in m, nil if it is not a member.
func MemberOf(m *messages.Membership, id uint32) *messages.Member {
	for _, mem := range m.GetMembers() {
		if mem.Id == id {
			return mem
		}
	}
	return nil
}

// CountsVote reports whether a vote (promise, acceptance, confirmation)
// from incarnation inc of node id counts under configuration m: id must be
// a voter of m, and m must record that incarnation or none yet (§5.1: the
// votes of a replica that lost its disk never count again once the
// configuration records its new incarnation).
func CountsVote(m *messages.Membership, id uint32, inc uint64) bool {
	mem := MemberOf(m, id)
	if mem == nil || mem.Role == LearnerRole {
		return false
	}
	return mem.Incarnation == 0 || mem.Incarnation == inc
}

// ChangesQuorum reports whether next counts votes differently from cur: a
// voter added or removed, or a voter's recorded incarnation changed. Such a
// change is proposed alone, with nothing else in flight, and nothing is
// proposed after it until it is chosen (docs/membership.md).
func ChangesQuorum(cur, next *messages.Membership) bool {
	if !slices.Equal(MembershipVoters(cur), MembershipVoters(next)) {
		return true
	}
	for _, id := range MembershipVoters(next) {
		if MemberOf(cur, id).GetIncarnation() != MemberOf(next, id).GetIncarnation() {
			return true
		}
	}
	return false
}

// CheckMembershipChange decides whether next, chosen in the log, takes
// effect after cur. Every replica decides alike, since both come from the
// same log. next must carry the version after cur's; it may add or remove
// at most one voter (so any majority of cur's voters meets any majority of
// next's, which keeps leases sound across the change), or replace one
// voter's recorded incarnation; recording incarnations not recorded yet,
// and learners coming and going, are free. It must keep at least one voter.
func CheckMembershipChange(cur, next *messages.Membership) error {
	if next.GetVersion() != cur.GetVersion()+1 {
		return fmt.Errorf("%w: version %d does not follow %d (another change came first)", ErrMembership, next.GetVersion(), cur.GetVersion())
	}
	if err := CheckMembershipWellFormed(next); err != nil {
		return err
	}
	curV, nextV := MembershipVoters(cur), MembershipVoters(next)
	changed, replaced := 0, 0
	for _, id := range curV {
		if !slices.Contains(nextV, id) {
			changed++
		} else if was, is := MemberOf(cur, id).Incarnation, MemberOf(next, id).Incarnation; was != 0 && was != is {
			replaced++
		}
	}
	for _, id := range nextV {
		if !slices.Contains(curV, id) {
			changed++
		}
	}
	if changed+replaced > 1 {
		return fmt.Errorf("%w: one voter at a time (this changes %d)", ErrMembership, changed+replaced)
	}
	return nil
}

// CheckMembershipWellFormed decides whether m can be a configuration at
// all: every member has an id below BallotStride (ballots are unique only
// for those), none twice, a voter's or a learner's role, and at least one
// voter.
func CheckMembershipWellFormed(m *messages.Membership) error {
	seen := map[uint32]bool{}
	for _, mem := range m.GetMembers() {
		if mem.Id == 0 || mem.Id >= BallotStride || seen[mem.Id] {
			return fmt.Errorf("%w: member id %d missing, out of range or twice", ErrMembership, mem.Id)
		}
		if mem.Role != VoterRole && mem.Role != LearnerRole {
			return fmt.Errorf("%w: member %d has role %q", ErrMembership, mem.Id, mem.Role)
		}
		seen[mem.Id] = true
	}
	if len(MembershipVoters(m)) == 0 {
		return fmt.Errorf("%w: no voter would remain", ErrMembership)
	}
	return nil
}

// FoldMembership applies the membership commands of v, in order, to cur,
// as every replica's learner does when it applies v: those that fail
// CheckMembershipChange have no effect. It returns the configuration in
// force after v (cur itself when v changes nothing).
func FoldMembership(cur *messages.Membership, v *messages.Value) *messages.Membership {
	for _, cmd := range v.GetCommands() {
		if !cmd.Membership {
			continue
		}
		next := &messages.Membership{}
		if proto.Unmarshal(cmd.Payload, next) != nil || CheckMembershipChange(cur, next) != nil {
			continue
		}
		cur = next
	}
	return cur
}
