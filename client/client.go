// Package client is the Go client of a livepaxos cluster: it finds the
// master, follows redirects, retries what is safe to retry, and reports a
// write whose outcome it cannot know with ErrOutcomeUnknown instead of
// retrying it blindly.
package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// Config describes a client. Endpoints is required.
type Config struct {
	// Endpoints are node addresses (host:port); any of them will do, the
	// client finds the master.
	Endpoints []string
	// Listen is where this client's actor system receives replies
	// (default 127.0.0.1:0, a free loopback port).
	Listen string
	// Conns is the number of client actor systems, each with its own
	// connections; requests spread over them (default 1).
	Conns int
	// AttemptTimeout bounds one request to one node (default 5s); the
	// context bounds the whole call.
	AttemptTimeout time.Duration
	// CallTimeout bounds a whole call whose context has no deadline
	// (default 30s), so that no call retries forever.
	CallTimeout time.Duration
	// ProbeTimeout bounds one round of asking the endpoints who is master
	// (default 300ms; a status answer takes about a millisecond on a LAN).
	ProbeTimeout time.Duration
	// Limits are checked before anything is sent (defaults: see db.Limits).
	Limits db.Limits
	Logger *slog.Logger
}

// Client talks to a livepaxos cluster. It is safe for concurrent use.
type Client struct {
	cfg     Config
	conns   []*conn
	next    atomic.Uint64
	reqID   atomic.Uint64
	master  atomic.Pointer[string]
	closed  atomic.Bool
	closeMu sync.Once
}

// conn is one client actor system. Replies to its requests come to one
// inbox process, which hands each to the goroutine waiting for it by
// request id: cheaper than a protoactor future (a registered PID and a
// timer) per request.
type conn struct {
	sys    *actor.ActorSystem
	remote *remote.Remote
	inbox  *actor.PID

	mu      sync.Mutex
	pending map[uint64]*call
	// pids caches the PID of each endpoint's role actor: a PID resolves its
	// process once and keeps it.
	pids sync.Map // endpoint + "/" + role -> *actor.PID
}

func (cn *conn) pid(endpoint, role string) *actor.PID {
	key := endpoint + "/" + role
	if p, ok := cn.pids.Load(key); ok {
		return p.(*actor.PID)
	}
	p, _ := cn.pids.LoadOrStore(key, cluster.RolePID(endpoint, role))
	return p.(*actor.PID)
}

// call is one request waiting for its reply.
type call struct {
	endpoint string
	done     chan callResult // buffered: delivered to at most once
}

type callResult struct {
	resp *messages.ClientResponse
	err  error
}

// Errors of one attempt, before they are mapped to the sentinels.
var (
	errNotDelivered = errors.New("not delivered")
	errNoAnswer     = errors.New("no answer in time")
)

func newConn(sys *actor.ActorSystem, rem *remote.Remote) *conn {
	cn := &conn{sys: sys, remote: rem, pending: make(map[uint64]*call)}
	cn.inbox, _ = sys.ProcessRegistry.Add(&inbox{cn: cn}, "client-inbox-"+sys.ProcessRegistry.NextId())
	return cn
}

// inbox is the process replies come to. It is a bare protoactor Process,
// not an actor: a reply is handed to its waiting goroutine on the goroutine
// that delivers it (the remote reader), with no mailbox and no scheduling
// in between, and without a future (a registered PID and a timer) per
// request.
type inbox struct{ cn *conn }

func (in *inbox) SendUserMessage(_ *actor.PID, message any) {
	_, msg, _ := actor.UnwrapEnvelope(message)
	in.cn.receive(msg)
}

func (in *inbox) SendSystemMessage(*actor.PID, any) {}
func (in *inbox) Stop(pid *actor.PID)               { in.cn.sys.ProcessRegistry.Remove(pid) }

// receive handles one message that came to the inbox.
func (cn *conn) receive(msg any) {
	switch m := msg.(type) {
	case *messages.ClientResponse:
		cn.finish(m.RequestId, callResult{resp: m})
	case *actor.DeadLetterResponse:
		// The endpoint writer could not connect: nothing sent there arrived.
		if m.Target != nil {
			cn.failEndpoint(m.Target.Address, errNotDelivered)
		}
	}
}

