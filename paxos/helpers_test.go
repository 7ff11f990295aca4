package paxos

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

var t0 = time.Unix(1_000_000, 0)

func cmd(origin uint32, id uint64, payload string) *messages.Command {
	return &messages.Command{Origin: origin, ReplyAddress: "client", ReplyId: "c", RequestId: id, Payload: []byte(payload)}
}

func value(payloads ...string) *messages.Value {
	v := &messages.Value{}
	for i, p := range payloads {
		v.Commands = append(v.Commands, cmd(9, uint64(i), p))
	}
	return v
}

// payloads flattens a value into its commands' payloads ("<noop>" for a
// no-op), for readable comparisons.
func payloads(v *messages.Value) []string {
	if v.GetNoop() {
		return []string{"<noop>"}
	}
	var out []string
	for _, c := range v.GetCommands() {
		out = append(out, string(c.Payload))
	}
	return out
}

// node is one replica's three roles, wired the way the actor shells wire
// them, with persistence assumed to succeed at once.
type node struct {
	id       uint32
	p        *Proposer
	a        *Acceptor
	l        *Learner
	applied  []*messages.Entry
	replies  []Reply
	reads    []ReadResult
	down     bool
	durable  []*messages.Record
	learnBuf [][]*messages.Entry
}

// testCluster runs n replicas' role logic in one goroutine: a FIFO network
// that can drop, reorder and partition, and a manual clock. It is the seed
// of the simulator: deterministic for a given rng seed.
type testCluster struct {
	t     *testing.T
	now   time.Time
	nodes map[uint32]*node
	ids   []uint32
	queue []Envelope
	from  []uint32
	// cut[a][b] drops messages from a to b.
	cut  map[[2]uint32]bool
	rng  *rand.Rand
	drop float64
}

func newTestCluster(t *testing.T, n int, seed uint64) *testCluster {
	c := &testCluster{t: t, now: t0, nodes: map[uint32]*node{}, cut: map[[2]uint32]bool{},
		rng: rand.New(rand.NewPCG(seed, seed^0xabcdef))}
	for i := 1; i <= n; i++ {
		c.ids = append(c.ids, uint32(i))
	}
	for _, id := range c.ids {
		c.nodes[id] = c.newNode(id, seed)
	}
	return c
}

func (c *testCluster) newNode(id uint32, seed uint64) *node {
	n := &node{
		id: id,
		p: NewProposer(ProposerConfig{ID: id, Peers: c.ids, Rand: rand.New(rand.NewPCG(seed, uint64(id))),
			MaxBatchCommands: 4, MaxInflight: 3, LeaseTimeout: testLease, ClockDriftMax: testDrift}, c.now),
		a: NewAcceptor(id),
		l: NewLearner(LearnerConfig{ID: id, Peers: c.ids}),
	}
	n.a.StartLease(testLease, c.now)
	return n
}

// The lease the test cluster's roles use (§5.2).
const (
	testLease = 2 * time.Second
	testDrift = 100 * time.Millisecond
)

func (c *testCluster) send(from uint32, envs []Envelope) {
	for _, e := range envs {
		c.queue = append(c.queue, e)
		c.from = append(c.from, from)
	}
}

// deliver hands one message to its role and queues what that role sends.
func (c *testCluster) deliver(from uint32, e Envelope) {
	n := c.nodes[e.To]
	if n == nil || n.down || c.cut[[2]uint32{from, e.To}] {
		return
	}
	if c.drop > 0 && c.rng.Float64() < c.drop {
		return
	}
	msg := proto.Clone(e.Msg) // the wire copies
	switch m := msg.(type) {
	case *messages.Prepare:
		c.acceptorOut(n, n.a.HandlePrepare(m, c.now))
	case *messages.Accept:
		c.acceptorOut(n, n.a.HandleAccept(m, c.now))
	case *messages.Confirm:
		c.acceptorOut(n, n.a.HandleConfirm(m))
	case *messages.Chosen:
		c.learnerOut(n, n.l.HandleChosen(m, c.now))
	case *messages.CatchupRequest:
		c.learnerOut(n, n.l.HandleCatchupRequest(m))
	case *messages.CatchupResponse:
		c.learnerOut(n, n.l.HandleCatchupResponse(m, c.now))
	default:
		c.proposerOut(n, n.p.Step(msg, c.now))
	}
}

