// Package rawpeer is test support: a peer that speaks protoactor's Remoting
// protocol directly over gRPC, so that a test can send batches no
// protoactor writer would produce (unknown types, garbled bytes, system
// messages). It is shared by the cluster package's tests and the
// end-to-end tests; production code does not import it.
package rawpeer

import (
	"context"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Peer is one Receive stream to a node's peer port, past protoactor's
// connect handshake. Conn and Stream are exposed so that a test can read
// what the node answers or call other Remoting methods.
type Peer struct {
	Conn   *grpc.ClientConn
	Stream remote.Remoting_ReceiveClient
}

// Dial opens a Receive stream to addr and performs protoactor's connect
// handshake on it; it fails t if any step fails, and closes the stream
// when t ends.
func Dial(t testing.TB, addr string) *Peer {
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
		t.Fatalf("open Receive stream to %s: %v", addr, err)
	}
	err = stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectRequest{
		ConnectRequest: &remote.ConnectRequest{ConnectionType: &remote.ConnectRequest_ServerConnection{
			ServerConnection: &remote.ServerConnection{SystemId: "raw-test-peer", Address: "127.0.0.1:1"},
		}},
	}})
	if err != nil {
		t.Fatalf("send ConnectRequest to %s: %v", addr, err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("receive ConnectResponse from %s: %v", addr, err)
	}
	if resp.GetConnectResponse() == nil {
		t.Fatalf("expected ConnectResponse from %s, got %v", addr, resp)
	}
	return &Peer{Conn: conn, Stream: stream}
}

// Send sends one batch. Its error is returned, not fatal: a node may
// rightly end a stream that carried garbage.
func (p *Peer) Send(b *remote.MessageBatch) error {
	return p.Stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_MessageBatch{MessageBatch: b}})
}

// MustSend sends one batch and fails t if it cannot.
func (p *Peer) MustSend(t testing.TB, b *remote.MessageBatch) {
	t.Helper()
	if err := p.Send(b); err != nil {
		t.Fatalf("send batch: %v", err)
	}
}

// OneEnvelope is a batch holding a single message for target.
func OneEnvelope(typeName string, data []byte, target *actor.PID) *remote.MessageBatch {
	return &remote.MessageBatch{
		TypeNames: []string{typeName},
		Targets:   []*actor.PID{target},
		Envelopes: []*remote.MessageEnvelope{{TypeId: 0, Target: 0, MessageData: data}},
	}
}
