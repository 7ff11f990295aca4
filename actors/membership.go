package actors

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// membersView is the group's configuration as this replica has applied the
// log (§5.4). It is replaced whole, never changed in place, so the actors
// read it through an atomic pointer.
type membersView struct {
	m        *messages.Membership
	version  uint64
	addrs    map[uint32]string
	learners map[uint32]bool
	// clients are the members' client API addresses, as recorded.
	clients map[uint32]string
}

// ErrMembership refuses a membership change that cannot be made.
var ErrMembership = errors.New("actors: membership change refused")

func viewOf(m *messages.Membership) *membersView {
	v := &membersView{m: m, version: m.Version, addrs: map[uint32]string{}, learners: map[uint32]bool{},
		clients: map[uint32]string{}}
	for _, mem := range m.Members {
		v.addrs[mem.Id] = mem.Address
		if mem.ClientAddress != "" {
			v.clients[mem.Id] = mem.ClientAddress
		}
		if mem.Role == paxos.LearnerRole {
			v.learners[mem.Id] = true
		}
	}
	return v
}

// initialMembership is version 1: the configured voters and learners.
func initialMembership(c *Config) *messages.Membership {
	m := &messages.Membership{Version: 1}
	for _, id := range peerIDs(c.Peers) {
		m.Members = append(m.Members, &messages.Member{Id: id, Address: c.Peers[id], Role: paxos.VoterRole})
	}
	for _, id := range peerIDs(c.Learners) {
		m.Members = append(m.Members, &messages.Member{Id: id, Address: c.Learners[id], Role: paxos.LearnerRole})
	}
	return m
}

// membership returns the view as a message (a copy: callers may change it).
func (v *membersView) membership() *messages.Membership {
	m := proto.Clone(v.m).(*messages.Membership)
	slices.SortFunc(m.Members, func(a, b *messages.Member) int { return int(a.Id) - int(b.Id) })
	return m
}

// ids lists every member's id.
func (v *membersView) ids() []uint32 {
	ids := make([]uint32, 0, len(v.addrs))
	for id := range v.addrs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// PromoteLag is how far behind the chosen log a learner may be and still
// be promoted to voter: a voter that cannot vote yet would cost the group
// a failure it could otherwise survive.
const PromoteLag = 1000

// changed returns the next membership for a request, or why not (§5.4):
// add a learner, promote a learner to voter, or remove a member, one at a
// time. The master checks the result against the configuration at its
// frontier before proposing it (paxos.CheckMembershipChange).
func (v *membersView) changed(req *messages.MembersRequest) (*messages.Membership, error) {
	next := v.membership()
	next.Version = v.version + 1
	switch {
	case req.Add != nil && req.Remove == 0 && req.Promote == 0 && req.ClientAddress == nil:
		if req.Add.Id == 0 || req.Add.Address == "" {
			return nil, fmt.Errorf("%w: a member needs an id and an address", ErrMembership)
		}
		if _, ok := v.addrs[req.Add.Id]; ok {
			return nil, fmt.Errorf("%w: node %d is already a member", ErrMembership, req.Add.Id)
		}
		if err := checkHostPort(req.Add.Address); err != nil {
			return nil, fmt.Errorf("%w: node %d: %v", ErrMembership, req.Add.Id, err)
		}
		if ca := req.Add.ClientAddress; ca != "" {
			if err := checkHostPort(ca); err != nil {
				return nil, fmt.Errorf("%w: client address of node %d: %v", ErrMembership, req.Add.Id, err)
			}
		}
		next.Members = append(next.Members, &messages.Member{Id: req.Add.Id, Address: req.Add.Address, Role: paxos.LearnerRole,
			ClientAddress: req.Add.ClientAddress})
	case req.Add == nil && req.Remove != 0 && req.Promote == 0 && req.ClientAddress == nil:
		if _, ok := v.addrs[req.Remove]; !ok {
			return nil, fmt.Errorf("%w: node %d is not a member", ErrMembership, req.Remove)
		}
		next.Members = slices.DeleteFunc(next.Members, func(m *messages.Member) bool { return m.Id == req.Remove })
	case req.Add == nil && req.Remove == 0 && req.Promote != 0 && req.ClientAddress == nil:
		if _, ok := v.addrs[req.Promote]; !ok {
			return nil, fmt.Errorf("%w: node %d is not a member", ErrMembership, req.Promote)
		}
		if !v.learners[req.Promote] {
			return nil, fmt.Errorf("%w: node %d is already a voter", ErrMembership, req.Promote)
		}
		paxos.MemberOf(next, req.Promote).Role = paxos.VoterRole
	case req.Add == nil && req.Remove == 0 && req.Promote == 0 && req.ClientAddress != nil:
		id, addr := req.ClientAddress.Id, req.ClientAddress.ClientAddress
		if _, ok := v.addrs[id]; !ok {
			return nil, fmt.Errorf("%w: node %d is not a member", ErrMembership, id)
		}
		if err := checkHostPort(addr); err != nil {
			return nil, fmt.Errorf("%w: client address of node %d: %v", ErrMembership, id, err)
		}
		if v.clients[id] == addr {
			return nil, fmt.Errorf("%w: node %d's client address is %s already", ErrMembership, id, addr)
		}
		paxos.MemberOf(next, id).ClientAddress = addr
	default:
		return nil, fmt.Errorf("%w: say one member to add, promote or remove, or one client address to record", ErrMembership)
	}
	if err := paxos.CheckMembershipChange(v.m, next); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMembership, err)
	}
	return next, nil
}

// applyMembership applies a membership command from the log, the same way
// on every replica: it takes effect only if its version follows the one in
// force and paxos.CheckMembershipChange allows it (one voter at a time).
func (r *Replica) applyMembership(instance uint64, payload []byte) ([]byte, error) {
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
	r.membersAt = instance
	r.membersChanged = true
	r.cfg.Logger.Info("membership changed", "node", r.cfg.NodeID, "version", m.Version, "voters", paxos.MembershipVoters(m), "learners", paxos.MembershipLearners(m))
	return []byte(strconv.FormatUint(m.Version, 10)), nil
}

// view returns the membership in force.
func (r *Replica) view() *membersView { return r.members.Load() }

// MaxAddressBytes bounds a member's peer or client address.
const MaxAddressBytes = 256

// checkHostPort accepts host:port with a non-empty host and a port in
// 1..65535: what a client can dial.
func checkHostPort(addr string) error {
	if len(addr) > MaxAddressBytes {
		return fmt.Errorf("address is %d bytes, limit %d", len(addr), MaxAddressBytes)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("address %q is not host:port", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("address %q: port must be 1..65535", addr)
	}
	return nil
}