func (cn *conn) finish(id uint64, r callResult) {
	cn.mu.Lock()
	c := cn.pending[id]
	delete(cn.pending, id)
	cn.mu.Unlock()
	if c != nil {
		c.done <- r
	}
}

// failEndpoint ends every call in flight to addr with err.
func (cn *conn) failEndpoint(addr string, err error) {
	cn.mu.Lock()
	var failed []*call
	for id, c := range cn.pending {
		if c.endpoint == addr {
			failed = append(failed, c)
			delete(cn.pending, id)
		}
	}
	cn.mu.Unlock()
	for _, c := range failed {
		c.done <- callResult{err: err}
	}
}

// roundTrip sends one request to endpoint's proposer and waits for its reply.
// request is one request of a call, as sent to each node tried.
type request struct {
	write   bool // a command through the log, to the proposer
	payload []byte
	// members, when set, is a membership change (to the proposer, never
	// repeated: a second one would be refused as a stale version).
	members *messages.MembersRequest
	// reads: served by the replica (§5.2) with this consistency.
	consistency messages.Consistency
}

// coreRole is the actor of a replica that takes commands, reads and
// status requests: its replica core (actors.CoreName).
const coreRole = "core"

func (r request) message(id uint64) (role string, msg proto.Message) {
	if r.members != nil {
		m := proto.Clone(r.members).(*messages.MembersRequest)
		m.RequestId = id
		return coreRole, m
	}
	if r.write {
		return coreRole, &messages.ClientRequest{RequestId: id, Command: r.payload}
	}
	return coreRole, &messages.ReadRequest{RequestId: id, Query: r.payload, Consistency: r.consistency}
}

func (cn *conn) roundTrip(ctx context.Context, endpoint string, id uint64, req request, timeout time.Duration) (*messages.ClientResponse, error) {
	c := &call{endpoint: endpoint, done: make(chan callResult, 1)}
	cn.mu.Lock()
	cn.pending[id] = c
	cn.mu.Unlock()
	role, msg := req.message(id)
	cn.sys.Root.RequestWithCustomSender(cn.pid(endpoint, role), msg, cn.inbox)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-c.done:
		return r.resp, r.err
	case <-t.C:
	case <-ctx.Done():
	}
	cn.mu.Lock()
	delete(cn.pending, id)
	cn.mu.Unlock()
	select {
	case r := <-c.done: // it arrived as we gave up
		return r.resp, r.err
	default:
		return nil, errNoAnswer
	}
}

// New starts the client's actor systems. It does not contact the cluster.
func New(cfg Config) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("%w: no endpoints", ErrInvalid)
	}
	for _, e := range cfg.Endpoints {
		if !strings.Contains(e, ":") {
			return nil, fmt.Errorf("%w: endpoint %q is not host:port", ErrInvalid, e)
		}
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 1
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 5 * time.Second
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = 300 * time.Millisecond
	}
	c := &Client{cfg: cfg}
	for i := 0; i < cfg.Conns; i++ {
		sys, rem, _, err := cluster.NewSystem(cluster.Options{Listen: cfg.Listen, Logger: cfg.Logger})
		if err != nil {
			c.Close()
			return nil, err
		}
		cn := newConn(sys, rem)
		// A broken connection ends the calls in flight on it at once:
		// their requests may have arrived, so they end as "no answer"
		// (unknown for a write, retried for a read), and the master they
		// went to is forgotten until a probe finds one again.
		sys.EventStream.Subscribe(func(evt any) {
			if e, ok := evt.(*remote.EndpointTerminatedEvent); ok {
				c.forget(e.Address)
				cn.failEndpoint(e.Address, errNoAnswer)
			}
		})
		c.conns = append(c.conns, cn)
	}
	return c, nil
}

// Close stops the client's actor systems.
func (c *Client) Close() {
	c.closeMu.Do(func() {
		c.closed.Store(true)
		for _, cn := range c.conns {
			cn.remote.Shutdown(false)
			cn.sys.Shutdown()
		}
	})
}

