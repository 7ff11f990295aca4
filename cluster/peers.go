package cluster

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
)

// Peers maps node ids to host:port. It is the static membership of the group:
// every node is started with the same --peers, so ids and addresses must be
// unambiguous and printable in one canonical form.
type Peers map[uint32]string

// ErrBadPeers is wrapped by every ParsePeers error, so callers can tell a
// usage error (exit 2) from a runtime failure.
var ErrBadPeers = errors.New("cluster: malformed --peers")

// ParsePeers parses "1=127.0.0.1:7001,2=127.0.0.1:7002,...".
//
// Ids are positive decimal integers that fit in uint32, written without sign
// or leading zeros (so that String gives back what the operator typed).
// Addresses are host:port with a non-empty host and a decimal port in 1..65535.
// Spaces around entries are ignored. Empty input, empty entries, a missing
// '=', duplicate ids and duplicate addresses are rejected; the error names the
// offending entry and wraps ErrBadPeers.
//
// Addresses are compared as strings: protoactor routes a message by comparing
// the address in its target PID with the receiving system's address string,
// so "localhost:7001" and "127.0.0.1:7001" are different nodes to it and the
// operator must use one spelling everywhere.
func ParsePeers(s string) (Peers, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty list (want id=host:port,...)", ErrBadPeers)
	}
	peers := make(Peers)
	byAddr := make(map[string]uint32)
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, fmt.Errorf("%w: entry %d is empty", ErrBadPeers, i+1)
		}
		idText, addr, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("%w: entry %q has no '=' (want id=host:port)", ErrBadPeers, entry)
		}
		idText, addr = strings.TrimSpace(idText), strings.TrimSpace(addr)
		id, err := parseID(idText)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %q: %v", ErrBadPeers, entry, err)
		}
		if err := checkAddr(addr); err != nil {
			return nil, fmt.Errorf("%w: entry %q: %v", ErrBadPeers, entry, err)
		}
		if prev, dup := peers[id]; dup {
			return nil, fmt.Errorf("%w: duplicate id %d (%s and %s)", ErrBadPeers, id, prev, addr)
		}
		if prev, dup := byAddr[addr]; dup {
			return nil, fmt.Errorf("%w: duplicate address %s (ids %d and %d)", ErrBadPeers, addr, prev, id)
		}
		peers[id] = addr
		byAddr[addr] = id
	}
	return peers, nil
}

func parseID(s string) (uint32, error) {
	n, err := parseDecimal("id", s, "missing id before '='", MaxNodeID, fmt.Sprintf("is over the limit %d", MaxNodeID))
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, errors.New("id 0 is reserved (ids start at 1)")
	}
	return uint32(n), nil
}

// parseDecimal accepts s, what ("id", "port") in --peers, only as a
// canonical decimal number up to limit: digits only (no sign, space or
// base prefix) and no leading zero, so that each number has one spelling
// and two spellings of one peer list cannot differ. missing is the error
// for an empty s; over says how a larger number is wrong.
func parseDecimal(what, s, missing string, limit uint64, over string) (uint64, error) {
	if s == "" {
		return 0, errors.New(missing)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%s %q is not a decimal number", what, s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%s %q has a leading zero", what, s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > limit {
		return 0, fmt.Errorf("%s %q %s", what, s, over)
	}
	return n, nil
}

// MaxNodeID is the largest node id: a ballot is round*65536 + the id of the
// node that owns it (paxos.BallotStride), so ballots are unique only for ids
// below 65,536.
const MaxNodeID = 1<<16 - 1

// CheckNodeID refuses a node id outside 1..MaxNodeID.
func CheckNodeID(id uint64) error {
	if id == 0 || id > MaxNodeID {
		return fmt.Errorf("node id %d is outside 1..%d (ballots are unique only for ids below %d)", id, MaxNodeID, MaxNodeID+1)
	}
	return nil
}

// CheckAddress accepts host:port with a non-empty host and a port in
// 1..65535: an address a node can listen on and others can dial.
func CheckAddress(addr string) error { return checkAddr(addr) }

// checkAddr accepts host:port with a non-empty host and a port in 1..65535.
// Port 0 is refused because peers must know where to dial.
func checkAddr(addr string) error {
	if addr == "" {
		return errors.New("missing address after '='")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q is not host:port", addr)
	}
	if host == "" {
		return fmt.Errorf("address %q has no host", addr)
	}
	if strings.ContainsAny(host, " \t,=/") {
		return fmt.Errorf("address %q has an invalid host", addr)
	}
	p, err := parsePort(port)
	if err != nil {
		return fmt.Errorf("address %q: %v", addr, err)
	}
	if p == 0 {
		return fmt.Errorf("address %q: port must be 1..65535", addr)
	}
	return nil
}

// parsePort accepts a canonical decimal port 0..65535.
func parsePort(s string) (int, error) {
	n, err := parseDecimal("port", s, "missing port", 65535, "must be 1..65535")
	return int(n), err
}

// IDs returns the node ids in increasing order, so that iteration (for
// example, the order in which a proposer contacts acceptors) is deterministic.
func (p Peers) IDs() []uint32 {
	ids := make([]uint32, 0, len(p))
	for id := range p {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// String returns the canonical form "1=a,2=b", sorted by id; ParsePeers of it
// gives back an equal Peers. Logs and status output use it so that two nodes'
// membership can be compared as strings.
func (p Peers) String() string {
	var b strings.Builder
	for i, id := range p.IDs() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(id), 10))
		b.WriteByte('=')
		b.WriteString(p[id])
	}
	return b.String()
}

// RolePID returns the PID of a role actor (proposer, acceptor, learner, ...)
// at the node listening on addr. Every node spawns its roles as children of
// one actor named "replica", so a peer can address a role without asking for
// its PID first.
func RolePID(addr, role string) *actor.PID {
	return actor.NewPID(addr, "replica/"+role)
}
