package client

import (
	"context"
	"fmt"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/livepaxos/livepaxos/messages"
)

// rpcError is a unary call's error as the caller sees it: what the node
// said, or (when no node answered) why the endpoint could not be reached.
// nodeSaid reports which.
func (c *Client) rpcError(endpoint string, err error) (code messages.ErrorCode, msg string, nodeSaid bool, out error) {
	st := status.Convert(err)
	if code, _, _, ok := messages.StatusError(st); ok {
		return code, st.Message(), true, nil
	}
	return 0, "", false, fmt.Errorf("%w: %s: %w", ErrUnreachable, endpoint, explain(err))
}

// Status asks the node at endpoint (a client address) for its status: its
// own view of the group.
func (c *Client) Status(ctx context.Context, endpoint string) (*messages.StatusResponse, error) {
	n, err := c.node(endpoint)
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, c.attemptTimeout(ctx))
	defer cancel()
	st, err := n.kvs[0].Status(actx, &messages.StatusRequest{})
	if err != nil {
		if _, msg, said, out := c.rpcError(endpoint, err); !said {
			return nil, out
		} else {
			return nil, fmt.Errorf("%w: status of %s: %s", ErrInvalid, endpoint, msg)
		}
	}
	return st, nil
}

// Members returns the group's configuration as the first node that
// answers applied it: each member's id, role, peer and client addresses.
func (c *Client) Members(ctx context.Context) (*messages.Membership, error) {
	var lastErr error = ErrNoMaster
	for attempt, eps := 0, c.knownEndpoints(); attempt < len(eps)+1; attempt++ {
		ep := c.target(attempt, false)
		n, err := c.node(ep)
		if err != nil {
			return nil, err
		}
		actx, cancel := context.WithTimeout(ctx, c.attemptTimeout(ctx))
		m, err := n.kvs[0].Members(actx, &messages.MembersListRequest{})
		cancel()
		if err == nil {
			c.learnEndpoints(m) // any membership seen teaches the others' addresses
			return m, nil
		}
		_, msg, said, out := c.rpcError(ep, err)
		if said {
			out = fmt.Errorf("%w: members of %s: %s", ErrInvalid, ep, msg)
		} else {
			c.unreachable(ep)
		}
		lastErr = out
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// Snapshot asks the node at endpoint to snapshot its state now (§5.5) and
// waits until the snapshot is durable and the log below it let go of.
func (c *Client) Snapshot(ctx context.Context, endpoint string) (*messages.SnapshotResponse, error) {
	n, err := c.node(endpoint)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	resp, err := n.kvs[0].Snapshot(ctx, &messages.SnapshotRequest{})
	if err != nil {
		_, msg, said, out := c.rpcError(endpoint, err)
		if said {
			return nil, fmt.Errorf("%w: snapshot of %s: %s", ErrSnapshot, endpoint, msg)
		}
		return nil, out
	}
	if resp.Error != "" {
		return resp, fmt.Errorf("%w: snapshot of %s: %s", ErrSnapshot, endpoint, resp.Error)
	}
	return resp, nil
}

// Check asks the master (through any node) to have every replica checksum
// its state at one instance and compare (§6.2), and returns that
// instance; each node's status then shows whether it agreed
// (CheckedInstance) or what diverged.
func (c *Client) Check(ctx context.Context) (uint64, error) {
	var at uint64
	err := c.masterCall(ctx, true, func(actx context.Context, ep string, n *nodeConn) error {
		resp, err := n.kvs[0].Check(actx, &messages.CheckRequest{})
		if err == nil {
			at = resp.Instance
		}
		return err
	})
	return at, err
}

// ChangeMembers asks the master to change the membership through the log
// (§5.4): add a member as a non-voting learner, promote a learner, remove
// a member, or record a member's client address. It returns the new
// membership version once the change is applied. Like a write, it is not
// sent again once it may have reached a node (a repeat would be refused as
// a stale version anyway): then it fails with ErrOutcomeUnknown.
func (c *Client) ChangeMembers(ctx context.Context, req *messages.MembersRequest) (uint64, error) {
	var version uint64
	err := c.masterCall(ctx, false, func(actx context.Context, ep string, n *nodeConn) error {
		resp, err := n.kvs[0].ChangeMembers(actx, req)
		if err == nil {
			c.learn(ep, resp.Header, false)
			version = resp.Version
		}
		return err
	})
	return version, err
}

// masterCall makes one unary call meant for the master (any node forwards
// it) through the nodes in turn, 50 ms apart, until a node answers with a
// final outcome or ctx (bounded by CallTimeout) ends. send makes the call
// on one node and returns its error. An idempotent call goes again after
// any failure; one that is not (idempotent false) is sent only on a ready
// connection, and once it may have reached a node it is not sent again: a
// missing answer is then ErrOutcomeUnknown.
func (c *Client) masterCall(ctx context.Context, idempotent bool, send func(actx context.Context, ep string, n *nodeConn) error) error {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	var lastErr error = ErrNoMaster
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return deadlineErr(lastErr)
			case <-time.After(50 * time.Millisecond):
			}
		}
		ep := c.target(attempt, false)
		n, err := c.node(ep)
		if err != nil {
			return err
		}
		actx, cancelAttempt := context.WithTimeout(ctx, c.attemptTimeout(ctx))
		if !idempotent {
			if err := n.ready(actx); err != nil {
				cancelAttempt()
				c.unreachable(ep)
				lastErr = fmt.Errorf("%w: %s: %w", ErrNoMaster, ep, explain(err))
				continue
			}
		}
		err = send(actx, ep, n)
		cancelAttempt()
		if err == nil {
			return nil
		}
		code, msg, said, out := c.rpcError(ep, err)
		if !said {
			if !idempotent {
				return fmt.Errorf("%w: no answer from %s: %v", ErrOutcomeUnknown, ep, explain(err))
			}
			c.unreachable(ep)
			lastErr = out
			continue
		}
		retry, e := c.outcome(code, msg, ep, idempotent)
		if !retry {
			return e
		}
		lastErr = e
	}
}