// Put sets key to value.
func (c *Client) Put(ctx context.Context, key, value []byte) error {
	_, err := c.Txn(ctx, db.Put(key, value))
	return err
}

// Consistency is what a read promises (§5.2).
type Consistency = messages.Consistency

const (
	// Lease (the default): linearizable, answered by the master from its
	// state while its lease holds, with no Paxos round and no disk write;
	// without a valid lease it confirms mastership with a majority first.
	Lease = messages.Consistency_CONSISTENCY_LEASE
	// Quorum: linearizable, always confirming mastership with a majority.
	Quorum = messages.Consistency_CONSISTENCY_QUORUM
	// Stale: any replica's state as it is, with how far behind it knows it
	// is (ReadResult.Behind).
	Stale = messages.Consistency_CONSISTENCY_STALE
)

// ParseConsistency reads "lease", "quorum" or "stale".
func ParseConsistency(s string) (Consistency, error) {
	switch s {
	case "lease", "":
		return Lease, nil
	case "quorum":
		return Quorum, nil
	case "stale":
		return Stale, nil
	}
	return Lease, fmt.Errorf("%w: consistency %q: want lease, quorum or stale", ErrInvalid, s)
}

// ReadResult is the answer to a read-only MultiOp.
type ReadResult struct {
	*messages.MultiOpResult
	// Applied is the log instance the answering replica's state reflects.
	Applied uint64
	// Epoch is the epoch that replica's state was in (§5.3).
	Epoch uint64
	// Behind (stale reads) counts instances the replica knows are chosen
	// and has not applied yet.
	Behind uint64
	// Endpoint answered.
	Endpoint string
}

// Get returns the value of key and whether it exists. The read is
// linearizable: a lease read at the master (see Lease).
func (c *Client) Get(ctx context.Context, key []byte) (value []byte, found bool, err error) {
	return c.GetWith(ctx, key, Lease)
}

// GetWith is Get with the consistency chosen per request.
func (c *Client) GetWith(ctx context.Context, key []byte, consistency Consistency) (value []byte, found bool, err error) {
	res, err := c.Read(ctx, db.Get(key), consistency)
	if err != nil {
		return nil, false, err
	}
	if len(res.Results) != 1 {
		return nil, false, fmt.Errorf("%w: get answered with %d results", ErrInvalid, len(res.Results))
	}
	return res.Results[0].Value, res.Results[0].Found, nil
}

// Read runs a read-only MultiOp (guards and gets; an epoch guard too) with
// the given consistency, without going through the log.
func (c *Client) Read(ctx context.Context, op *messages.MultiOp, consistency Consistency) (*ReadResult, error) {
	if !readOnly(op) {
		return nil, fmt.Errorf("%w: Read takes a read-only MultiOp; use Txn", ErrInvalid)
	}
	if err := c.cfg.Limits.Validate(op); err != nil {
		return nil, mapValidation(err)
	}
	payload, err := proto.Marshal(op)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	resp, endpoint, err := c.call(ctx, request{payload: payload, consistency: consistency})
	if err != nil {
		return nil, err
	}
	res := &messages.MultiOpResult{}
	if err := proto.Unmarshal(resp.Result, res); err != nil {
		return nil, fmt.Errorf("%w: undecodable result: %v", ErrInvalid, err)
	}
	return &ReadResult{MultiOpResult: res, Applied: resp.Instance, Epoch: resp.Epoch, Behind: resp.Behind, Endpoint: endpoint}, nil
}

// Epoch returns the current master's epoch (§5.3): it changes on every new
// mastership and only then. Make a MultiOp conditional on it with
// db.EpochIs.
func (c *Client) Epoch(ctx context.Context) (uint64, error) {
	res, err := c.Read(ctx, &messages.MultiOp{}, Lease)
	if err != nil {
		return 0, err
	}
	return res.Epoch, nil
}

// Delete removes key and reports whether it existed.
func (c *Client) Delete(ctx context.Context, key []byte) (existed bool, err error) {
	res, err := c.Txn(ctx, db.Delete(key))
	if err != nil {
		return false, err
	}
	return len(res.Results) == 1 && res.Results[0].Found, nil
}

