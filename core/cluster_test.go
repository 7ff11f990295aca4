package core

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// The in-memory test cluster: n replica cores, each behind the Driver with
// in-memory devices (a log that is durable by the next step, a FIFO
// network that can drop and partition, a manual clock), all in one
// goroutine. The simulator (package sim) is the long version with
// faults; this is for scenarios that read like the paper.

var t0 = time.Unix(1_000_000, 0)

// The lease the test cluster's replicas use (§5.2).
const (
	testLease = 2 * time.Second
	testDrift = 100 * time.Millisecond
)

// memSM is the state machine: it records the commands applied, and
// answers a query with the number applied. As a Snapshotter it names the
// instance snapAt (0: none, the replica's) and writes how many commands it
// applied.
type memSM struct {
	applied []string
	snapAt  uint64
	// failWrites makes writing a snapshot fail (a full disk).
	failWrites bool
}

func (m *memSM) BeginSnapshot() (uint64, func(io.Writer) error, error) {
	n := len(m.applied)
	return m.snapAt, func(w io.Writer) error { _, err := fmt.Fprint(w, n); return err }, nil
}

func (m *memSM) Restore(io.Reader) error { return nil }

func (m *memSM) Apply(_ uint64, cmd []byte) ([]byte, error) {
	m.applied = append(m.applied, string(cmd))
	return []byte(cmd), nil
}

func (m *memSM) Query([]byte) ([]byte, error) { return []byte{byte(len(m.applied))}, nil }

// node is one replica of the test cluster and its devices.
type node struct {
	c    *testCluster
	id   uint32
	d    *Driver
	sm   *memSM
	down bool
	// log is every record appended, durable: the in-memory disk.
	log []*messages.Record
	// entries are the entries handed to the apply side, in order.
	entries []*messages.Entry
	replies []Reply
	reads   []*messages.ClientResponse
	answers []proto.Message
	// snapshots are the handles of the snapshots written.
	snapshots []*messages.SnapshotMeta
}

func (n *node) r() *Replica { return n.d.Replica() }

// Observer: the entries applied.
func (n *node) Answered(paxos.Envelope) {}
func (n *node) Released(paxos.Envelope) {}
func (n *node) Applying(a *Apply)       { n.entries = append(n.entries, a.Entry) }
func (n *node) Checked(paxos.Verdict)   {}

// Host.
func (n *node) Now() time.Time { return n.c.now }
func (n *node) Append(recs []*messages.Record, _ WriteMode, durable func()) {
	n.log = append(n.log, recs...)
	if durable != nil {
		n.c.later(func() {
			if !n.down {
				durable()
			}
		})
	}
}
func (n *node) Prove([]*messages.Member) error    { return nil }
func (n *node) Send(to uint32, msg proto.Message) { n.c.send(n.id, to, msg) }
func (n *node) Reply(rep Reply)                   { n.replies = append(n.replies, rep) }
func (n *node) Answer(_ any, msg proto.Message)   { n.answers = append(n.answers, msg) }
func (n *node) Checksum(i uint64, sum func() []byte) {
	n.c.later(func() { n.d.ChecksumComputed(i, sum()) })
}
func (n *node) WriteSnapshot(meta *messages.SnapshotMeta, write func(io.Writer) error) {
	n.snapshots = append(n.snapshots, meta)
	err := write(io.Discard)
	if n.sm.failWrites {
		err = errors.New("no space left on device")
	}
	n.c.later(func() { n.d.SnapshotWritten(SnapshotResult{Instance: meta.Instance, Err: err}) })
}
func (n *node) Fetch(paxos.SnapshotOffer) {}
func (n *node) ScheduleFlush()            { n.c.later(func() { n.d.Flush() }) }
func (n *node) Fatal(err error) {
	if !n.c.stopsAllowed {
		n.c.t.Fatalf("node %d stopped: %v", n.id, err)
	}
	n.down = true
}
func (n *node) Publish(View, *messages.Membership) {}
func (n *node) AnswerRead(_ any, resp *messages.ClientResponse, _ Decision, _ error) {
	n.reads = append(n.reads, resp)
}

// testCluster runs n replicas in one goroutine: a FIFO of deliveries and
// durability reports that can drop and partition, and a manual clock.
type testCluster struct {
	t     *testing.T
	now   time.Time
	nodes map[uint32]*node
	ids   []uint32
	queue []func()
	// cut[a][b] drops messages from a to b.
	cut  map[[2]uint32]bool
	rng  *rand.Rand
	drop float64
	// planted is the bug every replica runs with.
	planted paxos.PlantedBug
	// stopsAllowed: a replica that stops (Fatal) is taken down instead of
	// failing the test (fuzzing: a forged message may rightly stop one).
	stopsAllowed bool
}

func newTestCluster(t *testing.T, n int, seed uint64) *testCluster {
	return newPlantedCluster(t, n, seed, paxos.BugNone)
}

func newPlantedCluster(t *testing.T, n int, seed uint64, bug paxos.PlantedBug) *testCluster {
	return newTestClusterWith(t, n, seed, bug, nil)
}

