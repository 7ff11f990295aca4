package paxos

import (
	"errors"
	"fmt"
	"slices"

	"github.com/livepaxos/livepaxos/messages"
)

// ErrMembership refuses a membership change (§5.4).
var ErrMembership = errors.New("paxos: membership change refused")

// MembershipVoters returns the voters of m, sorted.
func MembershipVoters(m *messages.Membership) []uint32 {
	var ids []uint32
	for _, mem := range m.GetMembers() {
		if mem.Role != "learner" {
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
		if mem.Role == "learner" {
			ids = append(ids, mem.Id)
		}
	}
	slices.Sort(ids)
	return ids
}

// CheckMembershipChange decides whether next, chosen in the log, takes
// effect after cur. Every replica decides alike, since both come from the
// same log: next must carry the version after cur's, and (for now) the same
// voters, so that no quorum changes; learners come and go freely (they are
// never counted).
func CheckMembershipChange(cur, next *messages.Membership) error {
	if next.GetVersion() != cur.GetVersion()+1 {
		return fmt.Errorf("%w: version %d does not follow %d (another change came first)", ErrMembership, next.GetVersion(), cur.GetVersion())
	}
	if !slices.Equal(MembershipVoters(next), MembershipVoters(cur)) {
		return fmt.Errorf("%w: the voters would change", ErrMembership)
	}
	seen := map[uint32]bool{}
	for _, m := range next.Members {
		if m.Id == 0 || seen[m.Id] {
			return fmt.Errorf("%w: member id %d missing or twice", ErrMembership, m.Id)
		}
		seen[m.Id] = true
	}
	return nil
}