// CompareAndSwap sets key to newValue if it currently holds old (old == nil:
// if it is absent). When it does not swap, current is the value it found.
func (c *Client) CompareAndSwap(ctx context.Context, key, old, newValue []byte) (swapped bool, current []byte, err error) {
	res, err := c.Txn(ctx, db.CompareAndSwap(key, old, newValue))
	if err != nil {
		return false, nil, err
	}
	if !res.Succeeded && len(res.Results) == 1 {
		current = res.Results[0].Value
	}
	return res.Succeeded, current, nil
}

// Txn runs one MultiOp atomically through the log: t_op if every guard
// test holds, f_op otherwise. A read-only MultiOp goes through the log too
// (use Read to serve it from the master's lease instead).
func (c *Client) Txn(ctx context.Context, op *messages.MultiOp) (*messages.MultiOpResult, error) {
	if err := c.cfg.Limits.Validate(op); err != nil {
		return nil, mapValidation(err)
	}
	payload, err := proto.Marshal(op)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	resp, _, err := c.call(ctx, request{write: true, payload: payload})
	if err != nil {
		return nil, err
	}
	res := &messages.MultiOpResult{}
	if err := proto.Unmarshal(resp.Result, res); err != nil {
		return nil, fmt.Errorf("%w: undecodable result: %v", ErrInvalid, err)
	}
	return res, nil
}

// readOnly reports whether op changes nothing whatever it finds, so it is
// safe to send again after a lost answer.
func readOnly(op *messages.MultiOp) bool {
	for _, list := range [][]*messages.Op{op.TOp, op.FOp} {
		for _, o := range list {
			if o.Kind != messages.Op_KIND_GET {
				return false
			}
		}
	}
	return true
}

func mapValidation(err error) error {
	switch {
	case errors.Is(err, db.ErrEmptyKey):
		return fmt.Errorf("%w: %v", ErrEmptyKey, err)
	case errors.Is(err, db.ErrValueTooLarge), errors.Is(err, db.ErrKeyTooLarge), errors.Is(err, db.ErrTooManyOps):
		return fmt.Errorf("%w: %v", ErrValueTooLarge, err)
	}
	return fmt.Errorf("%w: %v", ErrInvalid, err)
}

