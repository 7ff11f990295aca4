package tests

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/core"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// TestHostilePeerSuite: a process that is not a member, speaking
// protoactor remoting to every node's replica while a write load runs,
// sends what a buggy or compromised peer might: Stop and PoisonPill,
// messages of another cluster, a stranger's prepare near the top of the
// ballot space, a member's name on a ballot it does not own, an Accept for
// instance 2^50, an entry without a value, a forged catch-up response,
// forged checksum reports and a flood of catch-up requests. The group
// keeps serving, no acknowledged write is lost, the replicas agree, and
// every kind of drop shows in the metrics.
func TestHostilePeerSuite(t *testing.T) {
	t.Parallel()
	c := newClusterOpts(t, 3, clusterOpts{metrics: true})
	master := c.waitWritable(20 * time.Second)
	st, err := c.status(master)
	if err != nil {
		t.Fatal(err)
	}
	group, ballot := messages.ClusterHash(st.ClusterId), st.Ballot
	l := newLedger()
	load := startLoad(c.cl, l, "load", 4, 3*time.Second)

	hostile, _, _, err := cluster.NewSystem(cluster.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer hostile.Shutdown()
	m := uint32(master)
	top := paxos.NextBallot(paxos.MaxBallot, m)
	above := paxos.NextBallot(ballot+1000*paxos.BallotStride, m)
	noop := &messages.Value{Noop: true}
	forged := []struct {
		msg proto.Message
		why core.DropReason
	}{
		{&messages.Prepare{From: m, Ballot: above, Cluster: messages.ClusterHash("another group")}, core.DropCluster},
		{&messages.Prepare{From: 9, Ballot: paxos.NextBallot(paxos.MaxBallot, 9), Cluster: group}, core.DropNotMember},
		{&messages.Prepare{From: m, Ballot: top, Cluster: group}, core.DropBounds},
		{&messages.Prepare{From: m, Ballot: paxos.NextBallot(above, 9), Cluster: group}, core.DropBallotOwner},
		{&messages.Accept{From: m, Ballot: above, Cluster: group,
			Entries: []*messages.Entry{{Instance: 1 << 50, Ballot: above, Value: noop}}}, core.DropBounds},
		{&messages.Accept{From: m, Ballot: above, Cluster: group,
			Entries: []*messages.Entry{{Instance: st.LastChosen + 1, Ballot: above}}}, core.DropBounds},
		{&messages.CatchupResponse{From: 9, ChosenUpto: 1 << 40, Cluster: group,
			Entries: []*messages.Entry{{Instance: st.LastChosen + 1, Ballot: ballot, Value: noop}}}, core.DropNotMember},
		{&messages.CatchupResponse{From: m, ChosenUpto: st.LastChosen + 1, Cluster: group,
			Entries: []*messages.Entry{{Instance: st.LastChosen + 1, Ballot: ballot}}}, core.DropBounds},
		// In a member's name, another value for the group's first instance:
		// no node asked for it (or, if one just had, it contradicts the
		// value that node holds chosen there).
		{&messages.CatchupResponse{From: m, ChosenUpto: st.LastChosen, Cluster: group,
			Entries: []*messages.Entry{{Instance: 1, Ballot: ballot, Value: &messages.Value{Commands: []*messages.Command{{Payload: []byte("forged")}}}}}},
			core.DropUnsolicited + "|" + core.DropContradicts},
		{&messages.ChecksumReport{From: 9, Instance: 1, Checksum: []byte("forged"), Cluster: group}, core.DropNotMember},
		{&messages.Heartbeat{From: m, Ballot: paxos.NextBallot(above, 9), ChosenUpto: 1 << 40, Cluster: group}, core.DropBallotOwner},
	}
	want := map[string]int{}
	const floodPerNode = 2000
	for _, n := range c.nodes {
		replica := actor.NewPID(n.addr, actors.DefaultName)
		coreActor := actor.NewPID(n.addr, actors.DefaultName+"/"+actors.CoreName)
		hostile.Root.Poison(replica)
		hostile.Root.Stop(coreActor)
		want["lifecycle"] += 2
		for _, f := range forged {
			if f.msg.(messages.PeerMessage).GetFrom() == uint32(n.id) {
				continue // to the node it names: refused as not a member (itself)
			}
			hostile.Root.Send(coreActor, f.msg)
			want[string(f.why)]++
		}
		// A flood of catch-up requests: served at most
		// CatchupRequestsPerSecond a second to all strangers together, each
		// answer a bounded chunk, sent nowhere (a stranger has no address).
		want[string(core.DropRate)] += floodPerNode / 2
		for i := range floodPerNode {
			hostile.Root.Send(coreActor, &messages.CatchupRequest{From: 9, FirstInstance: uint64(i%50 + 1), MaxEntries: 1 << 20, Cluster: group})
		}
	}
	start := time.Now()
	waitFor(t, 20*time.Second, "every node to count every forged message it dropped", func() error {
		var short []string
		for reason, n := range want {
			total := 0.0
			for _, nd := range c.nodes {
				for _, r := range strings.Split(reason, "|") { // either reason counts
					v, _ := c.metric(nd.id, fmt.Sprintf(`livepaxos_peer_messages_dropped_total{reason=%q}`, r))
					total += v
				}
			}
			if int(total) < n {
				short = append(short, fmt.Sprintf("%s %v of %d", reason, total, n))
			}
		}
		if len(short) > 0 {
			return fmt.Errorf("%s", strings.Join(short, ", "))
		}
		return nil
	})
	t.Logf("every drop counted %v after the last forged message: %v", time.Since(start).Round(time.Millisecond), want)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.cl.Put(ctx, []byte("after/hostile"), []byte("1")); err != nil {
		t.Fatalf("no write within 5 s of the forged messages: %v", err)
	}
	load.stop()
	acked, unknown, failed := l.counts()
	if acked == 0 {
		t.Fatalf("the load got no write acknowledged (unknown %d, failed %d: %s)", unknown, failed, l.topErrors())
	}
	verifyAcked(t, c.cl, l.ackedSnapshot())
	c.waitConverged(10 * time.Second)
	r := runCLI(t, c.bin, nil, "check", "--endpoints", strings.Join(c.endpoints(), ","), "--timeout", "20s")
	if r.code != 0 || strings.Count(r.stdout, "agrees with the majority") != 3 {
		t.Fatalf("livepaxos check after the forged messages: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, n := range c.nodes {
		st, err := c.status(n.id)
		if !c.running(n.id) || err != nil || st.Role != "voter" || st.Ballot > paxos.MaxBallot/2 {
			t.Fatalf("node %d after the forged messages: running %v, %v %v", n.id, c.running(n.id), st, err)
		}
	}
	t.Logf("load: %d writes acknowledged, %d unknown, %d failed, while %d forged messages and %d catch-up requests arrived",
		acked, unknown, failed, len(forged)*len(c.nodes), floodPerNode*len(c.nodes))
}
