package actors_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/messages"
)

// bank is an embedder's own state machine: accounts with balances.
// Commands are "deposit ACCOUNT N" and "withdraw ACCOUNT N"; a query names
// an account and gets its balance.
type bank struct {
	mu       sync.Mutex
	balances map[string]int64
}

// errInsufficientFunds is the bank's own refusal of a withdrawal.
var errInsufficientFunds = errors.New("insufficient funds")

func (b *bank) Apply(_ uint64, command []byte) ([]byte, error) {
	f := strings.Fields(string(command))
	if len(f) != 3 {
		return nil, fmt.Errorf("malformed command %q", command)
	}
	n, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("malformed amount %q", f[2])
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bal := b.balances[f[1]]
	switch f[0] {
	case "deposit":
		bal += n
	case "withdraw":
		if bal < n {
			// The balance comes back with the refusal.
			return []byte(strconv.FormatInt(bal, 10)), fmt.Errorf("%w: %s holds %d, %d asked", errInsufficientFunds, f[1], bal, n)
		}
		bal -= n
	default:
		return nil, fmt.Errorf("unknown operation %q", f[0])
	}
	b.balances[f[1]] = bal
	return []byte(strconv.FormatInt(bal, 10)), nil
}

func (b *bank) Query(account []byte) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return []byte(strconv.FormatInt(b.balances[string(account)], 10)), nil
}

func newBankGroup(t *testing.T) *testGroup {
	return newTestGroupWith(t, 3, func(cfg *actors.Config) { cfg.StateMachine = &bank{balances: map[string]int64{}} })
}

// proposeAt retries a command at node id while it is refused before it is
// proposed (no master yet).
func proposeAt(t *testing.T, ctx context.Context, h *host, command string) ([]byte, error) {
	t.Helper()
	for {
		res, err := h.replica.Propose(ctx, h.sys.Root, []byte(command))
		if !errors.Is(err, actors.ErrNotMaster) || ctx.Err() != nil {
			return res, err
		}
	}
}

// The embedding API hands an in-process caller the state machine's own
// error (errors.Is against it works) with the result returned beside it,
// and a *NotMasterError that names the master.
func TestEmbeddedErrorsSurviveTheTrip(t *testing.T) {
	g := newBankGroup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m := g.waitMaster(10 * time.Second)
	master := g.hosts[m]
	if res, err := proposeAt(t, ctx, master, "deposit alice 10"); err != nil || string(res) != "10" {
		t.Fatalf("deposit: %q, %v", res, err)
	}
	res, err := proposeAt(t, ctx, master, "withdraw alice 25")
	if !errors.Is(err, errInsufficientFunds) || !errors.Is(err, actors.ErrRejected) || string(res) != "10" {
		t.Fatalf("overdraft: result %q, err %v; want the bank's own error and the balance 10", res, err)
	}
	var follower *host
	for id, h := range g.hosts {
		if id != m {
			follower = h
		}
	}
	var nm *actors.NotMasterError
	_, err = follower.replica.Propose(ctx, follower.sys.Root, []byte("deposit bob 1"))
	if !errors.As(err, &nm) || !errors.Is(err, actors.ErrNotMaster) || nm.MasterID != m || nm.MasterAddress != g.peers[m] {
		t.Fatalf("propose at a follower: %v; want a NotMasterError naming node %d at %s", err, m, g.peers[m])
	}
	_, _, err = follower.replica.Read(ctx, follower.sys.Root, []byte("alice"), messages.Consistency_CONSISTENCY_LEASE)
	if !errors.As(err, &nm) || nm.MasterID != m {
		t.Fatalf("lease read at a follower: %v; want a NotMasterError naming node %d", err, m)
	}
	for _, c := range []messages.Consistency{messages.Consistency_CONSISTENCY_LEASE, messages.Consistency_CONSISTENCY_QUORUM} {
		got, _, err := master.replica.Read(ctx, master.sys.Root, []byte("alice"), c)
		if err != nil || string(got) != "10" {
			t.Fatalf("%v read at the master: %q, %v", c, got, err)
		}
	}
}