// call sends a request to the master (any node, for a stale read),
// following redirects. Only requests that were certainly not proposed, or
// change nothing, are sent again.
func (c *Client) call(ctx context.Context, req request) (*messages.ClientResponse, string, error) {
	if c.closed.Load() {
		return nil, "", ErrClosed
	}
	// A log command that only reads is as safe to repeat as a read.
	idempotent := !req.write || (req.members == nil && readOnlyPayload(req.payload))
	stale := !req.write && req.consistency == Stale
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.CallTimeout)
		defer cancel()
	}
	cn := c.conns[c.next.Add(1)%uint64(len(c.conns))]
	backoff := 10 * time.Millisecond
	var lastErr error = ErrNoMaster
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, "", c.deadlineErr(lastErr)
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 200*time.Millisecond)
		}
		if !idempotent && !stale && c.master.Load() == nil {
			// A write goes only to a node believed to be master: sent to a
			// dead endpoint it would wait out its timeout and end as
			// "outcome unknown". A status probe is safe to repeat.
			if err := c.discover(ctx); err != nil {
				lastErr = err
				continue
			}
		}
		endpoint := c.target(attempt)
		if stale {
			endpoint = c.cfg.Endpoints[(attempt+int(c.next.Load()))%len(c.cfg.Endpoints)]
		}
		timeout := c.cfg.AttemptTimeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(dl))
		}
		if timeout <= 0 {
			return nil, "", c.deadlineErr(lastErr)
		}
		resp, err := cn.roundTrip(ctx, endpoint, c.reqID.Add(1), req, timeout)
		if err != nil {
			if errors.Is(err, errNotDelivered) {
				lastErr = fmt.Errorf("%w: %s unreachable", ErrNoMaster, endpoint)
				c.forget(endpoint)
				continue // never delivered: safe to send elsewhere
			}
			c.forget(endpoint)
			if !idempotent {
				return nil, "", fmt.Errorf("%w: no answer from %s", ErrOutcomeUnknown, endpoint)
			}
			lastErr = fmt.Errorf("%w: no answer from %s", ErrNoMaster, endpoint)
			continue
		}
		switch resp.Code {
		case messages.ErrorCode_ERROR_CODE_OK:
			if !stale {
				c.remember(endpoint)
			}
			return resp, endpoint, nil
		case messages.ErrorCode_ERROR_CODE_NOT_MASTER:
			lastErr = fmt.Errorf("%w: %s: %s", ErrNotMaster, endpoint, resp.Error)
			if resp.MasterAddress != "" && resp.MasterAddress != endpoint {
				c.remember(resp.MasterAddress)
				backoff = time.Millisecond // a redirect: go at once
			} else {
				c.forget(endpoint)
			}
		case messages.ErrorCode_ERROR_CODE_OVERLOADED:
			lastErr = fmt.Errorf("%w: %s", ErrOverloaded, resp.Error)
		case messages.ErrorCode_ERROR_CODE_UNAVAILABLE:
			lastErr = fmt.Errorf("%w: %s: %s", ErrNoMaster, endpoint, resp.Error)
			c.forget(endpoint)
		case messages.ErrorCode_ERROR_CODE_MASTER_CHANGED:
			if !idempotent {
				return nil, "", fmt.Errorf("%w: %s", ErrMasterChanged, resp.Error)
			}
			lastErr = fmt.Errorf("%w: %s", ErrNotMaster, resp.Error)
			c.forget(endpoint)
		case messages.ErrorCode_ERROR_CODE_OUTCOME_UNKNOWN:
			if !idempotent {
				return nil, "", fmt.Errorf("%w: %s", ErrOutcomeUnknown, resp.Error)
			}
			lastErr = fmt.Errorf("%w: %s", ErrNotMaster, resp.Error)
			c.forget(endpoint)
		case messages.ErrorCode_ERROR_CODE_TOO_LARGE:
			return nil, "", fmt.Errorf("%w: %s", ErrValueTooLarge, resp.Error)
		default:
			return nil, "", fmt.Errorf("%w: %s", ErrInvalid, resp.Error)
		}
	}
}

// readOnlyPayload reports whether an encoded MultiOp only reads.
func readOnlyPayload(payload []byte) bool {
	op := &messages.MultiOp{}
	return proto.Unmarshal(payload, op) == nil && readOnly(op)
}

func (c *Client) deadlineErr(last error) error {
	return fmt.Errorf("%w (deadline passed)", last)
}

// target is the master if known, else the endpoints in turn.
func (c *Client) target(attempt int) string {
	if m := c.master.Load(); m != nil {
		return *m
	}
	return c.cfg.Endpoints[(attempt+int(c.next.Load()))%len(c.cfg.Endpoints)]
}

func (c *Client) remember(endpoint string) {
	if m := c.master.Load(); m == nil || *m != endpoint {
		c.master.Store(&endpoint)
	}
}

func (c *Client) forget(endpoint string) {
	if m := c.master.Load(); m != nil && *m == endpoint {
		c.master.CompareAndSwap(m, nil)
	}
}

