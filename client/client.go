// Package client is the Go client of a livepaxos cluster. It talks to the
// nodes' client ports (service livepaxos.v1.KV, gRPC) on connections it
// opens itself, and needs no inbound connection: any node answers, and
// one that is not master forwards the request to the master. The client
// goes straight to the master once an answer names its client address,
// retries what is safe to retry, and reports a write whose outcome it
// cannot know with ErrOutcomeUnknown instead of retrying it blindly.
package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"slices"

	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/internal/backoff"
	"github.com/livepaxos/livepaxos/internal/defaults"
	"github.com/livepaxos/livepaxos/messages"
)

// Config describes a client. Endpoints is required.
type Config struct {
	// Endpoints are client addresses (host:port, a node's
	// --client-advertise) of any nodes of the cluster; the client learns
	// the others from the membership and goes to the master on its own.
	Endpoints []string
	// TLS, when set, is used for every connection (tlsconf.ClientConfig
	// builds one from files); nil talks plaintext.
	TLS *tls.Config
	// Conns is the number of gRPC connections per node, each with its own
	// Stream; requests spread over them (default 1).
	Conns int
	// AttemptTimeout bounds one request to one node (default 5s); the
	// context bounds the whole call.
	AttemptTimeout time.Duration
	// CallTimeout bounds a whole call whose context has no deadline
	// (default 30s), so that no call retries forever.
	CallTimeout time.Duration
	// Limits are checked before anything is sent (defaults: see db.Limits).
	Limits db.Limits
	Logger *slog.Logger
}

// Client talks to a livepaxos cluster. It is safe for concurrent use.
type Client struct {
	cfg    Config
	next   atomic.Uint64
	master atomic.Pointer[string] // the master's client address, as last named
	closed atomic.Bool
	// learned: the membership was asked for once (refreshMembers).
	learned atomic.Bool

	mu        sync.Mutex
	nodes     map[string]*nodeConn
	endpoints []string             // configured, then learned from the membership
	avoid     map[string]time.Time // endpoints that failed, until when
	avoiding  atomic.Int32         // len(avoid), read without the lock on the hot path
	learnedAt time.Time            // last membership refresh

	// keeper keeps this client's sessions alive, all in one KeepAlive
	// (session.go).
	keeper sessionKeeper
}

// New prepares a client. It does not contact the cluster: connections
// open on first use.
func New(cfg Config) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("%w: no endpoints", ErrInvalid)
	}
	for _, e := range cfg.Endpoints {
		if _, _, err := net.SplitHostPort(e); err != nil {
			return nil, fmt.Errorf("%w: endpoint %q is not host:port", ErrInvalid, e)
		}
	}
	defaults.Positive(&cfg.Conns, 1)
	defaults.Positive(&cfg.AttemptTimeout, 5*time.Second)
	defaults.Positive(&cfg.CallTimeout, 30*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, nodes: map[string]*nodeConn{}, endpoints: slices.Clone(cfg.Endpoints),
		avoid: map[string]time.Time{}}, nil
}

// Close closes every connection; calls in flight end.
func (c *Client) Close() {
	if c.closed.Swap(true) {
		return
	}
	c.mu.Lock()
	nodes := c.nodes
	c.nodes = map[string]*nodeConn{}
	c.mu.Unlock()
	for _, n := range nodes {
		n.close()
	}
}

// node returns the connections to endpoint, dialing them on first use.
func (c *Client) node(endpoint string) (*nodeConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if n, ok := c.nodes[endpoint]; ok {
		return n, nil
	}
	n, err := dialNode(endpoint, c.cfg.Conns, c.cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, endpoint, err)
	}
	c.nodes[endpoint] = n
	return n, nil
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
	// Endpoint is the node the client asked; NodeID the one that answered
	// (for a lease or quorum read, the master, when Endpoint forwarded it).
	Endpoint string
	NodeID   uint32
}

