package actors_test

import (
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/livepaxos/livepaxos/actors"
)

// A replica whose core actor stops without Close (here a PoisonPill sent
// inside the process: the network cannot send one) stops as a whole with
// the reason, so that a node ends its process instead of living on as a
// zombie that holds its ports and answers nothing.
func TestReplicaStopsWhenAnActorStopsUnasked(t *testing.T) {
	fatal := make(chan error, 3)
	g := newTestGroupWith(t, 3, func(cfg *actors.Config) {
		if cfg.NodeID == 2 {
			cfg.OnFatal = func(err error) { fatal <- err }
		}
	})
	g.waitMaster(10 * time.Second) // every core actor has started
	h := g.hosts[2]
	h.sys.Root.Poison(actor.NewPID(h.sys.Address(), actors.DefaultName+"/"+actors.CoreName))
	select {
	case err := <-fatal:
		if !strings.Contains(err.Error(), "core actor stopped") {
			t.Fatalf("fatal error %v, want one naming the core actor", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the core actor stopped and the replica did not stop")
	}
	if st := h.replica.Status(); st.IsMaster {
		t.Fatalf("a stopped replica says it is master: %+v", st)
	}
}