func (c *testCluster) acceptorOut(n *node, out AcceptorOutput) {
	n.durable = append(n.durable, out.Records...)
	if out.Reply != nil {
		c.send(n.id, []Envelope{*out.Reply})
	}
	if len(out.Learn) > 0 {
		c.learnerOut(n, n.l.HandleLearn(out.Learn))
	}
}

func (c *testCluster) learnerOut(n *node, out LearnerOutput) {
	n.durable = append(n.durable, out.Records...)
	c.send(n.id, out.Messages)
	n.applied = append(n.applied, out.Apply...)
	if len(out.Apply) > 0 {
		c.proposerOut(n, n.p.LearnerApplied(n.l.Contiguous(), c.now))
	}
}

func (c *testCluster) proposerOut(n *node, out ProposerOutput) {
	c.send(n.id, out.Messages)
	if out.ReleaseLease {
		n.a.ReleaseLease(n.id)
	}
	n.replies = append(n.replies, out.Replies...)
	n.reads = append(n.reads, out.Reads...)
	if n.p.NeedsFlush() {
		c.proposerOut(n, n.p.Flush(c.now))
	}
}

// run delivers queued messages until none are left (bounded).
func (c *testCluster) run() {
	for steps := 0; len(c.queue) > 0; steps++ {
		if steps > 100000 {
			c.t.Fatal("network did not go quiet")
		}
		e, from := c.queue[0], c.from[0]
		c.queue, c.from = c.queue[1:], c.from[1:]
		c.deliver(from, e)
	}
}

// advance moves the clock in ticks, ticking every live role and running the
// network after each tick.
func (c *testCluster) advance(d time.Duration) {
	const tick = 10 * time.Millisecond
	for end := c.now.Add(d); c.now.Before(end); {
		c.now = c.now.Add(tick)
		for _, id := range c.ids {
			n := c.nodes[id]
			if n.down {
				continue
			}
			c.proposerOut(n, n.p.Tick(c.now))
			c.learnerOut(n, n.l.Tick(c.now))
		}
		c.run()
	}
}

func (c *testCluster) master() *node {
	// A master that was down may still think it is master until it hears
	// of the new one: that is allowed; two masters holding leases at once
	// is not (§5.2).
	var m, leased *node
	for _, id := range c.ids {
		n := c.nodes[id]
		if n.down || !n.p.IsMaster() {
			continue
		}
		if _, ok := n.p.LeaseUntil(c.now); ok {
			if leased != nil {
				c.t.Fatalf("two masters hold leases: %d (ballot %d) and %d (ballot %d) at %v",
					leased.id, leased.p.Ballot(), n.id, n.p.Ballot(), c.now.Sub(t0))
			}
			leased = n
		}
		if m == nil || n.p.Ballot() > m.p.Ballot() {
			m = n
		}
	}
	return m
}

func (c *testCluster) waitMaster() *node {
	for i := 0; i < 100; i++ {
		if m := c.master(); m != nil {
			return m
		}
		c.advance(100 * time.Millisecond)
	}
	c.t.Fatal("no master elected")
	return nil
}

func (c *testCluster) submit(n *node, payload string) {
	c.proposerOut(n, n.p.Submit(cmd(n.id, uint64(len(payload)), payload)))
}

// appliedPayloads lists a node's applied commands in order.
func (n *node) appliedPayloads() []string {
	var out []string
	for _, e := range n.applied {
		if !e.Value.GetNoop() {
			out = append(out, payloads(e.Value)...)
		}
	}
	return out
}

// checkAgreement asserts every node's applied sequence is a prefix of the
// longest one and instances are applied in order, each once.
func (c *testCluster) checkAgreement() {
	var longest []*messages.Entry
	for _, id := range c.ids {
		if a := c.nodes[id].applied; len(a) > len(longest) {
			longest = a
		}
	}
	for _, id := range c.ids {
		for i, e := range c.nodes[id].applied {
			if e.Instance != uint64(i+1) {
				c.t.Fatalf("node %d applied instance %d at position %d", id, e.Instance, i)
			}
			if !proto.Equal(e.Value, longest[i].Value) {
				c.t.Fatalf("node %d applied %v at instance %d, another node %v", id,
					payloads(e.Value), e.Instance, payloads(longest[i].Value))
			}
		}
	}
}

func sortedKeys[T any](m map[uint64]T) []uint64 {
	ks := make([]uint64, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}

var _ = fmt.Sprint
