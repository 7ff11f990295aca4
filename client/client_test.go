package client_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// fakeNode is a scripted client port: answer decides the result of each
// call on a Stream (nil: no answer at all; errDrop: end the stream).
type fakeNode struct {
	messages.UnimplementedKVServer
	addr    string
	answer  func(n int64, call *messages.StreamCall) *messages.StreamResult
	calls   atomic.Int64
	reads   atomic.Int64 // of calls, the reads
	members *messages.Membership
}

// errDrop, as an answer's error text, makes the fake end the stream
// instead of answering: the connection broke after the call arrived.
const errDrop = "drop the stream"

func startFake(t *testing.T, answer func(n int64, call *messages.StreamCall) *messages.StreamResult) *fakeNode {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNode{addr: lis.Addr().String(), answer: answer}
	g := grpc.NewServer()
	messages.RegisterKVServer(g, f)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return f
}

func (f *fakeNode) Stream(st messages.KV_StreamServer) error {
	for {
		in, err := st.Recv()
		if err != nil {
			return err
		}
		for _, call := range in.Calls {
			if !call.Write {
				f.reads.Add(1)
			}
			r := f.answer(f.calls.Add(1), call)
			if r == nil {
				continue
			}
			if r.Error == errDrop {
				return errors.New(errDrop)
			}
			r.Id = call.Id
			if err := st.Send(&messages.StreamResponse{Results: []*messages.StreamResult{r}}); err != nil {
				return err
			}
		}
	}
}

func (f *fakeNode) Members(context.Context, *messages.MembersListRequest) (*messages.Membership, error) {
	if f.members == nil {
		return &messages.Membership{}, nil
	}
	return f.members, nil
}

func ok(res *messages.MultiOpResult, header *messages.Header) *messages.StreamResult {
	b, _ := proto.Marshal(res)
	return &messages.StreamResult{Result: b, Header: header}
}

func okPut() *messages.StreamResult {
	return ok(&messages.MultiOpResult{Succeeded: true, Results: []*messages.OpResult{{}}}, nil)
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

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Any node answers; once an answer names the master's client address, the
// client goes there directly (one hop fewer).
func TestClientGoesToTheMasterNamedInAnswers(t *testing.T) {
	master := startFake(t, func(int64, *messages.StreamCall) *messages.StreamResult { return okPut() })
	follower := startFake(t, func(int64, *messages.StreamCall) *messages.StreamResult {
		return ok(&messages.MultiOpResult{Succeeded: true, Results: []*messages.OpResult{{}}},
			&messages.Header{MasterId: 1, MasterClientAddress: master.addr})
	})
	c := newClient(t, follower.addr)
	ctx := testCtx(t, 5*time.Second)
	for range 3 {
		if err := c.Put(ctx, []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if got := follower.calls.Load(); got != 1 {
		t.Fatalf("follower asked %d times; the client should go to the master it named", got)
	}
	if got := master.calls.Load(); got != 2 {
		t.Fatalf("master asked %d times, want 2", got)
	}
}

func TestClientReportsUnknownOutcomeInsteadOfRetryingWrite(t *testing.T) {
	ctx := testCtx(t, 5*time.Second)
	silent := startFake(t, func(int64, *messages.StreamCall) *messages.StreamResult { return nil })
	if err := newClient(t, silent.addr).Put(ctx, []byte("k"), []byte("v")); !errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("put with no answer: %v, want ErrOutcomeUnknown", err)
	}
	if got := silent.calls.Load(); got != 1 {
		t.Fatalf("write sent %d times; it must not be retried blindly", got)
	}
	broken := startFake(t, func(int64, *messages.StreamCall) *messages.StreamResult {
		return &messages.StreamResult{Error: errDrop}
	})
	if err := newClient(t, broken.addr).Put(ctx, []byte("k"), []byte("v")); !errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("put whose connection broke after it arrived: %v, want ErrOutcomeUnknown", err)
	}
	if got := broken.calls.Load(); got != 1 {
		t.Fatalf("write sent %d times after its connection broke", got)
	}
	unknown := startFake(t, func(int64, *messages.StreamCall) *messages.StreamResult {
		return &messages.StreamResult{Code: messages.ErrorCode_ERROR_CODE_OUTCOME_UNKNOWN, Error: "lost mastership"}
	})
	if err := newClient(t, unknown.addr).Put(ctx, []byte("k"), []byte("v")); !errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("mastership lost mid-write: %v, want ErrOutcomeUnknown", err)
	}
	// §5.3: a write whose epoch ended before it applied was not applied
	// anywhere: a distinct error, not "unknown".
	changed := startFake(t, func(int64, *messages.StreamCall) *messages.StreamResult {
		return &messages.StreamResult{Code: messages.ErrorCode_ERROR_CODE_MASTER_CHANGED, Error: "epoch ended"}
	})
	err := newClient(t, changed.addr).Put(ctx, []byte("k"), []byte("v"))
	if !errors.Is(err, client.ErrMasterChanged) || errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("epoch ended before the write applied: %v, want ErrMasterChanged", err)
	}
}

