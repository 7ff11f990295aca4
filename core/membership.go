package core

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// ErrMembership refuses a membership change that cannot be made.
var ErrMembership = errors.New("core: membership change refused")

// PromoteLag is how far behind the chosen log a learner may be and still
// be promoted to voter: a voter that cannot vote yet would cost the group
// a failure it could otherwise survive.
const PromoteLag = 1000

// Members returns the membership in force as this replica applied the log
// (§5.4). It is never changed in place: a change replaces it.
func (r *Replica) Members() *messages.Membership { return r.members }

// Address returns node id's address as the membership in force records
// it ("" if it is not a member).
func (r *Replica) Address(id uint32) string { return paxos.MemberOf(r.members, id).GetAddress() }

// ChangeMembers proposes the membership change req asks for (§5.4): add a
// learner, promote a learner to voter, or remove a member, one at a time,
// through the log like any command. cmd carries the client's return
// address; its answer, the new version, comes in Ready.Replies.
func (r *Replica) ChangeMembers(req *messages.MembersRequest, cmd *messages.Command, now time.Time) {
	cmd.Membership, cmd.RequestId = true, req.RequestId
	next, err := changed(r.members, req)
	if err == nil {
		cmd.Payload, err = proto.Marshal(next)
	}
	if err != nil {
		r.refuse(cmd, messages.ErrorCode_ERROR_CODE_INVALID, err.Error())
		return
	}
	r.Propose(cmd, now)
}

// changed returns the next membership for a request, or why not: add a
// learner, promote a learner to voter, remove a member, one at a time, or
// record a member's client address. The master checks the result against
// the configuration at its frontier before proposing it
// (paxos.CheckMembershipChange).
func changed(cur *messages.Membership, req *messages.MembersRequest) (*messages.Membership, error) {
	next := proto.Clone(cur).(*messages.Membership)
	next.Version = cur.Version + 1
	member := func(id uint32) *messages.Member { return paxos.MemberOf(cur, id) }
	one := func(add, remove, promote, client bool) bool {
		return add == (req.Add != nil) && remove == (req.Remove != 0) && promote == (req.Promote != 0) &&
			client == (req.ClientAddress != nil)
	}
	switch {
	case one(true, false, false, false):
		if req.Add.Id == 0 || req.Add.Address == "" {
			return nil, fmt.Errorf("%w: a member needs an id and an address", ErrMembership)
		}
		if req.Add.Id >= paxos.BallotStride {
			return nil, fmt.Errorf("%w: node id %d is over the limit %d (ballots are unique only for ids below %d)",
				ErrMembership, req.Add.Id, paxos.BallotStride-1, paxos.BallotStride)
		}
		if member(req.Add.Id) != nil {
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
	case one(false, true, false, false):
		if member(req.Remove) == nil {
			return nil, fmt.Errorf("%w: node %d is not a member", ErrMembership, req.Remove)
		}
		next.Members = slices.DeleteFunc(next.Members, func(m *messages.Member) bool { return m.Id == req.Remove })
	case one(false, false, true, false):
		m := member(req.Promote)
		if m == nil {
			return nil, fmt.Errorf("%w: node %d is not a member", ErrMembership, req.Promote)
		}
		if m.Role != paxos.LearnerRole {
			return nil, fmt.Errorf("%w: node %d is already a voter", ErrMembership, req.Promote)
		}
		paxos.MemberOf(next, req.Promote).Role = paxos.VoterRole
	case one(false, false, false, true):
		id, addr := req.ClientAddress.Id, req.ClientAddress.ClientAddress
		m := member(id)
		if m == nil {
			return nil, fmt.Errorf("%w: node %d is not a member", ErrMembership, id)
		}
		if err := checkHostPort(addr); err != nil {
			return nil, fmt.Errorf("%w: client address of node %d: %v", ErrMembership, id, err)
		}
		if m.ClientAddress == addr {
			return nil, fmt.Errorf("%w: node %d's client address is %s already", ErrMembership, id, addr)
		}
		paxos.MemberOf(next, id).ClientAddress = addr
	default:
		return nil, fmt.Errorf("%w: say one member to add, promote or remove, or one client address to record", ErrMembership)
	}
	if err := paxos.CheckMembershipChange(cur, next); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMembership, err)
	}
	return next, nil
}

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

// sortedMembers returns a copy of m's members in id order.
func sortedMembers(m *messages.Membership) []*messages.Member {
	if m == nil {
		return nil
	}
	c := proto.Clone(m).(*messages.Membership)
	slices.SortFunc(c.Members, func(a, b *messages.Member) int { return int(a.Id) - int(b.Id) })
	return c.Members
}

// role names this replica's membership role (§5.4) for status.
func (r *Replica) role() string {
	m := paxos.MemberOf(r.members, r.id)
	switch {
	case m == nil && r.cfg.Joining && r.members.GetVersion() == 1:
		return "joining"
	case m == nil:
		return "removed" // not (or no longer) in the configuration it applied
	case m.Role == paxos.LearnerRole:
		return "learner"
	case m.Incarnation != 0 && r.cfg.Incarnation != 0 && m.Incarnation != r.cfg.Incarnation:
		// It lost its disk (§5.1): it votes for nothing until the group
		// records its new incarnation.
		return "non-voting (rebuilding)"
	}
	return "voter"
}

// isVoter reports whether this replica is a voter of the membership it
// applied.
func (r *Replica) isVoter() bool {
	m := paxos.MemberOf(r.members, r.id)
	return m != nil && m.Role != paxos.LearnerRole
}
