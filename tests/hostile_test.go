package tests

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/core"
	"github.com/livepaxos/livepaxos/internal/rawpeer"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// garbledProto is not a protobuf encoding of anything: a tag whose varint
// never terminates.
var garbledProto = bytes.Repeat([]byte{0xff}, 12)

// TestNodeSurvivesUnknownMessage sends every node, over protoactor remoting,
// a message of a type the node does not know and garbage bytes under the
// names of types it does know, addressed to each role actor. Unguarded,
// protoactor dies of the first (a nil dereference in its deserializer); the
// node must instead drop them and keep serving.
func TestNodeSurvivesUnknownMessage(t *testing.T) {
	t.Parallel()
	c, _ := newWritableCluster(t, 3)
	l := c.written("before", 50, 8)

	random := make([]byte, 64)
	_, _ = rand.Read(random)
	type hostile struct {
		name, typeName string
		data           []byte
		role           string
	}
	var batches []hostile
	for _, role := range []string{actors.ProposerName, actors.AcceptorName, actors.LearnerName} {
		batches = append(batches, hostile{"unknown type", "unknown.v1.Nope", random, role})
	}
	for _, m := range []struct {
		msg  proto.Message
		role string
	}{
		{&messages.ClientRequest{}, actors.ProposerName},
		{&messages.StatusRequest{}, actors.ProposerName},
		{&messages.Heartbeat{}, actors.ProposerName},
		{&messages.Promise{}, actors.ProposerName},
		{&messages.Prepare{}, actors.AcceptorName},
		{&messages.Accept{}, actors.AcceptorName},
		{&messages.Chosen{}, actors.LearnerName},
		{&messages.CatchupResponse{}, actors.LearnerName},
	} {
		batches = append(batches, hostile{"garbled known type", string(proto.MessageName(m.msg)), garbledProto, m.role})
	}

	ended := 0
	for _, n := range c.nodes {
		for _, h := range batches {
			// One stream per batch: a node may end a stream that carried
			// garbage, which loses only what came after on that stream.
			raw := rawpeer.Dial(t, n.addr)
			target := actor.NewPID(n.addr, actors.DefaultName+"/"+h.role)
			if err := raw.Send(rawpeer.OneEnvelope(h.typeName, h.data, target)); err != nil {
				t.Fatalf("node %d: sending %s %s: %v", n.id, h.name, h.typeName, err)
			}
			// Closing our side and reading until the node ends the stream
			// means it has read, and dispatched or dropped, the batch.
			if err := raw.Stream.CloseSend(); err != nil {
				t.Fatal(err)
			}
			for {
				if _, err := raw.Stream.Recv(); err != nil {
					if !errors.Is(err, io.EOF) {
						ended++ // protoactor ends a stream that carried undecodable bytes
					}
					break
				}
			}
			if !c.running(n.id) {
				t.Fatalf("node %d exited after %s %s for its %s; log:\n%s",
					n.id, h.name, h.typeName, h.role, tail(n.logPath, 30))
			}
		}
	}

	// Every node still runs and answers, and the cluster still writes.
	for _, n := range c.nodes {
		c.waitServing(n.id, 5*time.Second)
	}
	writeKeys(c.cl, l, "after", 50, 8)
	if acked, unknown, failed := l.counts(); acked != 100 {
		t.Fatalf("%d of 100 writes acknowledged (unknown=%d failed=%d, errors %s)", acked, unknown, failed, l.topErrors())
	}
	verifyAcked(t, c.cl, l.ackedSnapshot())
	c.waitConverged(10 * time.Second)
	for _, n := range c.nodes {
		if !c.running(n.id) {
			t.Errorf("node %d exited; log:\n%s", n.id, tail(n.logPath, 30))
		}
	}
	// The guard saw the unknown type (a vacuous pass would not log this).
	for _, n := range c.nodes {
		if out := c.runOutput(n.id); !strings.Contains(out, "unknown message type") {
			t.Errorf("node %d did not log dropping the unknown type; log tail:\n%s", n.id, tail(n.logPath, 20))
		}
	}
	t.Logf("sent %d hostile batches to each node; %d streams ended by a node (garbled known types), every node kept serving",
		len(batches), ended)
}

// A program that is not a member sends, through protoactor remoting, the
// messages that stop, restart or watch actors (PoisonPill, Stop, Watch)
// to every actor of every node. No remote may stop an actor: the nodes
// drop them, count them in their metrics, and go on serving; the cluster
// takes a write within 5 s and every node answers status.
func TestNodeTakesNoLifecycleMessageFromTheNetwork(t *testing.T) {
	t.Parallel()
	c := newClusterOpts(t, 3, clusterOpts{metrics: true})
	c.waitWritable(20 * time.Second)
	hostile := newHostileSystem(t)
	want := map[string]int{}
	for _, n := range c.nodes {
		for _, name := range []string{actors.DefaultName, actors.DefaultName + "/" + actors.CoreName, actors.DefaultName + "/" + actors.SnapshotterName} {
			pid := actor.NewPID(n.addr, name)
			hostile.Root.Poison(pid)
			hostile.Root.Stop(pid)
			want["lifecycle"] += 2
		}
	}
	start := time.Now()
	waitDropped(t, c, 10*time.Second, "every node to count the lifecycle messages it dropped", want)
	if err := c.cl.Put(testContext(t, 5*time.Second), []byte("after/lifecycle"), []byte("1")); err != nil {
		t.Fatalf("no write within 5 s of the lifecycle messages: %v", err)
	}
	t.Logf("a write %v after the last lifecycle message", time.Since(start).Round(time.Millisecond))
	c.waitMaster(5 * time.Second)
	for _, n := range c.nodes {
		if !c.running(n.id) {
			t.Fatalf("node %d exited; log:\n%s", n.id, tail(n.logPath, 30))
		}
		if st, err := c.status(n.id); err != nil || st.Role != "voter" {
			t.Fatalf("node %d after the lifecycle messages: %v %v", n.id, st, err)
		}
	}
}

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

	hostile := newHostileSystem(t)
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
	waitDropped(t, c, 20*time.Second, "every node to count every forged message it dropped", want)
	t.Logf("every drop counted %v after the last forged message: %v", time.Since(start).Round(time.Millisecond), want)

	if err := c.cl.Put(testContext(t, 5*time.Second), []byte("after/hostile"), []byte("1")); err != nil {
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

// newHostileSystem is an actor system of a process that is not a member,
// for sending the nodes what no member would; it is shut down with the
// test.
func newHostileSystem(t *testing.T) *actor.ActorSystem {
	t.Helper()
	hostile, _, _, err := cluster.NewSystem(cluster.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hostile.Shutdown)
	return hostile
}

// waitDropped waits until the nodes together have counted, for each drop
// reason in want, at least that many peer messages dropped. A reason may
// be several joined by "|": a drop under any of them counts.
func waitDropped(t *testing.T, c *testCluster, within time.Duration, what string, want map[string]int) {
	t.Helper()
	waitFor(t, within, what, func() error {
		var short []string
		for reason, n := range want {
			total := 0.0
			for _, nd := range c.nodes {
				for _, r := range strings.Split(reason, "|") {
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
}