// Put sets key to value.
func (c *Client) Put(ctx context.Context, key, value []byte) error {
	_, err := c.Txn(ctx, db.Put(key, value))
	return err
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

// RangeOptions shape a Range read. The zero value reads from the key to
// the last key, as many keys as one page holds, with a lease read.
type RangeOptions struct {
	End    []byte // exclusive; nil: no end
	Prefix bool   // the keys that start with the key (then End must be nil)
	// Limit and LimitBytes bound the page (keys; bytes of keys and
	// values); 0 or more than the cluster's maximum: its maximum.
	Limit       int
	LimitBytes  int
	Consistency Consistency
}

// RangePage is one page of a Range read, all as of one instance.
type RangePage struct {
	KVs []*messages.KeyValue // in key order, with their metadata
	// More: keys of the range were left out by a limit; Range from Next
	// (with the same End, or End set to db.PrefixEnd of a prefix)
	// continues.
	More    bool
	Next    []byte
	Applied uint64 // the instance the page was read at
}

// Range reads the keys of a range or a prefix in order, bounded by the
// options' limits, all as of one instance (issue 16, item 5).
func (c *Client) Range(ctx context.Context, key []byte, opts RangeOptions) (*RangePage, error) {
	op := &messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_RANGE, Key: key, RangeEnd: opts.End,
		Prefix: opts.Prefix, Limit: uint32(min(max(opts.Limit, 0), 1<<31)), LimitBytes: uint64(max(opts.LimitBytes, 0))}}}
	res, err := c.Read(ctx, op, opts.Consistency)
	if err != nil {
		return nil, err
	}
	if len(res.Results) != 1 {
		return nil, fmt.Errorf("%w: range answered with %d results", ErrInvalid, len(res.Results))
	}
	r := res.Results[0]
	return &RangePage{KVs: r.Kvs, More: r.More, Next: r.NextKey, Applied: res.Applied}, nil
}

// Read runs a read-only MultiOp (guards and gets; an epoch guard too) with
// the given consistency, without going through the log.
func (c *Client) Read(ctx context.Context, op *messages.MultiOp, consistency Consistency) (*ReadResult, error) {
	if !db.IsReadOnly(op) {
		return nil, fmt.Errorf("%w: Read takes a read-only MultiOp; use Txn", ErrInvalid)
	}
	res, r, endpoint, err := c.multiOp(ctx, op, &messages.StreamCall{Consistency: consistency}, true)
	if err != nil {
		return nil, err
	}
	h := r.GetHeader()
	return &ReadResult{MultiOpResult: res, Applied: h.GetInstance(), Epoch: h.GetEpoch(), Behind: h.GetBehind(),
		Endpoint: endpoint, NodeID: h.GetNodeId()}, nil
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
	// A command that only reads is as safe to repeat as a read, and so is
	// a session's write with a sequence number (it applies once).
	return c.txn(ctx, op, db.IsReadOnly(op) || op.GetSeq() != 0)
}

func (c *Client) txn(ctx context.Context, op *messages.MultiOp, idempotent bool) (*messages.MultiOpResult, error) {
	res, _, _, err := c.multiOp(ctx, op, &messages.StreamCall{Write: true}, idempotent)
	return res, err
}

// multiOp is Read's and Txn's shared path: op checked against the limits
// before anything is sent (a refusal changes nothing), sent as call's Op,
// and the answer decoded. It returns the result, the answer it came in
// (its header) and the endpoint that gave it.
func (c *Client) multiOp(ctx context.Context, op *messages.MultiOp, call *messages.StreamCall, idempotent bool) (*messages.MultiOpResult, *messages.StreamResult, string, error) {
	if err := c.cfg.Limits.Validate(op); err != nil {
		return nil, nil, "", mapValidation(err)
	}
	payload, err := proto.Marshal(op)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	call.Op = payload
	r, endpoint, err := c.call(ctx, call, idempotent)
	if err != nil {
		return nil, nil, "", err
	}
	res := &messages.MultiOpResult{}
	if err := proto.Unmarshal(r.Result, res); err != nil {
		return nil, nil, "", fmt.Errorf("%w: undecodable result: %v", ErrInvalid, err)
	}
	return res, r, endpoint, nil
}