// discover asks the endpoints, all at once, who is master, and remembers
// the first that says it is. Another node's word is not enough for an
// endpoint it could ask itself: right after a master dies, the survivors
// still name it until they elect a new one, and a write sent there would
// end as "outcome unknown". A hint is used only for a master outside the
// configured endpoints.
func (c *Client) discover(ctx context.Context) error {
	// A short probe: a dead endpoint must not hold up a round in which the
	// live ones have already answered; the caller retries with back-off.
	probe, cancel := context.WithTimeout(ctx, min(c.cfg.AttemptTimeout, c.cfg.ProbeTimeout))
	defer cancel()
	type answer struct{ self, hint string }
	answers := make(chan answer, len(c.cfg.Endpoints))
	for _, ep := range c.cfg.Endpoints {
		go func() {
			st, err := c.Status(probe, ep)
			switch {
			case err != nil:
				answers <- answer{}
			case st.IsMaster:
				answers <- answer{self: ep}
			default:
				answers <- answer{hint: st.MasterAddress}
			}
		}()
	}
	outside := ""
	for range c.cfg.Endpoints {
		select {
		case a := <-answers:
			if a.self != "" {
				c.remember(a.self)
				return nil
			}
			if a.hint != "" && !slices.Contains(c.cfg.Endpoints, a.hint) {
				outside = a.hint
			}
		case <-probe.Done():
		}
	}
	if outside != "" {
		c.remember(outside)
		return nil
	}
	return fmt.Errorf("%w: no endpoint says it is master", ErrNoMaster)
}

// Status asks one node for its status.
func (c *Client) Status(ctx context.Context, endpoint string) (*messages.StatusResponse, error) {
	timeout := c.cfg.AttemptTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	reply, err := c.conns[0].sys.Root.RequestFuture(cluster.RolePID(endpoint, coreRole),
		&messages.StatusRequest{}, timeout).Result()
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", endpoint, err)
	}
	st, ok := reply.(*messages.StatusResponse)
	if !ok {
		return nil, fmt.Errorf("%w: status of %s: unexpected reply %T", ErrInvalid, endpoint, reply)
	}
	return st, nil
}

// Snapshot asks the node at endpoint to snapshot its state now (§5.5) and
// waits until the snapshot is durable and the log below it let go of.
func (c *Client) Snapshot(ctx context.Context, endpoint string) (*messages.SnapshotResponse, error) {
	timeout := time.Minute
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	reply, err := c.conns[0].sys.Root.RequestFuture(cluster.RolePID(endpoint, "snapshotter"),
		&messages.SnapshotRequest{RequestId: 1}, timeout).Result()
	if err != nil {
		return nil, fmt.Errorf("snapshot of %s: %w", endpoint, err)
	}
	resp, ok := reply.(*messages.SnapshotResponse)
	if !ok {
		return nil, fmt.Errorf("%w: snapshot of %s: unexpected reply %T", ErrInvalid, endpoint, reply)
	}
	if resp.Error != "" {
		return resp, fmt.Errorf("%w: snapshot of %s: %s", ErrSnapshot, endpoint, resp.Error)
	}
	return resp, nil
}

// Check asks the master to have every replica checksum its state at one
// instance and compare (§6.2), and returns that instance; each node's
// status then shows whether it agreed (CheckedInstance) or what diverged.
func (c *Client) Check(ctx context.Context) (uint64, error) {
	if err := c.discover(ctx); err != nil {
		return 0, err
	}
	var last error
	for attempt := 0; ctx.Err() == nil; attempt++ {
		ep := c.target(attempt)
		timeout := c.cfg.AttemptTimeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(dl))
		}
		reply, err := c.conns[0].sys.Root.RequestFuture(cluster.RolePID(ep, coreRole),
			&messages.CheckRequest{RequestId: 1}, timeout).Result()
		if err != nil {
			last = err
			c.forget(ep)
			continue
		}
		resp, ok := reply.(*messages.CheckResponse)
		if !ok {
			return 0, fmt.Errorf("%w: check: unexpected reply %T", ErrInvalid, reply)
		}
		if resp.Error == "" {
			c.remember(ep)
			return resp.Instance, nil
		}
		last = errors.New(resp.Error)
		c.forget(ep)
		if attempt >= 2*len(c.cfg.Endpoints) {
			break
		}
	}
	return 0, c.deadlineErr(last)
}

// ChangeMembers asks the master to add a member as a non-voting learner or
// remove a learner (§5.4) and returns the new membership version once the
// change is applied. Like a write, it is not repeated once it may have
// reached the master (a repeat would be refused as a stale version anyway).
func (c *Client) ChangeMembers(ctx context.Context, req *messages.MembersRequest) (uint64, error) {
	resp, _, err := c.call(ctx, request{write: true, members: req})
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(string(resp.Result), 10, 64)
}
