package actors_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/messages"
)

// §6.2: the master puts a checksum value in the log; every replica
// checksums its state there and compares with the others. A replica whose
// state was changed behind the log's back disagrees with the majority: it
// stops serving, and the others report which node diverged.
func TestPaper6_2_DivergedReplicaStopsServing(t *testing.T) {
	var stopped atomic.Pointer[error]
	g := newTestGroupWith(t, 3, func(cfg *actors.Config) {
		if cfg.NodeID == 3 {
			cfg.OnFatal = func(err error) { stopped.Store(&err) }
		}
		cfg.Proposer.CheckInterval = -1 // only when asked
	})
	putKeys(t, g, 0, 20)
	g.sameState(20)

	// A check with every replica alike passes everywhere.
	at := g.check()
	waitFor(t, 5*time.Second, func() error {
		for id, h := range g.hosts {
			if st := h.replica.Status(); st.CheckedInstance < at || st.Divergence != "" {
				return fmt.Errorf("node %d: checked up to %d (want %d), divergence %q", id, st.CheckedInstance, at, st.Divergence)
			}
		}
		return nil
	})

	// Corrupt node 3's database behind the log's back.
	rogue, _ := proto.Marshal(&messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: []byte("rogue"), Value: []byte("x")}}})
	if _, err := g.hosts[3].kv.Apply(g.hosts[3].kv.LastApplied(), rogue); err != nil {
		t.Fatal(err)
	}
	at = g.check()
	waitFor(t, 5*time.Second, func() error {
		if stopped.Load() == nil {
			return fmt.Errorf("node 3 still serving")
		}
		for _, id := range []uint32{1, 2} {
			if d := g.hosts[id].replica.Status().Divergence; !strings.Contains(d, "node 3") {
				return fmt.Errorf("node %d reports %q", id, d)
			}
		}
		return nil
	})
	t.Logf("node 3 stopped: %v", *stopped.Load())
}

// check asks the master for a consistency check and returns the instance
// of its checksum value.
func (g *testGroup) check() uint64 {
	g.t.Helper()
	var at uint64
	waitFor(g.t, 5*time.Second, func() error {
		m := g.master()
		if m == 0 {
			return fmt.Errorf("no master")
		}
		h := g.hosts[m]
		reply, err := h.sys.Root.RequestFuture(h.replica.ProposerPID(), &messages.CheckRequest{RequestId: 1}, time.Second).Result()
		if err != nil {
			return err
		}
		resp := reply.(*messages.CheckResponse)
		if resp.Error != "" {
			return fmt.Errorf("%s", resp.Error)
		}
		at = resp.Instance
		return nil
	})
	return at
}

// A sender that asks for checks and snapshots faster than its budget gets
// an overload answer naming the limit instead of keeping every replica
// checksumming (or this one writing its state) without pause.
func TestChecksAndSnapshotsAreRateLimitedPerSender(t *testing.T) {
	g := newTestGroupWith(t, 3, func(cfg *actors.Config) { cfg.Proposer.CheckInterval = -1 })
	putKeys(t, g, 0, 5)
	g.check()
	h := g.hosts[g.master()]
	refused := func(msg proto.Message, n int) int {
		count := 0
		for range n {
			reply, err := h.sys.Root.RequestFuture(h.replica.ProposerPID(), msg, 5*time.Second).Result()
			if err != nil {
				t.Fatal(err)
			}
			var e string
			switch r := reply.(type) {
			case *messages.CheckResponse:
				e = r.Error
			case *messages.SnapshotResponse:
				e = r.Error
			}
			if strings.Contains(e, "too many") {
				count++
			}
		}
		return count
	}
	if n := refused(&messages.CheckRequest{RequestId: 2}, 12); n == 0 {
		t.Fatal("12 checks in a row from one sender: none refused")
	}
	if n := refused(&messages.SnapshotRequest{RequestId: 3}, 6); n == 0 {
		t.Fatal("6 snapshots in a row from one sender: none refused")
	}
}
