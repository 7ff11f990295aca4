package tests

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/paxos"
)

// Nodes started with another --peers list beside a running group (here
// 4 and 5 with "3,4,5" beside the group 1,2,3, as an operator adding
// nodes the wrong way might) belong to another cluster: their cluster id,
// derived from --peers, differs. The group's node 3 drops their messages,
// counts them and says in its log why, and the group's master keeps its
// ballot: nothing they send pushes it to campaign again.
func TestNodesWithOtherPeersCannotDisturbTheGroup(t *testing.T) {
	t.Parallel()
	c, master := newWritableCluster(t, 3)
	before, err := c.status(master)
	if err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 4)
	addr := func(i int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i])) }
	others := fmt.Sprintf("3=%s,4=%s,5=%s", c.node(3).addr, addr(0), addr(1))
	for i, id := range []int{4, 5} {
		startProcess(t, c.bin, filepath.Join(c.dir, fmt.Sprintf("other%d.log", id)), "node", "--id", strconv.Itoa(id),
			"--peers", others, "--client-listen", addr(2+i), "--data", filepath.Join(c.dir, fmt.Sprintf("other%d", id)),
			"--log-level", "info")
	}
	var first uint64
	waitFor(t, 20*time.Second, "node 3 to drop the other cluster's messages and log why", func() error {
		st, err := c.status(3)
		if err != nil {
			return err
		}
		if first = st.PeerDrops["cluster"]; first == 0 {
			return fmt.Errorf("no drop counted: %v", st.PeerDrops)
		}
		log, _ := os.ReadFile(c.node(3).logPath)
		if !strings.Contains(string(log), "another cluster") {
			return fmt.Errorf("node 3's log does not say why")
		}
		return nil
	})
	// The others go on sending (campaigns, heartbeats of the master they
	// may elect between themselves): let node 3 drop many more, then the
	// group must be as it was.
	waitFor(t, 20*time.Second, "node 3 to drop 20 more of the other cluster's messages", func() error {
		st, err := c.status(3)
		if err != nil {
			return err
		}
		if n := st.PeerDrops["cluster"]; n < first+20 {
			return fmt.Errorf("%d dropped", n)
		}
		return nil
	})
	after, err := c.status(master)
	// Its own routine ballot boosts (every --boost-interval, 10 s) may
	// raise its ballot once or twice meanwhile, in the same epoch; being
	// pushed, or deposed, would show as more, or as a new epoch.
	if err != nil || !after.IsMaster || after.Epoch != before.Epoch || after.Ballot > before.Ballot+2*paxos.BallotStride {
		t.Fatalf("the group's master %d beside nodes of another --peers: master %v, epoch %d -> %d, ballot %d -> %d (%v)",
			master, after.GetIsMaster(), before.Epoch, after.GetEpoch(), before.Ballot, after.GetBallot(), err)
	}
	l := newLedger()
	writeKeys(c.cl, l, "after-others", 20, 4)
	if acked, _, _ := l.counts(); acked != 20 {
		t.Fatalf("%d of 20 writes acknowledged beside the other cluster: %s", acked, l.topErrors())
	}
}