// withDeadline bounds ctx by CallTimeout when it has no deadline.
func (c *Client) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.cfg.CallTimeout)
}

// attemptTimeout is one attempt's time: AttemptTimeout, or less if ctx
// ends sooner.
func (c *Client) attemptTimeout(ctx context.Context) time.Duration {
	t := c.cfg.AttemptTimeout
	if dl, ok := ctx.Deadline(); ok {
		t = min(t, time.Until(dl))
	}
	return t
}

// call sends one write or read on a Stream, to the master when known
// (any node otherwise, which forwards it; any node for a stale read),
// and follows the cluster's word until it has an answer. A call is sent
// again only when it certainly did not arrive, or when it changes nothing
// (idempotent).
func (c *Client) call(ctx context.Context, call *messages.StreamCall, idempotent bool) (*messages.StreamResult, string, error) {
	if c.closed.Load() {
		return nil, "", ErrClosed
	}
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	idempotent = idempotent || !call.Write
	stale := !call.Write && call.Consistency == Stale
	wait := time.Duration(0)
	var lastErr error = ErrNoMaster
	refused := map[string]bool{} // endpoints misconfigured for this client
	for attempt := 0; ; attempt++ {
		if wait > 0 {
			select {
			case <-ctx.Done():
				return nil, "", deadlineErr(lastErr)
			case <-time.After(wait):
			}
		}
		wait = backoff.Next(wait, 10*time.Millisecond, 200*time.Millisecond)
		timeout := c.attemptTimeout(ctx)
		if timeout <= 0 {
			return nil, "", deadlineErr(lastErr)
		}
		endpoint := c.target(attempt, stale)
		r, err := c.attempt(ctx, endpoint, call, timeout)
		if err != nil {
			if misconfigured(err) {
				// Not a fault to wait out: a wrong address or TLS setting.
				// Said at once when no endpoint is left to try.
				lastErr = fmt.Errorf("%w: %s: %w", ErrUnreachable, endpoint, explain(err))
				refused[endpoint] = true
				if len(refused) >= len(c.knownEndpoints()) {
					return nil, "", lastErr
				}
				c.unreachable(endpoint)
				wait = 0
				continue
			}
			if isNotSent(err) {
				c.unreachable(endpoint)
				lastErr = fmt.Errorf("%w: %s: %w", ErrNoMaster, endpoint, explain(err))
				if attempt%len(c.knownEndpoints()) == len(c.knownEndpoints())-1 {
					c.refreshMembers()
				} else {
					wait = 0 // never delivered: go elsewhere at once
				}
				continue
			}
			c.forgetMaster(endpoint)
			if !idempotent {
				return nil, "", fmt.Errorf("%w: no answer from %s", ErrOutcomeUnknown, endpoint)
			}
			lastErr = fmt.Errorf("%w: no answer from %s", ErrNoMaster, endpoint)
			continue
		}
		c.learn(endpoint, r.GetHeader(), stale)
		retry, err := c.outcome(r.Code, r.Error, endpoint, idempotent)
		if !retry {
			return r, endpoint, err
		}
		lastErr = err
		if m := r.GetHeader().GetMasterClientAddress(); m != "" && m != endpoint {
			// A redirect: go there, even if it could not be reached lately
			// (it was starting, say); were it still avoided, the next
			// attempt would come back here. At once, unless it failed
			// lately: then the back-off paces the round trips between a
			// node that keeps naming it and an endpoint not up yet.
			if !c.avoided(m) {
				wait = 0
			}
			c.reachable(m)
		}
	}
}

