package tests

import (
	"context"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// rawPeer speaks protoactor's Remoting protocol directly over gRPC, so a test
// can send batches no protoactor writer would produce. It is a copy of the
// helper in cluster/helpers_test.go (test helpers are not importable), with
// send returning its error: a node may rightly end a stream that carried
// garbage, and that is not a test failure.
type rawPeer struct {
	conn   *grpc.ClientConn
	stream remote.Remoting_ReceiveClient
}

// dialRaw opens a Receive stream to addr and performs protoactor's connect
// handshake on it.
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
	return &rawPeer{conn: conn, stream: stream}
}

func (r *rawPeer) send(b *remote.MessageBatch) error {
	return r.stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_MessageBatch{MessageBatch: b}})
}

// oneEnvelope is a batch holding a single message for target.
func oneEnvelope(typeName string, data []byte, target *actor.PID) *remote.MessageBatch {
	return &remote.MessageBatch{
		TypeNames: []string{typeName},
		Targets:   []*actor.PID{target},
		Envelopes: []*remote.MessageEnvelope{{TypeId: 0, Target: 0, MessageData: data}},
	}
}