// A write that certainly never left (the endpoint refused the connection)
// goes to the next endpoint; so does one a node refused because it found
// no master (nothing was proposed).
func TestClientSendsAWriteElsewhereOnlyWhenNothingWasProposed(t *testing.T) {
	live := startFake(t, func(int64, *messages.StreamCall) *messages.StreamResult { return okPut() })
	dead := "127.0.0.1:1" // nothing listens there
	c := newClient(t, dead, live.addr)
	ctx := testCtx(t, 5*time.Second)
	if err := c.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatalf("put with a dead endpoint listed first: %v", err)
	}
	if got := live.calls.Load(); got != 1 {
		t.Fatalf("live endpoint asked %d times, want 1", got)
	}
	var refusals atomic.Int64
	noMaster := startFake(t, func(int64, *messages.StreamCall) *messages.StreamResult {
		refusals.Add(1)
		return &messages.StreamResult{Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER, Error: "no master known"}
	})
	c = newClient(t, noMaster.addr)
	err := c.Put(testCtx(t, time.Second), []byte("k"), []byte("v"))
	if !errors.Is(err, client.ErrNoMaster) || errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("put while the node knows no master: %v, want ErrNoMaster (nothing proposed)", err)
	}
	if refusals.Load() < 2 {
		t.Fatalf("a refused write was tried %d times; it is safe to retry until the deadline", refusals.Load())
	}
}

// A node that stops (a restart after a hand-over) refuses calls naming the
// new master; the client goes there even if that endpoint could not be
// reached a moment before (it was starting), rather than back to the
// stopping node over and over until the deadline.
func TestClientFollowsARedirectToAnEndpointThatFailedLately(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	masterAddr := lis.Addr().String()
	lis.Close() // nothing listens there yet: the client avoids it for a while
	var stopping atomic.Bool
	old := startFake(t, func(int64, *messages.StreamCall) *messages.StreamResult {
		if stopping.Load() {
			return &messages.StreamResult{Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER, Error: "node stopping",
				Header: &messages.Header{MasterId: 2, MasterClientAddress: masterAddr}}
		}
		return okPut()
	})
	c := newClient(t, masterAddr, old.addr)
	if err := c.Put(testCtx(t, 5*time.Second), []byte("k"), []byte("v")); err != nil {
		t.Fatalf("put with the master's endpoint down: %v", err)
	}
	lis, err = net.Listen("tcp", masterAddr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", masterAddr, err)
	}
	master := &fakeNode{addr: masterAddr, answer: func(int64, *messages.StreamCall) *messages.StreamResult { return okPut() }}
	g := grpc.NewServer()
	messages.RegisterKVServer(g, master)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	stopping.Store(true)
	before := old.calls.Load()
	if err := c.Put(testCtx(t, 5*time.Second), []byte("k"), []byte("v")); err != nil {
		t.Fatalf("put after the old node named the new master: %v", err)
	}
	if got := old.calls.Load() - before; got > 5 {
		t.Fatalf("the stopping node was asked %d times; its answer named the master", got)
	}
	if master.calls.Load() != 1 {
		t.Fatalf("the master was asked %d times, want 1", master.calls.Load())
	}
}

func TestClientRetriesReads(t *testing.T) {
	flaky := startFake(t, func(n int64, _ *messages.StreamCall) *messages.StreamResult {
		if n == 1 {
			return nil // the first answer is lost
		}
		return ok(&messages.MultiOpResult{Succeeded: true, Results: []*messages.OpResult{{Found: true, Value: []byte("v")}}}, nil)
	})
	c := newClient(t, flaky.addr)
	v, found, err := c.Get(testCtx(t, 5*time.Second), []byte("k"))
	if err != nil || !found || string(v) != "v" {
		t.Fatalf("get = %q %v %v", v, found, err)
	}
	if flaky.reads.Load() != 2 {
		t.Fatalf("%d of %d calls were reads; a get is a read, retried once", flaky.reads.Load(), flaky.calls.Load())
	}
}

func TestClientRefusesBadInputBeforeSending(t *testing.T) {
	node := startFake(t, func(int64, *messages.StreamCall) *messages.StreamResult { return okPut() })
	c := newClient(t, node.addr)
	ctx := context.Background()
	if err := c.Put(ctx, nil, []byte("v")); !errors.Is(err, client.ErrEmptyKey) {
		t.Fatalf("empty key: %v", err)
	}
	if err := c.Put(ctx, []byte("k"), make([]byte, 1<<20+1)); !errors.Is(err, client.ErrValueTooLarge) {
		t.Fatalf("oversize value: %v", err)
	}
	if got := node.calls.Load(); got != 0 {
		t.Fatalf("%d bad requests reached the node", got)
	}
	if _, err := client.New(client.Config{}); !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("no endpoints: %v", err)
	}
}

