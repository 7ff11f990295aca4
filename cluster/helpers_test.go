package cluster

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/livepaxos/livepaxos/messages"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// startNode builds a system with NewSystem (on a free loopback port unless
// opts.Listen says otherwise) and stops it when the test ends.
// Shutdown(false): a graceful stop can wait 10 s for a reconnecting writer.
// (Race-detector clean since protoactor's Remote.Start no longer writes
// gRPC's global logger: third_party/README.md.)
func startNode(t *testing.T, opts Options) (*actor.ActorSystem, string) {
	t.Helper()
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	sys, rem, addr, err := NewSystem(opts)
	if err != nil {
		t.Fatalf("NewSystem(%+v): %v", opts, err)
	}
	t.Cleanup(func() {
		rem.Shutdown(false)
		sys.Shutdown()
	})
	return sys, addr
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// probe counts the Prepares it receives, answers StatusRequest with that
// count (in LastApplied), echoes ClientRequest.Command as
// ClientResponse.Result, and answers a Command with its payload size (in a
// small StatusResponse.LastApplied).
type probe struct{ prepares *atomic.Int64 }

func (p *probe) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.Prepare:
		p.prepares.Add(1)
	case *messages.StatusRequest:
		ctx.Respond(&messages.StatusResponse{LastApplied: uint64(p.prepares.Load())})
	case *messages.ClientRequest:
		ctx.Respond(&messages.ClientResponse{RequestId: m.RequestId, Result: m.Command})
	case *messages.Command:
		ctx.Respond(&messages.StatusResponse{LastApplied: uint64(len(m.Payload))})
	}
}

// spawnProbe spawns a probe under name on sys, stopped when the test ends,
// and returns its PID and Prepare counter.
func spawnProbe(t *testing.T, sys *actor.ActorSystem, name string) (*actor.PID, *atomic.Int64) {
	t.Helper()
	n := new(atomic.Int64)
	pid, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &probe{prepares: n} }), name)
	if err != nil {
		t.Fatalf("spawn %s: %v", name, err)
	}
	t.Cleanup(func() { _ = sys.Root.StopFuture(pid).Wait() })
	return pid, n
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawPeer speaks protoactor's Remoting protocol directly over gRPC, so a
// test can send batches no protoactor writer would produce.
type rawPeer struct {
	conn   *grpc.ClientConn
	stream remote.Remoting_ReceiveClient
}

func dialRaw(t *testing.T, addr string) *rawPeer {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient(%s): %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		conn.Close()
	})
	stream, err := remote.NewRemotingClient(conn).Receive(ctx)
	if err != nil {
		t.Fatalf("open Receive stream: %v", err)
	}
	err = stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectRequest{
		ConnectRequest: &remote.ConnectRequest{ConnectionType: &remote.ConnectRequest_ServerConnection{
			ServerConnection: &remote.ServerConnection{SystemId: "raw-test-peer", Address: "127.0.0.1:1"},
		}},
	}})
	if err != nil {
		t.Fatalf("send ConnectRequest: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("receive ConnectResponse: %v", err)
	}
	if resp.GetConnectResponse() == nil {
		t.Fatalf("expected ConnectResponse, got %v", resp)
	}
	return &rawPeer{conn: conn, stream: stream}
}

func (r *rawPeer) send(t *testing.T, b *remote.MessageBatch) {
	t.Helper()
	if err := r.stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_MessageBatch{MessageBatch: b}}); err != nil {
		t.Fatalf("send batch: %v", err)
	}
}

// oneEnvelope is a batch holding a single message for target.
func oneEnvelope(typeName string, data []byte, target *actor.PID) *remote.MessageBatch {
	return &remote.MessageBatch{
		TypeNames: []string{typeName},
		Targets:   []*actor.PID{target},
		Envelopes: []*remote.MessageEnvelope{{TypeId: 0, Target: 0, MessageData: data}},
	}
}
