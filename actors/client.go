package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// Client is the Go client of a replica group that runs any state machine,
// for a caller with an actor system of its own, in any process: it sends
// commands and reads to the replicas' cores over protoactor's remoting,
// goes where an answer says the master is, retries what certainly changed
// nothing (a refusal, a read, an attempt never delivered) and never a
// command whose outcome is unknown. Safe for concurrent use. (Package
// client is the key-value database's client, over the gRPC client API.)
type Client struct {
	cfg ClientConfig
	mu  sync.Mutex
	// master is the address the last answer named as master.
	master string
	next   int
}

// ClientConfig describes a Client. System and Endpoints are required.
type ClientConfig struct {
	// System sends the requests; its remoting must be started
	// (cluster.NewSystem) so that the replicas' answers reach it.
	System *actor.ActorSystem
	// Endpoints are the members' peer addresses (host:port).
	Endpoints []string
	// Name is the replicas' actor name (Config.Name; default "replica").
	Name string
	// AttemptTimeout bounds one request to one replica (default 2 s).
	AttemptTimeout time.Duration
	// Errors are the state machine's own errors: a refusal whose text
	// begins with one's text wraps it, so errors.Is works on this side of
	// the wire too.
	Errors []error
}

// ErrNoEndpoints refuses a ClientConfig without endpoints.
var ErrNoEndpoints = errors.New("actors: a client needs endpoints and an actor system")

// NewClient returns a client of the group at cfg.Endpoints.
func NewClient(cfg ClientConfig) (*Client, error) {
	if len(cfg.Endpoints) == 0 || cfg.System == nil {
		return nil, ErrNoEndpoints
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = 2 * time.Second
	}
	return &Client{cfg: cfg}, nil
}

// ApplyError is a command or query the state machine refused on a replica
// in another process: its text, the result returned with it, and the one
// of ClientConfig.Errors it names (if any). It is ErrRejected too.
type ApplyError struct {
	Text   string
	Result []byte
	known  error
}

func (e *ApplyError) Error() string { return e.Text }

// Unwrap gives ErrRejected and the state machine's own error.
func (e *ApplyError) Unwrap() []error {
	if e.known != nil {
		return []error{ErrRejected, e.known}
	}
	return []error{ErrRejected}
}

// Propose submits a command to the master and returns the state machine's
// result once it is applied. Errors as Replica.Propose's; a refusal by the
// state machine is an *ApplyError.
func (c *Client) Propose(ctx context.Context, command []byte) ([]byte, error) {
	resp, err := c.call(ctx, true, func(id uint64) proto.Message {
		return &messages.ClientRequest{RequestId: id, Command: command}
	})
	if err != nil {
		return nil, err
	}
	return resp.Result, nil
}

// Read asks a read-only query with the given consistency (§5.2) and returns
// the answer and the epoch it was given in. A stale read goes to any
// replica, the others to the master; a read is retried until ctx ends.
func (c *Client) Read(ctx context.Context, query []byte, consistency messages.Consistency) ([]byte, uint64, error) {
	resp, err := c.call(ctx, false, func(id uint64) proto.Message {
		return &messages.ReadRequest{RequestId: id, Query: query, Consistency: consistency}
	})
	if err != nil {
		return nil, 0, err
	}
	return resp.Result, resp.Epoch, nil
}

// backoff bounds the waits between attempts that found no master.
const (
	backoffStart = 10 * time.Millisecond
	backoffMax   = 200 * time.Millisecond
)

// call sends a request (a write when write is set) until an answer that
// ends it, or ctx.
func (c *Client) call(ctx context.Context, write bool, build func(id uint64) proto.Message) (*messages.ClientResponse, error) {
	wait := backoffStart
	var last error = ErrNotMaster
	for id := uint64(1); ; id++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w (last: %v)", err, last)
		}
		target := c.target()
		timeout := c.cfg.AttemptTimeout
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
			timeout = time.Until(dl)
		}
		reply, err := c.cfg.System.Root.RequestFuture(actor.NewPID(target, c.cfg.Name+"/"+CoreName), build(id), timeout).Result()
		var resp *messages.ClientResponse
		switch {
		case errors.Is(err, actor.ErrDeadLetter):
			err = fmt.Errorf("%w: %s did not take the request", ErrNotMaster, target) // never delivered: safe to resend
		case err != nil && write:
			return nil, fmt.Errorf("%w: %v", ErrOutcomeUnknown, err) // it may have been proposed
		case err == nil:
			var ok bool
			if resp, ok = reply.(*messages.ClientResponse); !ok {
				return nil, fmt.Errorf("%w: unexpected answer %T", ErrRejected, reply)
			}
			err = c.errorOf(resp)
		}
		if err == nil {
			c.setMaster(target)
			return resp, nil
		}
		last = err
		var nm *NotMasterError
		switch {
		case errors.As(err, &nm) && nm.MasterAddress != "" && nm.MasterAddress != target:
			c.setMaster(nm.MasterAddress) // a redirect: go at once
			continue
		case errors.Is(err, ErrNotMaster), errors.Is(err, ErrOverloaded), errors.Is(err, ErrUnavailable):
			c.setMaster("") // nothing changed: try again, elsewhere
		case !write && resp == nil:
			c.setMaster("") // a read with no answer: try another
		default:
			return nil, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, backoffMax)
	}
}

// target is where the next attempt goes: the master if known, else the
// endpoints in turn.
func (c *Client) target() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.master != "" {
		return c.master
	}
	c.next++
	return c.cfg.Endpoints[c.next%len(c.cfg.Endpoints)]
}

func (c *Client) setMaster(addr string) {
	c.mu.Lock()
	c.master = addr
	c.mu.Unlock()
}

// errorOf is errorOf with the state machine's refusals as ApplyErrors.
func (c *Client) errorOf(resp *messages.ClientResponse) error {
	if resp.Code != messages.ErrorCode_ERROR_CODE_INVALID {
		return errorOf(resp)
	}
	e := &ApplyError{Text: resp.Error, Result: resp.Result}
	for _, known := range c.cfg.Errors {
		if strings.HasPrefix(resp.Error, known.Error()) {
			e.known = known
			break
		}
	}
	return e
}