func TestClientMapsServerRefusals(t *testing.T) {
	tooLarge := startFake(t, func(int64, *messages.StreamCall) *messages.StreamResult {
		return &messages.StreamResult{Code: messages.ErrorCode_ERROR_CODE_TOO_LARGE, Error: "value over the node's limit"}
	})
	err := newClient(t, tooLarge.addr).Put(context.Background(), []byte("k"), []byte("v"))
	if !errors.Is(err, client.ErrValueTooLarge) {
		t.Fatalf("server size refusal: %v", err)
	}
	// Issue 15 item 4: a result over the limit is its own error, a Txn's
	// and a Read's alike, and not sent again (nothing was done, and the
	// same request would be refused the same way).
	tooMuch := startFake(t, func(int64, *messages.StreamCall) *messages.StreamResult {
		return &messages.StreamResult{Code: messages.ErrorCode_ERROR_CODE_RESULT_TOO_LARGE, Error: "db: result too large"}
	})
	c := newClient(t, tooMuch.addr)
	if _, err := c.Txn(context.Background(), db.Get([]byte("k"))); !errors.Is(err, client.ErrResultTooLarge) || errors.Is(err, client.ErrValueTooLarge) {
		t.Fatalf("Txn's result refused: %v, want ErrResultTooLarge", err)
	}
	if _, err := c.Read(context.Background(), db.Get([]byte("k")), client.Lease); !errors.Is(err, client.ErrResultTooLarge) {
		t.Fatalf("Read's result refused: %v, want ErrResultTooLarge", err)
	}
	if n := tooMuch.calls.Load(); n != 2 {
		t.Fatalf("%d calls for two requests: a refused result was sent again", n)
	}
}

// An endpoint that is not a client port (a node's peer port, say) is a
// configuration mistake: said at once, not waited out.
func TestClientSaysWhenAnEndpointIsNotAClientPort(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer() // serves no KV service, as a peer port does not
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	c := newClient(t, lis.Addr().String())
	start := time.Now()
	err = c.Put(testCtx(t, 10*time.Second), []byte("k"), []byte("v"))
	if !errors.Is(err, client.ErrUnreachable) || errors.Is(err, client.ErrOutcomeUnknown) || !strings.Contains(err.Error(), "peer port") {
		t.Fatalf("put to a port without the client API: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v to say so", d)
	}
}

// A client given one endpoint learns the others from the membership, and
// goes on when that one dies.
func TestClientLearnsTheOtherMembers(t *testing.T) {
	second := startFake(t, func(int64, *messages.StreamCall) *messages.StreamResult { return okPut() })
	first := startFake(t, func(int64, *messages.StreamCall) *messages.StreamResult { return okPut() })
	first.members = &messages.Membership{Version: 2, Members: []*messages.Member{
		{Id: 1, ClientAddress: first.addr}, {Id: 2, ClientAddress: second.addr}}}
	lis, err := net.Listen("tcp", "127.0.0.1:0") // the first endpoint, to be killed
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	messages.RegisterKVServer(g, first)
	go g.Serve(lis)
	first.members.Members[0].ClientAddress = lis.Addr().String()
	c := newClient(t, lis.Addr().String())
	ctx := testCtx(t, 10*time.Second)
	if err := c.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := c.Members(ctx)
		if err == nil && len(m.Members) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members: %v %v", m, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	g.Stop()
	// The client learned second's address from the membership it saw (in
	// the background after its first answer, and from Members); writes
	// now reach it.
	deadline = time.Now().Add(5 * time.Second)
	for {
		err := c.Put(ctx, []byte("k"), []byte("v"))
		if err == nil && second.calls.Load() > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the only configured endpoint died: %v (second asked %d times)", err, second.calls.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Many large writes at once do not make one stream message larger than the
// client port takes (16 MiB): the calls waiting together are cut into
// batches of at most 4 MiB. Before, 256 writes of a 1 MiB value could go
// in one message and every one of them failed.
func TestClientCutsStreamBatchesBySize(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNode{addr: lis.Addr().String(), answer: func(int64, *messages.StreamCall) *messages.StreamResult { return okPut() }}
	g := grpc.NewServer(grpc.MaxRecvMsgSize(16 << 20)) // as the client port
	messages.RegisterKVServer(g, f)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	c, err := client.New(client.Config{Endpoints: []string{f.addr}, AttemptTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := testCtx(t, 60*time.Second)
	if err := c.Put(ctx, []byte("warm"), []byte("up")); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 1<<20)
	const writers = 64
	errs := make(chan error, writers)
	start := make(chan struct{})
	for i := range writers {
		go func() {
			<-start
			errs <- c.Put(ctx, []byte("big/"+strconv.Itoa(i)), value)
		}()
	}
	close(start)
	for range writers {
		if err := <-errs; err != nil {
			t.Fatalf("a 1 MiB write among %d at once: %v", writers, err)
		}
	}
}
