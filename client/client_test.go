package client_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/messages"
)

// fakeNode is a scripted "replica/proposer": answer decides each reply to
// a ClientRequest (nil: no reply at all); status answers StatusRequests.
type fakeNode struct {
	addr     string
	remote   *remote.Remote
	requests atomic.Int64
	reads    atomic.Int64 // of requests, those that were reads
}

func startFake(t *testing.T, answer func(n int64, req *messages.ClientRequest) *messages.ClientResponse) *fakeNode {
	return startFakeWithStatus(t, answer, &messages.StatusResponse{IsMaster: true})
}

func startFakeWithStatus(t *testing.T, answer func(n int64, req *messages.ClientRequest) *messages.ClientResponse,
	status *messages.StatusResponse) *fakeNode {
	t.Helper()
	sys, rem, addr, err := cluster.NewSystem(cluster.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNode{addr: addr, remote: rem}
	t.Cleanup(func() { rem.Shutdown(false) })
	parent, err := sys.Root.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*actor.Started); ok {
			c.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
				switch req := c.Message().(type) {
				case *messages.ClientRequest:
					if resp := answer(f.requests.Add(1), req); resp != nil {
						resp.RequestId = req.RequestId
						c.Respond(resp)
					}
				case *messages.StatusRequest:
					c.Respond(status)
				case *messages.ReadRequest: // answered the same way
					f.reads.Add(1)
					if resp := answer(f.requests.Add(1), &messages.ClientRequest{RequestId: req.RequestId, Command: req.Query}); resp != nil {
						resp.RequestId = req.RequestId
						c.Respond(resp)
					}
				}
			}), "core")
		}
	}), "replica")
	if err != nil || parent == nil {
		t.Fatal(err)
	}
	return f
}

func ok(res *messages.MultiOpResult) *messages.ClientResponse {
	b, _ := proto.Marshal(res)
	return &messages.ClientResponse{Result: b}
}

