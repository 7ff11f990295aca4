package actors

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// membersView is the group's configuration as this replica has applied the
// log (§5.4): every member's address, which are learners, and the version.
// It is replaced whole, never changed in place, so the actors read it
// through an atomic pointer.
type membersView struct {
	version  uint64
	addrs    map[uint32]string
	learners map[uint32]bool
}

// ErrMembership refuses a membership change that cannot be made.
var ErrMembership = errors.New("actors: membership change refused")

func viewOf(m *messages.Membership) *membersView {
	v := &membersView{version: m.Version, addrs: map[uint32]string{}, learners: map[uint32]bool{}}
	for _, mem := range m.Members {
		v.addrs[mem.Id] = mem.Address
		if mem.Role == "learner" {
			v.learners[mem.Id] = true
		}
	}
	return v
}

// initialMembership is version 1: the configured voters and learners.
func initialMembership(c *Config) *messages.Membership {
	m := &messages.Membership{Version: 1}
	for _, id := range peerIDs(c.Peers) {
		m.Members = append(m.Members, &messages.Member{Id: id, Address: c.Peers[id], Role: "voter"})
	}
	for _, id := range peerIDs(c.Learners) {
		m.Members = append(m.Members, &messages.Member{Id: id, Address: c.Learners[id], Role: "learner"})
	}
	return m
}

// membership returns the view as a message.
func (v *membersView) membership() *messages.Membership {
	m := &messages.Membership{Version: v.version}
	ids := make([]uint32, 0, len(v.addrs))
	for id := range v.addrs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		role := "voter"
		if v.learners[id] {
			role = "learner"
		}
		m.Members = append(m.Members, &messages.Member{Id: id, Address: v.addrs[id], Role: role})
	}
	return m
}

// changed returns the next membership for a request, or why not. Only
// learners come and go for now: the voters, and so every quorum, stay as
// configured (changes of voters need per-instance quorums, see
// docs/membership.md).
func (v *membersView) changed(req *messages.MembersRequest) (*messages.Membership, error) {
	next := v.membership()
	next.Version = v.version + 1
	switch {
	case req.Add != nil && req.Remove == 0:
		if req.Add.Id == 0 || req.Add.Address == "" {
			return nil, fmt.Errorf("%w: a member needs an id and an address", ErrMembership)
		}
		if _, ok := v.addrs[req.Add.Id]; ok {
			return nil, fmt.Errorf("%w: node %d is already a member", ErrMembership, req.Add.Id)
		}
		next.Members = append(next.Members, &messages.Member{Id: req.Add.Id, Address: req.Add.Address, Role: "learner"})
	case req.Add == nil && req.Remove != 0:
		if _, ok := v.addrs[req.Remove]; !ok {
			return nil, fmt.Errorf("%w: node %d is not a member", ErrMembership, req.Remove)
		}
		if !v.learners[req.Remove] {
			return nil, fmt.Errorf("%w: node %d is a voter; removing voters is not built yet", ErrMembership, req.Remove)
		}
		next.Members = slices.DeleteFunc(next.Members, func(m *messages.Member) bool { return m.Id == req.Remove })
	default:
		return nil, fmt.Errorf("%w: say one member to add or one to remove", ErrMembership)
	}
	return next, nil
}

// applyMembership applies a membership command from the log, the same way
// on every replica: it takes effect only if its version follows the one in
// force and it keeps the voters.
func (r *Replica) applyMembership(payload []byte) ([]byte, error) {
	m := &messages.Membership{}
	if err := proto.Unmarshal(payload, m); err != nil {
		return nil, fmt.Errorf("%w: does not decode: %v", ErrMembership, err)
	}
	cur := r.view()
	if err := paxos.CheckMembershipChange(cur.membership(), m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMembership, err)
	}
	next := viewOf(m)
	r.members.Store(next)
	r.membersChanged = true
	r.cfg.Logger.Info("membership changed", "node", r.cfg.NodeID, "version", m.Version, "learners", paxos.MembershipLearners(m))
	return []byte(strconv.FormatUint(m.Version, 10)), nil
}

// view returns the membership in force.
func (r *Replica) view() *membersView { return r.members.Load() }