// attempt sends call to endpoint and waits up to timeout for its answer.
func (c *Client) attempt(ctx context.Context, endpoint string, call *messages.StreamCall, timeout time.Duration) (*messages.StreamResult, error) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n, err := c.node(endpoint)
	if err != nil {
		return nil, err
	}
	st, err := n.stream(actx, int(c.next.Add(1)%uint64(c.cfg.Conns)), 4096)
	if err != nil {
		return nil, err
	}
	msg := &messages.StreamCall{Write: call.Write, Op: call.Op, Consistency: call.Consistency}
	// The node gives up a little before this client does, so that its
	// answer (say, "no master found in time": nothing was proposed)
	// arrives before the client would have to call the outcome unknown.
	msg.TimeoutMs = uint32(timeout * 9 / 10 / time.Millisecond)
	sc, err := st.start(msg)
	if err != nil {
		return nil, err
	}
	select {
	case a := <-sc.done:
		return a.res, a.err
	case <-actx.Done():
		if !st.abandon(sc) {
			return nil, errNotSent
		}
		return nil, errLost
	}
}

// outcome maps a node's answer code to the caller's error, and says
// whether the call should be sent again.
func (c *Client) outcome(code messages.ErrorCode, msg, endpoint string, idempotent bool) (retry bool, err error) {
	switch code {
	case messages.ErrorCode_ERROR_CODE_OK:
		return false, nil
	case messages.ErrorCode_ERROR_CODE_NOT_MASTER, messages.ErrorCode_ERROR_CODE_UNAVAILABLE:
		// Nothing was proposed: the node found no master in time.
		c.forgetMaster(endpoint)
		return true, fmt.Errorf("%w: %s: %s", ErrNoMaster, endpoint, msg)
	case messages.ErrorCode_ERROR_CODE_MASTER_CHANGED:
		if !idempotent {
			return false, fmt.Errorf("%w: %s", ErrMasterChanged, msg)
		}
		return true, fmt.Errorf("%w: %s", ErrNotMaster, msg)
	case messages.ErrorCode_ERROR_CODE_OUTCOME_UNKNOWN:
		if !idempotent {
			return false, fmt.Errorf("%w: %s", ErrOutcomeUnknown, msg)
		}
		return true, fmt.Errorf("%w: %s", ErrNoMaster, msg)
	}
	if o, ok := codeOutcomes[code]; ok {
		return o.retry, fmt.Errorf("%w: %s", o.err, msg)
	}
	return false, fmt.Errorf("%w: %s", ErrInvalid, msg)
}

// codeOutcomes are the answer codes whose error is the same for every
// call, and whether the call should be sent again; outcome maps the
// others, and any code not known to it is ErrInvalid.
var codeOutcomes = map[messages.ErrorCode]struct {
	err   error
	retry bool
}{
	messages.ErrorCode_ERROR_CODE_OVERLOADED:        {ErrOverloaded, true},
	messages.ErrorCode_ERROR_CODE_NO_SPACE:          {ErrNoSpace, false},
	messages.ErrorCode_ERROR_CODE_PERMISSION_DENIED: {ErrPermissionDenied, false},
	messages.ErrorCode_ERROR_CODE_TOO_LARGE:         {ErrValueTooLarge, false},
	messages.ErrorCode_ERROR_CODE_RESULT_TOO_LARGE:  {ErrResultTooLarge, false},
	messages.ErrorCode_ERROR_CODE_SESSION_EXPIRED:   {ErrSessionExpired, false},
}

// target is where attempt goes: for a stale read, the endpoints in turn;
// otherwise the master when an answer named its client address, else the
// endpoints in turn (any node forwards to the master). Endpoints that
// failed lately come last.
func (c *Client) target(attempt int, stale bool) string {
	if !stale {
		if m := c.master.Load(); m != nil && !c.avoided(*m) {
			return *m
		}
	}
	eps := c.knownEndpoints()
	start := int(c.next.Load())
	if !stale {
		start = 0 // the same first choice for every call: one hop for all
	}
	for i := range eps {
		ep := eps[(start+attempt+i)%len(eps)]
		if !c.avoided(ep) {
			return ep
		}
	}
	return eps[(start+attempt)%len(eps)]
}

