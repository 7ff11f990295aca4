package actors

import (
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/core"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// A snapshot chunk is served only to another member of this cluster, and
// at most chunkRequestsPerSecond to each: anyone who can reach the peer
// port and names a member cannot make a node read and send its snapshot
// without bound.
func TestSnapshotChunkRequestsOnlyFromMembersAndWithinTheirRate(t *testing.T) {
	r := &Replica{cfg: Config{NodeID: 1, ClusterID: "lp-test"}}
	r.members.Store(&messages.Membership{Version: 1, Members: []*messages.Member{
		{Id: 1, Address: "a:1", Role: paxos.VoterRole}, {Id: 2, Address: "a:2", Role: paxos.VoterRole}}})
	a := &snapshotterActor{r: r}
	now := time.Unix(1000, 0)
	req := func(from uint32, cluster uint64) *messages.SnapshotChunkRequest {
		return &messages.SnapshotChunkRequest{From: from, Instance: 1, Cluster: cluster}
	}
	ours := a.cluster()
	for _, tc := range []struct {
		m    *messages.SnapshotChunkRequest
		want core.DropReason
	}{
		{req(2, ours+1), core.DropCluster},
		{req(3, ours), core.DropNotMember},
		{req(1, ours), core.DropNotMember},
	} {
		if got := a.admitChunkRequest(tc.m, now); got != tc.want {
			t.Fatalf("request from %d (cluster %x): %q, want %q", tc.m.From, tc.m.Cluster, got, tc.want)
		}
	}
	served := 0
	for range 2 * chunkRequestsPerSecond {
		if a.admitChunkRequest(req(2, ours), now) == "" {
			served++
		}
	}
	if served != chunkRequestsPerSecond {
		t.Fatalf("served %d of %d requests at one moment, want %d", served, 2*chunkRequestsPerSecond, chunkRequestsPerSecond)
	}
	if got := a.admitChunkRequest(req(2, ours), now.Add(time.Second)); got != "" {
		t.Fatalf("a request a second later: %q, want served", got)
	}
}
