package sim

import "google.golang.org/protobuf/proto"

// clientBase: endpoint ids at or above it are clients, below it nodes.
const clientBase = 1000

// clientRequest is a client's request to a node's proposer (the
// ClientRequest of the wire protocol plus the sender's address, which the
// actor system supplies in production).
type clientRequest struct {
	client  uint32
	reqID   uint64
	payload []byte
	// read: a get served as a read (§5.2) instead of through the log.
	read readMode
}

// readMode is how a simulated get is served.
type readMode uint8

const (
	readLog    readMode = iota // through the log, like a write
	readLease                  // the master's lease read (§5.2)
	readQuorum                 // confirmed with a majority first
)

func (m readMode) String() string { return [...]string{"log", "lease", "quorum"}[m] }

// deadLetter tells a client its request reached a node that is down, as
// the actor system's dead-letter reply does: it was never delivered, so it
// is safe to send elsewhere.
type deadLetter struct{ reqID uint64 }

// network carries messages between endpoints with the faults of the current
// mode: loss, duplication, delay (which reorders), and partitions between
// nodes, symmetric or one-way.
type network struct {
	s *Simulator
	// cut[{a, b}] drops every message from node a to node b. Only looked
	// up, never iterated.
	cut map[[2]uint32]bool
	// drop, if set, loses the messages it picks: scenario tests use it to
	// aim a fault at one kind of message.
	drop   func(from, to uint32, msg any) bool
	faults Faults
	faulty bool
	sent   int
	lost   int
}

func newNetwork(s *Simulator) *network {
	return &network{s: s, cut: make(map[[2]uint32]bool), faults: s.cfg.Faults, faulty: true}
}

func (n *network) partitioned(from, to uint32) bool {
	return from < clientBase && to < clientBase && n.cut[[2]uint32{from, to}]
}

// send puts msg on the wire. The wire copies: the receiver never shares
// memory with the sender, as with real remoting.
func (n *network) send(from, to uint32, msg any) {
	n.sent++
	if pm, ok := msg.(proto.Message); ok {
		msg = proto.Clone(pm)
	}
	r := n.s.rng
	copies := 1
	// A node's messages to itself stay in the process: never lost,
	// duplicated or cut, only delayed like any mailbox.
	// Liveness mode's cut (liveness.go) holds outside safety mode too.
	if from != to && n.partitioned(from, to) {
		n.lost++
		n.s.tracef("net  drop %s -> %s %s", endpointName(from), endpointName(to), describe(msg))
		return
	}
	if n.faulty && from != to {
		if (n.faults.Drop > 0 && r.Float64() < n.faults.Drop) ||
			(n.drop != nil && n.drop(from, to, msg)) {
			n.lost++
			n.s.tracef("net  drop %s -> %s %s", endpointName(from), endpointName(to), describe(msg))
			return
		}
		// Client traffic is at most once (a duplicated write would apply
		// twice, and the real transport never duplicates); the protocol's
		// own messages must survive duplication.
		if from < clientBase && to < clientBase && n.faults.Duplicate > 0 && r.Float64() < n.faults.Duplicate {
			copies = 2
		}
	}
	for range copies {
		d := n.delay()
		if from == to {
			d = min(d, int64(n.faults.DelayMax))
		}
		n.s.sched.after(d, func() {
			if n.partitioned(from, to) { // cut while in flight
				n.lost++
				n.s.tracef("net  cut  %s -> %s %s", endpointName(from), endpointName(to), describe(msg))
				return
			}
			n.s.deliver(from, to, msg)
		})
	}
}

// delay draws one message's transit time. Outside safety mode messages
// still take a little while and can pass each other, but none is held long.
func (n *network) delay() int64 {
	r := n.s.rng
	f := n.faults
	if !n.faulty {
		return int64(f.DelayMin) + r.Int64N(int64(f.DelayMax-f.DelayMin)+1)
	}
	if f.LongDelay > 0 && r.Float64() < f.LongDelay {
		return r.Int64N(int64(f.LongDelayMax) + 1)
	}
	return int64(f.DelayMin) + r.Int64N(int64(f.DelayMax-f.DelayMin)+1)
}

// partition cuts the nodes of side off from the rest; oneWay cuts only the
// messages from side to the rest.
func (n *network) partition(side []uint32, all []uint32, oneWay bool) {
	in := make([]bool, len(all)+1)
	for _, id := range side {
		in[id] = true
	}
	for _, a := range all {
		for _, b := range all {
			if in[a] && !in[b] {
				n.cut[[2]uint32{a, b}] = true
				if !oneWay {
					n.cut[[2]uint32{b, a}] = true
				}
			}
		}
	}
}

func (n *network) heal() { clear(n.cut) }

// quiet ends safety mode: no more loss, duplication, long delays or
// partitions.
func (n *network) quiet() {
	n.faulty = false
	n.heal()
}