// The generic client reaches the master of a group running the bank from
// an actor system of its own, following the answers that name it, and
// keeps the bank's refusal recognisable on its side of the wire.
func TestClientFollowsTheMasterAndKeepsApplicationErrors(t *testing.T) {
	g := newBankGroup(t)
	sys, rem, _, err := cluster.NewSystem(cluster.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rem.Shutdown(false) })
	var eps []string
	for _, id := range []uint32{1, 2, 3} {
		eps = append(eps, g.peers[id])
	}
	c, err := actors.NewClient(actors.ClientConfig{System: sys, Endpoints: eps, Errors: []error{errInsufficientFunds}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 5 {
		if res, err := c.Propose(ctx, []byte("deposit carol 2")); err != nil || string(res) != fmt.Sprint(2*(i+1)) {
			t.Fatalf("deposit %d: %q, %v", i, res, err)
		}
	}
	_, err = c.Propose(ctx, []byte("withdraw carol 100"))
	var ae *actors.ApplyError
	if !errors.Is(err, errInsufficientFunds) || !errors.Is(err, actors.ErrRejected) || !errors.As(err, &ae) || string(ae.Result) != "10" {
		t.Fatalf("overdraft through the client: %v; want the bank's error with the balance 10", err)
	}
	got, _, err := c.Read(ctx, []byte("carol"), messages.Consistency_CONSISTENCY_LEASE)
	if err != nil || string(got) != "10" {
		t.Fatalf("lease read: %q, %v", got, err)
	}
	got, _, err = c.Read(ctx, []byte("carol"), messages.Consistency_CONSISTENCY_STALE)
	if err != nil {
		t.Fatalf("stale read: %q, %v", got, err)
	}
	// Given only a follower, the client reaches the master through the
	// answer that names it.
	m := g.master()
	follower := g.peers[m%3+1]
	one, err := actors.NewClient(actors.ClientConfig{System: sys, Endpoints: []string{follower}})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := one.Propose(ctx, []byte("deposit carol 1")); err != nil || string(res) != "11" {
		t.Fatalf("deposit through follower %s only: %q, %v", follower, res, err)
	}
	if got, _, err := one.Read(ctx, []byte("carol"), messages.Consistency_CONSISTENCY_QUORUM); err != nil || string(got) != "11" {
		t.Fatalf("quorum read through follower %s only: %q, %v", follower, got, err)
	}
}

// Close is the one stop: the replica's actors stop (it sends no more
// heartbeats, so another replica becomes master) and its data directory is
// released, so a replica starts on it again in the same process and
// catches up.
func TestCloseStopsTheReplicaAndReleasesItsDirectory(t *testing.T) {
	g := newBankGroup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := g.waitMaster(10 * time.Second)
	if _, err := proposeAt(t, ctx, g.hosts[m], "deposit dave 7"); err != nil {
		t.Fatal(err)
	}
	old := g.hosts[m]
	old.api.Close()
	if err := old.replica.Close(); err != nil { // no StopFuture: Close alone
		t.Fatal(err)
	}
	next := g.waitMasterOtherThan(m, 15*time.Second)
	if _, err := proposeAt(t, ctx, g.hosts[next], "deposit dave 1"); err != nil {
		t.Fatal(err)
	}
	r, err := actors.NewReplica(actors.Config{NodeID: m, Peers: g.peers, DataDir: old.dir, ClusterID: "test",
		StateMachine: &bank{balances: map[string]int64{}}})
	if err != nil {
		t.Fatalf("a replica on the closed one's directory: %v", err)
	}
	old.replica = r
	if err := r.Start(old.sys); err != nil {
		t.Fatal(err)
	}
	old.api = nil
	waitFor(t, 15*time.Second, func() error {
		if got, _, err := r.Read(ctx, old.sys.Root, []byte("dave"), messages.Consistency_CONSISTENCY_STALE); err != nil || string(got) != "8" {
			return fmt.Errorf("restarted replica reads dave = %q (%v), want 8", got, err)
		}
		return nil
	})
}