// newTestClusterWith is newPlantedCluster with configure, if not nil,
// changing each replica's Config first.
func newTestClusterWith(t *testing.T, n int, seed uint64, bug paxos.PlantedBug, configure func(*Config)) *testCluster {
	c := &testCluster{t: t, now: t0, nodes: map[uint32]*node{}, cut: map[[2]uint32]bool{},
		rng: rand.New(rand.NewPCG(seed, seed^0xabcdef)), planted: bug}
	for i := 1; i <= n; i++ {
		c.ids = append(c.ids, uint32(i))
	}
	members := &messages.Membership{Version: 1, Members: voters(c.ids...)}
	for _, id := range c.ids {
		nd := &node{c: c, id: id, sm: &memSM{}}
		cfg := Config{ID: id, Members: members, Cluster: testClusterHash, Planted: bug, Observer: nd,
			Proposer: paxos.ProposerConfig{Rand: rand.New(rand.NewPCG(seed, uint64(id))), MaxBatchCommands: 4,
				MaxInflight: 3, LeaseTimeout: testLease, ClockDriftMax: testDrift}}
		if configure != nil {
			configure(&cfg)
		}
		d, err := NewDriver(cfg, nd.sm, nd)
		if err != nil {
			t.Fatal(err)
		}
		nd.d = d
		if err := d.FinishRestore(); err != nil {
			t.Fatal(err)
		}
		c.nodes[id] = nd
	}
	return c
}

// voters are members, each id a voter.
func voters(ids ...uint32) []*messages.Member {
	var ms []*messages.Member
	for _, id := range ids {
		ms = append(ms, &messages.Member{Id: id, Role: paxos.VoterRole})
	}
	return ms
}

// later queues fn after what is queued already.
func (c *testCluster) later(fn func()) { c.queue = append(c.queue, fn) }

// send queues a message; the wire copies it.
func (c *testCluster) send(from, to uint32, msg proto.Message) {
	msg = proto.Clone(msg)
	messages.StampCluster(msg, testClusterHash) // as a member's core does (route)
	c.later(func() {
		n := c.nodes[to]
		if n == nil || n.down || c.cut[[2]uint32{from, to}] || (c.drop > 0 && c.rng.Float64() < c.drop) {
			return
		}
		n.d.Step(msg)
	})
}

// run delivers what is queued until nothing is left (bounded).
func (c *testCluster) run() {
	for steps := 0; len(c.queue) > 0; steps++ {
		if steps > 200000 {
			c.t.Fatal("network did not go quiet")
		}
		fn := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		fn()
	}
	c.queue = nil
}

// advance moves the clock in ticks, ticking every live replica and running
// the network after each tick.
func (c *testCluster) advance(d time.Duration) {
	const tick = 10 * time.Millisecond
	for end := c.now.Add(d); c.now.Before(end); {
		c.now = c.now.Add(tick)
		for _, id := range c.ids {
			if n := c.nodes[id]; !n.down {
				n.d.Tick()
			}
		}
		c.run()
	}
}

// master returns the live master with the highest ballot. A master that
// was down may still think it is master until it hears of the new one:
// that is allowed; two masters holding leases at once is not (§5.2).
func (c *testCluster) master() *node {
	var m, leased *node
	for _, id := range c.ids {
		n := c.nodes[id]
		if n.down || !n.r().IsMaster() {
			continue
		}
		if _, ok := n.r().LeaseUntil(c.now); ok {
			if leased != nil {
				c.t.Fatalf("two masters hold leases: %d (ballot %d) and %d (ballot %d) at %v",
					leased.id, leased.r().Ballot(), n.id, n.r().Ballot(), c.now.Sub(t0))
			}
			leased = n
		}
		if m == nil || n.r().Ballot() > m.r().Ballot() {
			m = n
		}
	}
	return m
}

func (c *testCluster) waitMaster() *node {
	for range 100 {
		if m := c.master(); m != nil {
			return m
		}
		c.advance(100 * time.Millisecond)
	}
	c.t.Fatal("no master elected")
	return nil
}

// submit proposes payload through n, as a client of n.
func (c *testCluster) submit(n *node, payload string) {
	n.d.Propose(&messages.Command{ReplyAddress: "client", ReplyId: "c", RequestId: uint64(len(payload)), Payload: []byte(payload)})
}

// others returns the nodes other than n, in id order.
func (c *testCluster) others(n *node) []*node {
	var out []*node
	for _, id := range c.ids {
		if id != n.id {
			out = append(out, c.nodes[id])
		}
	}
	return out
}

// isolate cuts every link between n and the others.
func (c *testCluster) isolate(n *node) {
	for _, o := range c.others(n) {
		c.cut[[2]uint32{n.id, o.id}] = true
		c.cut[[2]uint32{o.id, n.id}] = true
	}
}

// otherMaster returns a live master other than old, or nil.
func (c *testCluster) otherMaster(old *node) *node {
	for _, o := range c.others(old) {
		if !o.down && o.r().IsMaster() {
			return o
		}
	}
	return nil
}

// appliedPayloads lists a node's applied commands in order.
func (n *node) appliedPayloads() []string { return n.sm.applied }

// checkAgreement asserts every node's applied sequence is a prefix of the
// longest one and instances are applied in order, each once.
func (c *testCluster) checkAgreement() {
	var longest []*messages.Entry
	for _, id := range c.ids {
		if a := c.nodes[id].entries; len(a) > len(longest) {
			longest = a
		}
	}
	if len(longest) == 0 {
		c.t.Fatal("nothing applied anywhere")
	}
	for _, id := range c.ids {
		for i, e := range c.nodes[id].entries {
			if e.Instance != uint64(i+1) {
				c.t.Fatalf("node %d applied instance %d at position %d", id, e.Instance, i)
			}
			if !proto.Equal(e.Value, longest[i].Value) {
				c.t.Fatalf("node %d applied %v at instance %d, another node %v", id, e.Value, e.Instance, longest[i].Value)
			}
		}
	}
}
