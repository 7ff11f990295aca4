package actors_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/internal/testwait"
	"github.com/livepaxos/livepaxos/paxos"
	"github.com/livepaxos/livepaxos/server"
)

// host is one in-process node: an actor system with a replica of the KV
// database spawned in it, as an embedder would run it.
type host struct {
	id      uint32
	dir     string
	sys     *actor.ActorSystem
	remote  *remote.Remote
	replica *actors.Replica
	kv      *db.KV
	pid     *actor.PID
	// The client API: clients reach the replica here, as in a node.
	clientAddr string
	api        *server.Server
}

type testGroup struct {
	t     *testing.T
	peers map[uint32]string
	hosts map[uint32]*host
	// configure, if set, adjusts each replica's config before it starts.
	configure func(cfg *actors.Config)
}

func newTestGroup(t *testing.T, n int) *testGroup { return newTestGroupWith(t, n, nil) }

// newTestGroupWith is newTestGroup with a hook that adjusts each replica's
// config (cfg.NodeID tells which) before it starts.
func newTestGroupWith(t *testing.T, n int, configure func(cfg *actors.Config)) *testGroup {
	t.Helper()
	g := &testGroup{t: t, peers: map[uint32]string{}, hosts: map[uint32]*host{}, configure: configure}
	for i := 1; i <= n; i++ {
		sys, rem, addr, err := cluster.NewSystem(cluster.Options{Listen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		id := uint32(i)
		g.peers[id] = addr
		g.hosts[id] = &host{id: id, dir: t.TempDir(), sys: sys, remote: rem, clientAddr: "127.0.0.1:0"}
	}
	for id := range g.hosts {
		g.start(id)
	}
	t.Cleanup(func() {
		for _, h := range g.hosts {
			g.stop(h.id)
			h.remote.Shutdown(false)
		}
	})
	return g
}

// start opens the replica from its data directory and spawns it.
func (g *testGroup) start(id uint32) {
	g.t.Helper()
	h := g.hosts[id]
	h.kv = db.New()
	cfg := actors.Config{NodeID: id, Peers: g.peers, DataDir: h.dir, ClusterID: "test",
		StateMachine: h.kv, Proposer: paxos.ProposerConfig{ElectionTimeoutMin: testElectionTimeout}}
	if g.configure != nil {
		g.configure(&cfg)
	}
	lis, err := net.Listen("tcp", h.clientAddr)
	if err != nil {
		g.t.Fatal(err)
	}
	h.clientAddr = lis.Addr().String()
	cfg.ClientAddress = h.clientAddr
	r, err := actors.NewReplica(cfg)
	if err != nil {
		g.t.Fatal(err)
	}
	h.replica = r
	if h.pid, err = h.sys.Root.SpawnNamed(r.Props(), actors.DefaultName); err != nil {
		g.t.Fatal(err)
	}
	if h.api, err = server.New(server.Config{Replica: r, System: h.sys}); err != nil {
		g.t.Fatal(err)
	}
	go h.api.Serve(lis, nil)
}

// stop stops the replica subtree and releases its data directory: what
// survives is what the log made durable.
func (g *testGroup) stop(id uint32) {
	h := g.hosts[id]
	if h.replica == nil {
		return
	}
	if h.api != nil {
		h.api.Close()
	}
	h.replica.Close() // stops the replica's actors, then releases its directory
	h.replica = nil
}

func (g *testGroup) client() *client.Client {
	var eps []string
	for _, id := range []uint32{1, 2, 3} {
		eps = append(eps, g.hosts[id].clientAddr)
	}
	c, err := client.New(client.Config{Endpoints: eps, AttemptTimeout: time.Second})
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(c.Close)
	return c
}

// waitFor polls cond until it returns nil or the deadline passes.
func waitFor(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	testwait.For(t, d, 10*time.Millisecond, "the condition", cond)
}

// waitMaster waits until a replica reports mastership and returns its id.
func (g *testGroup) waitMaster(d time.Duration) uint32 {
	g.t.Helper()
	var m uint32
	waitFor(g.t, d, func() error {
		if m = g.master(); m == 0 {
			return errors.New("no master")
		}
		return nil
	})
	return m
}

// masterOtherThan returns a replica other than old that reports
// mastership (0: none).
func (g *testGroup) masterOtherThan(old uint32) uint32 {
	for id, h := range g.hosts {
		if id != old && h.replica != nil && h.replica.Status().IsMaster {
			return id
		}
	}
	return 0
}

// waitMasterOtherThan waits until a replica other than old reports
// mastership and returns its id.
func (g *testGroup) waitMasterOtherThan(old uint32, d time.Duration) uint32 {
	g.t.Helper()
	var m uint32
	waitFor(g.t, d, func() error {
		if m = g.masterOtherThan(old); m == 0 {
			return fmt.Errorf("no master but node %d", old)
		}
		return nil
	})
	return m
}

func (g *testGroup) master() uint32 {
	for id, h := range g.hosts {
		if h.replica != nil && h.replica.Status().IsMaster {
			return id
		}
	}
	return 0
}

func TestPaper4_ReplicasInProcessFailoverAndCatchUp(t *testing.T) {
	g := newTestGroup(t, 3)
	c := g.client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	put := func(i int) {
		t.Helper()
		for {
			err := c.Put(ctx, []byte(fmt.Sprintf("k%03d", i)), []byte(fmt.Sprint(i)))
			if err == nil {
				return
			}
			if errors.Is(err, client.ErrOutcomeUnknown) {
				continue // the same put again is harmless: it writes the same value
			}
			t.Fatalf("put %d: %v", i, err)
		}
	}
	for i := range 50 {
		put(i)
	}
	old := g.master()
	if old == 0 {
		t.Fatal("writes succeeded but no replica reports mastership")
	}
	g.stop(old)
	for i := 50; i < 100; i++ {
		put(i)
	}
	waitFor(t, 5*time.Second, func() error {
		if m := g.master(); m == 0 || m == old {
			return fmt.Errorf("master is %d", m)
		}
		return nil
	})
	g.start(old) // replays its log, then catches up from its peers
	waitFor(t, 10*time.Second, func() error {
		want := g.hosts[g.master()].kv
		for id, h := range g.hosts {
			if h.kv.Len() != 100 || h.kv.Hash() != want.Hash() {
				return fmt.Errorf("node %d holds %d keys (want 100), hash equal: %v", id, h.kv.Len(), h.kv.Hash() == want.Hash())
			}
		}
		return nil
	})
	for i := range 100 {
		v, found, err := c.Get(ctx, []byte(fmt.Sprintf("k%03d", i)))
		if err != nil || !found || string(v) != fmt.Sprint(i) {
			t.Fatalf("get k%03d = %q %v %v", i, v, found, err)
		}
	}
}

// testElectionTimeout is the in-process groups' election timeout: short,
// so that fail-over tests are quick, but not so short that a heartbeat
// delayed by a loaded machine (tests run beside the simulator and other
// processes on two cores) starts an election that churns mastership under
// a test's writes.
const testElectionTimeout = 400 * time.Millisecond