func newClient(t *testing.T, endpoints ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Endpoints: endpoints, AttemptTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestClientFollowsRedirectToMaster(t *testing.T) {
	master := startFake(t, func(int64, *messages.ClientRequest) *messages.ClientResponse {
		return ok(&messages.MultiOpResult{Succeeded: true, Results: []*messages.OpResult{{}}})
	})
	// It still claims mastership in its status (it stepped down since), so
	// the first write goes to it and is redirected.
	follower := startFake(t, func(int64, *messages.ClientRequest) *messages.ClientResponse {
		return &messages.ClientResponse{Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER, MasterId: 1, MasterAddress: master.addr}
	})
	c := newClient(t, follower.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 3 {
		if err := c.Put(ctx, []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if got := follower.requests.Load(); got != 1 {
		t.Fatalf("follower asked %d times; the client should remember the master", got)
	}
	if got := master.requests.Load(); got != 3 {
		t.Fatalf("master asked %d times, want 3", got)
	}
}

func TestClientReportsUnknownOutcomeInsteadOfRetryingWrite(t *testing.T) {
	silent := startFake(t, func(int64, *messages.ClientRequest) *messages.ClientResponse { return nil })
	c := newClient(t, silent.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.Put(ctx, []byte("k"), []byte("v"))
	if !errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("put with no answer: %v, want ErrOutcomeUnknown", err)
	}
	if got := silent.requests.Load(); got != 1 {
		t.Fatalf("write sent %d times; it must not be retried blindly", got)
	}
	unknown := startFake(t, func(int64, *messages.ClientRequest) *messages.ClientResponse {
		return &messages.ClientResponse{Code: messages.ErrorCode_ERROR_CODE_OUTCOME_UNKNOWN, Error: "lost mastership"}
	})
	if err := newClient(t, unknown.addr).Put(ctx, []byte("k"), []byte("v")); !errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("mastership lost mid-write: %v, want ErrOutcomeUnknown", err)
	}
	// §5.3: a write whose epoch ended before it applied was not applied
	// anywhere: a distinct error, not "unknown".
	changed := startFake(t, func(int64, *messages.ClientRequest) *messages.ClientResponse {
		return &messages.ClientResponse{Code: messages.ErrorCode_ERROR_CODE_MASTER_CHANGED, Error: "epoch ended"}
	})
	err = newClient(t, changed.addr).Put(ctx, []byte("k"), []byte("v"))
	if !errors.Is(err, client.ErrMasterChanged) || errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("epoch ended before the write applied: %v, want ErrMasterChanged", err)
	}
}

// A write is sent only to a node believed to be master: with a dead
// endpoint first in the list, it is not lost in an unanswered attempt.
func TestClientWritesOnlyToDiscoveredMaster(t *testing.T) {
	master := startFake(t, func(int64, *messages.ClientRequest) *messages.ClientResponse {
		return ok(&messages.MultiOpResult{Succeeded: true, Results: []*messages.OpResult{{}}})
	})
	follower := startFakeWithStatus(t, func(int64, *messages.ClientRequest) *messages.ClientResponse {
		return &messages.ClientResponse{Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER}
	}, &messages.StatusResponse{MasterAddress: master.addr})
	dead := "127.0.0.1:1" // nothing listens there
	c := newClient(t, dead, follower.addr, master.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatalf("put with a dead endpoint listed first: %v", err)
	}
	if follower.requests.Load() != 0 || master.requests.Load() != 1 {
		t.Fatalf("writes: follower %d, master %d; want 0 and 1", follower.requests.Load(), master.requests.Load())
	}
}

func TestClientRetriesReads(t *testing.T) {
	flaky := startFake(t, func(n int64, _ *messages.ClientRequest) *messages.ClientResponse {
		if n == 1 {
			return nil // the first answer is lost
		}
		return ok(&messages.MultiOpResult{Succeeded: true, Results: []*messages.OpResult{{Found: true, Value: []byte("v")}}})
	})
	c := newClient(t, flaky.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, found, err := c.Get(ctx, []byte("k"))
	if err != nil || !found || string(v) != "v" {
		t.Fatalf("get = %q %v %v", v, found, err)
	}
	if flaky.reads.Load() != 2 {
		t.Fatalf("%d of %d requests were reads; a get is a lease read", flaky.reads.Load(), flaky.requests.Load())
	}
}

func TestClientRefusesBadInputBeforeSending(t *testing.T) {
	node := startFake(t, func(int64, *messages.ClientRequest) *messages.ClientResponse { return ok(&messages.MultiOpResult{}) })
	c := newClient(t, node.addr)
	ctx := context.Background()
	if err := c.Put(ctx, nil, []byte("v")); !errors.Is(err, client.ErrEmptyKey) {
		t.Fatalf("empty key: %v", err)
	}
	if err := c.Put(ctx, []byte("k"), make([]byte, 1<<20+1)); !errors.Is(err, client.ErrValueTooLarge) {
		t.Fatalf("oversize value: %v", err)
	}
	if got := node.requests.Load(); got != 0 {
		t.Fatalf("%d bad requests reached the node", got)
	}
	if _, err := client.New(client.Config{}); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("no endpoints: %v", err)
	}
}

func TestClientMapsServerRefusals(t *testing.T) {
	tooLarge := startFake(t, func(int64, *messages.ClientRequest) *messages.ClientResponse {
		return &messages.ClientResponse{Code: messages.ErrorCode_ERROR_CODE_TOO_LARGE, Error: "value over the node's limit"}
	})
	err := newClient(t, tooLarge.addr).Put(context.Background(), []byte("k"), []byte("v"))
	if !errors.Is(err, client.ErrValueTooLarge) {
		t.Fatalf("server size refusal: %v", err)
	}
}

// Right after a master dies the survivors still name it until they elect
// another: the client must not send a write on their word to an endpoint
// that does not answer for itself, where it would end as "outcome unknown".
func TestClientDoesNotWriteToAMasterNamedOnlyByOthers(t *testing.T) {
	dead := "127.0.0.1:1" // nothing listens there
	follower := startFakeWithStatus(t, func(int64, *messages.ClientRequest) *messages.ClientResponse {
		return &messages.ClientResponse{Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER, MasterAddress: dead}
	}, &messages.StatusResponse{MasterId: 1, MasterAddress: dead})
	c := newClient(t, dead, follower.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err := c.Put(ctx, []byte("k"), []byte("v"))
	if !errors.Is(err, client.ErrNoMaster) || errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("put while no live node is master: %v, want ErrNoMaster (nothing sent)", err)
	}
	if follower.requests.Load() != 0 {
		t.Fatal("a write went to a follower")
	}
}