// Health asks the node at endpoint the standard gRPC health service
// (grpc.health.v1) about the whole server: true while the node is ready
// for traffic (it knows a master, has caught up, has not diverged, has
// disk; see server.Readiness), false while it serves but is not ready.
func (c *Client) Health(ctx context.Context, endpoint string) (bool, error) {
	n, err := c.node(endpoint)
	if err != nil {
		return false, err
	}
	actx, cancel := context.WithTimeout(ctx, c.attemptTimeout(ctx))
	defer cancel()
	resp, err := healthpb.NewHealthClient(n.ccs[0]).Check(actx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return false, fmt.Errorf("%w: %s: %w", ErrUnreachable, endpoint, explain(err))
	}
	return resp.Status == healthpb.HealthCheckResponse_SERVING, nil
}

// TransferMastership asks the master to hand mastership to voter to (0:
// the most caught-up voter) without a fail-over's outage, and returns the
// new master's id once the old master knows it. It finds the master
// through any endpoint (a node that is not master names it).
func (c *Client) TransferMastership(ctx context.Context, to uint32) (uint32, error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	var lastErr error = ErrNoMaster
	ep := ""
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if ep == "" {
			ep = c.target(attempt, false)
		}
		n, err := c.node(ep)
		if err != nil {
			return 0, err
		}
		resp, err := n.kvs[0].TransferMastership(ctx, &messages.TransferMastershipRequest{To: to})
		if err == nil {
			return resp.MasterId, nil
		}
		code, _, master, said := messages.StatusError(status.Convert(err))
		switch {
		case !said:
			c.unreachable(ep)
			lastErr, ep = fmt.Errorf("%w: %s: %w", ErrUnreachable, ep, explain(err)), ""
		case code == messages.ErrorCode_ERROR_CODE_NOT_MASTER && master != "" && master != ep:
			lastErr, ep = fmt.Errorf("%w: %s", ErrNotMaster, status.Convert(err).Message()), master
			continue // to the master at once
		case code == messages.ErrorCode_ERROR_CODE_NOT_MASTER:
			lastErr, ep = fmt.Errorf("%w: %s: %s", ErrNoMaster, ep, status.Convert(err).Message()), ""
		default:
			return 0, fmt.Errorf("%w: %s", ErrInvalid, status.Convert(err).Message())
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return 0, deadlineErr(lastErr)
}

// SetLimits sets the group's value limit through the log (operators only:
// with client certificates, an admin one): from the instance it is chosen
// at (the answer's SetInstance), every node refuses larger values, and
// every replica applies by it alike. Values stored before stay. Setting
// the same limit again is harmless, so a call whose outcome is unknown is
// sent again.
func (c *Client) SetLimits(ctx context.Context, maxValueBytes uint64) (*messages.LimitsResponse, error) {
	return c.SetGroupLimits(ctx, &messages.SetLimitsRequest{MaxValueBytes: maxValueBytes})
}

// SetGroupLimits sets the group's value limit, its result limit or both
// through the log, as SetLimits does (a 0 leaves that limit as it is).
// From the instance it is chosen at, every replica refuses, as a whole,
// a MultiOp whose result would be over the result limit
// (ErrResultTooLarge).
func (c *Client) SetGroupLimits(ctx context.Context, req *messages.SetLimitsRequest) (*messages.LimitsResponse, error) {
	var out *messages.LimitsResponse
	err := c.masterCall(ctx, true, func(actx context.Context, ep string, n *nodeConn) error {
		resp, err := n.kvs[0].SetLimits(actx, req)
		if err == nil {
			c.learn(ep, resp.Header, false)
			out = resp
		}
		return err
	})
	return out, err
}

// Limits returns the group's value and result limits as the master (or, without one,
// the node that answers) applied the log.
func (c *Client) Limits(ctx context.Context) (*messages.LimitsResponse, error) {
	var out *messages.LimitsResponse
	err := c.masterCall(ctx, true, func(actx context.Context, ep string, n *nodeConn) error {
		resp, err := n.kvs[0].Limits(actx, &messages.LimitsRequest{})
		if err == nil {
			out = resp
		}
		return err
	})
	return out, err
}
