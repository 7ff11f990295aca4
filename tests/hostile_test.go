package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/internal/rawpeer"
	"github.com/livepaxos/livepaxos/messages"
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
	hostile, _, _, err := cluster.NewSystem(cluster.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer hostile.Shutdown()
	sent := 0
	for _, n := range c.nodes {
		for _, name := range []string{actors.DefaultName, actors.DefaultName + "/" + actors.CoreName, actors.DefaultName + "/" + actors.SnapshotterName} {
			pid := actor.NewPID(n.addr, name)
			hostile.Root.Poison(pid)
			hostile.Root.Stop(pid)
			sent += 2
		}
	}
	start := time.Now()
	waitFor(t, 10*time.Second, "every node to count the lifecycle messages it dropped", func() error {
		total := 0.0
		for _, n := range c.nodes {
			v, _ := c.metric(n.id, `livepaxos_peer_messages_dropped_total{reason="lifecycle"}`)
			total += v
		}
		if int(total) < sent {
			return fmt.Errorf("%v of %d dropped", total, sent)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.cl.Put(ctx, []byte("after/lifecycle"), []byte("1")); err != nil {
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