// knownEndpoints are the configured endpoints and those learned since.
func (c *Client) knownEndpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endpoints
}

// avoidFor is how long an endpoint that could not be reached comes last.
const avoidFor = 2 * time.Second

func (c *Client) avoided(ep string) bool {
	if c.avoiding.Load() == 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.avoid[ep]
	return ok && time.Now().Before(until)
}

// unreachable notes that nothing could be sent to ep.
func (c *Client) unreachable(ep string) {
	c.mu.Lock()
	c.avoid[ep] = time.Now().Add(avoidFor)
	c.avoiding.Store(int32(len(c.avoid)))
	c.mu.Unlock()
	c.forgetMaster(ep)
}

// reachable forgets that ep could not be reached: a node just named it
// the master.
func (c *Client) reachable(ep string) {
	if c.avoiding.Load() == 0 {
		return
	}
	c.mu.Lock()
	delete(c.avoid, ep)
	c.avoiding.Store(int32(len(c.avoid)))
	c.mu.Unlock()
}

// learn takes the master's client address from an answer's header, and
// the first time, the other members' from the membership.
func (c *Client) learn(endpoint string, h *messages.Header, stale bool) {
	if c.avoiding.Load() != 0 || !c.learned.Load() {
		c.mu.Lock()
		delete(c.avoid, endpoint)
		c.avoiding.Store(int32(len(c.avoid)))
		first := c.learnedAt.IsZero()
		c.mu.Unlock()
		c.learned.Store(true)
		if first {
			c.refreshMembers()
		}
	}
	if m := h.GetMasterClientAddress(); m != "" && !stale {
		if cur := c.master.Load(); cur == nil || *cur != m {
			c.master.Store(&m)
		}
	}
}

func (c *Client) forgetMaster(endpoint string) {
	if m := c.master.Load(); m != nil && *m == endpoint {
		c.master.CompareAndSwap(m, nil)
	}
}

// refreshEvery bounds how often the membership is asked for, and
// refreshTimeout how long the background call may take at least.
const (
	refreshEvery   = 5 * time.Second
	refreshTimeout = 2 * time.Second
)

// refreshMembers learns the members' client addresses, in the background,
// at most once per refreshEvery: a client given one endpoint finds the
// others.
func (c *Client) refreshMembers() {
	c.mu.Lock()
	if time.Since(c.learnedAt) < refreshEvery {
		c.mu.Unlock()
		return
	}
	c.learnedAt = time.Now()
	c.mu.Unlock()
	go func() {
		// In the background, so not held to a request's attempt timeout:
		// under load a first call (a new connection) can take longer.
		ctx, cancel := context.WithTimeout(context.Background(), max(c.cfg.AttemptTimeout, refreshTimeout))
		defer cancel()
		m, err := c.Members(ctx)
		if err != nil {
			// Ask again on the next answer rather than after refreshEvery:
			// until it succeeds the client knows only its configured
			// endpoints, and may lose them all.
			c.mu.Lock()
			c.learnedAt = time.Time{}
			c.mu.Unlock()
			c.learned.Store(false)
			return
		}
		c.learnEndpoints(m)
	}()
}

// learnEndpoints adds the members' client addresses to the endpoints.
func (c *Client) learnEndpoints(m *messages.Membership) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, mem := range m.GetMembers() {
		if a := mem.ClientAddress; a != "" && !slices.Contains(c.endpoints, a) {
			c.endpoints = append(slices.Clone(c.endpoints), a)
		}
	}
}

// mapValidation turns a database limit error into the client's sentinel.
func mapValidation(err error) error {
	switch {
	case err == nil:
		return nil
	case isEmptyKey(err):
		return fmt.Errorf("%w: %v", ErrEmptyKey, err)
	case isTooLarge(err):
		return fmt.Errorf("%w: %v", ErrValueTooLarge, err)
	}
	return fmt.Errorf("%w: %v", ErrInvalid, err)
}

func deadlineErr(last error) error { return fmt.Errorf("%w (deadline passed)", last) }
