package actors

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/core"
	"github.com/livepaxos/livepaxos/messages"
)

// The embedding API: a host in the same process as the replica proposes,
// reads, snapshots and changes the membership with these calls. Their
// requests go to the replica core's actor as Go values and their answers
// come back the same way, so the state machine's own errors reach the
// caller as they are (errors.Is works) with the result beside them. A
// client in another process talks to the replica with Client (client.go)
// or the protocol messages.

// Propose submits a command through this replica and waits until it is
// chosen and applied, returning the state machine's result. It succeeds
// only on the master; elsewhere it returns a *NotMasterError naming the
// master when known (errors.Is(err, ErrNotMaster)). If Apply refused the
// command, err wraps both ErrRejected and Apply's own error, and result
// is what Apply returned with it. sender is any context of the system the
// replica runs in (for example system.Root).
func (r *Replica) Propose(ctx context.Context, sender actor.SenderContext, command []byte) (result []byte, err error) {
	if err := r.checkCommand(command, false); err != nil {
		return nil, localRefusal(err)
	}
	a, err := r.call(ctx, sender, 10*time.Second, func(d *core.Driver, t localToken) {
		d.Propose(&messages.Command{ReplyAddress: r.localAddress, ReplyId: t.String(), RequestId: uint64(t), Payload: command})
	})
	if err != nil {
		return nil, outcomeUnknown(err)
	}
	return a.commandResult()
}

// Read asks this replica a read-only query with the given consistency
// (§5.2) and returns the state machine's answer and the epoch it was given
// in. A stale read is answered by any replica; lease and quorum reads only
// by the master (elsewhere a *NotMasterError), a lease read at once while
// the master's lease holds, else once a majority confirmed its mastership
// (ErrUnavailable if that did not happen in time). A Query error wraps
// ErrRejected and the error itself. A state machine that is not a Reader
// has the query go through the log as a command.
func (r *Replica) Read(ctx context.Context, sender actor.SenderContext, query []byte, consistency messages.Consistency) (result []byte, epoch uint64, err error) {
	if _, ok := r.cfg.StateMachine.(Reader); !ok {
		a, err := r.call(ctx, sender, 10*time.Second, func(d *core.Driver, t localToken) {
			d.Propose(&messages.Command{ReplyAddress: r.localAddress, ReplyId: t.String(), RequestId: uint64(t), Payload: query})
		})
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		result, err := a.commandResult()
		if a.resp != nil {
			epoch = a.resp.Epoch
		}
		return result, epoch, err
	}
	req := &messages.ReadRequest{Query: query, Consistency: consistency}
	if resp, qerr, ok := r.serveRead(req); ok {
		return readResult(resp, qerr)
	}
	a, err := r.call(ctx, sender, 10*time.Second, func(d *core.Driver, t localToken) { d.Read(req, t) })
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if a.resp == nil {
		return nil, 0, a.err
	}
	return readResult(a.resp, a.err)
}

// ServeRead serves a read on the calling goroutine when this replica can
// do so alone (§5.2), with the core's lease-serving decision
// (core.View.Decide) on the view the core last published: a stale read
// always; a lease read while this replica is master and its lease holds.
// ok is false otherwise: the read must go to the core (of the master) as a
// messages.ReadRequest, which serves it once a majority confirmed the
// mastership (a quorum read, a lease read without a lease), or refuses it
// naming the master. Safe for concurrent use.
func (r *Replica) ServeRead(m *messages.ReadRequest) (resp *messages.ClientResponse, ok bool) {
	resp, _, ok = r.serveRead(m)
	if !ok || resp.Code != messages.ErrorCode_ERROR_CODE_OK {
		return nil, false
	}
	return resp, true
}

func (r *Replica) serveRead(m *messages.ReadRequest) (*messages.ClientResponse, error, bool) {
	v := r.view.Load()
	if _, isReader := r.cfg.StateMachine.(Reader); !isReader || v == nil {
		return nil, nil, false
	}
	if r.stopped.Load() && !v.Stopped {
		stopped := *v
		stopped.Stopped = true
		v = &stopped
	}
	now := time.Now()
	dec := v.Decide(m.Consistency, now)
	if dec.Confirm {
		return nil, nil, false
	}
	resp, err := core.Serve(r.cfg.StateMachine, v, m, dec)
	if dec.Lease {
		// A master handing over gives its lease up before the lease ends
		// (paxos/handover.go): it publishes a view without it and only
		// then, in a later step, lets the acceptors release it. A read
		// that found the lease still published after reading the state
		// machine was served before that: otherwise the core decides.
		if cur := r.view.Load(); cur != v && !cur.Decide(m.Consistency, now).Lease {
			return nil, nil, false
		}
	}
	return resp, err, true
}

// readResult is a read's answer as the API returns it.
func readResult(resp *messages.ClientResponse, queryErr error) ([]byte, uint64, error) {
	if queryErr != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrRejected, queryErr)
	}
	if err := errorOf(resp); err != nil {
		return nil, 0, err
	}
	return resp.Result, resp.Epoch, nil
}

// Snapshot has this replica snapshot its state machine now (§5.5) and
// returns once the snapshot is durable, with the instance it is as of; the
// log below it is then let go of. The state machine must implement
// Snapshotter. Snapshots are per replica: the others are not asked.
func (r *Replica) Snapshot(ctx context.Context, sender actor.SenderContext) (instance uint64, err error) {
	a, err := r.call(ctx, sender, time.Minute, func(d *core.Driver, t localToken) { d.RequestSnapshot(t) })
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	resp, ok := a.msg.(*messages.SnapshotResponse)
	switch {
	case a.err != nil:
		return 0, fmt.Errorf("%w: %w", ErrSnapshot, a.err)
	case !ok:
		return 0, fmt.Errorf("%w: unexpected answer %T", ErrSnapshot, a.msg)
	case resp.Error != "":
		return 0, fmt.Errorf("%w: %s", ErrSnapshot, resp.Error)
	}
	return resp.Instance, nil
}

// ChangeMembers asks this replica (the master) to change the membership
// (§5.4): add a member as a non-voting learner, promote a learner, or
// remove a member, through the log; it returns the new membership version
// once the change is applied here. A change that cannot be made is
// ErrMembership; elsewhere than the master, a *NotMasterError.
func (r *Replica) ChangeMembers(ctx context.Context, sender actor.SenderContext, req *messages.MembersRequest) (version uint64, err error) {
	a, err := r.call(ctx, sender, 10*time.Second, func(d *core.Driver, t localToken) {
		d.ChangeMembers(req, &messages.Command{ReplyAddress: r.localAddress, ReplyId: t.String()})
	})
	if err != nil {
		return 0, outcomeUnknown(err)
	}
	if a.resp == nil {
		return 0, a.err
	}
	switch a.resp.Code {
	case messages.ErrorCode_ERROR_CODE_OK:
		return strconv.ParseUint(string(a.resp.Result), 10, 64)
	case messages.ErrorCode_ERROR_CODE_INVALID:
		return 0, fmt.Errorf("%w: %s", ErrMembership, a.resp.Error)
	}
	return 0, errorOf(a.resp)
}

// Members returns the group's configuration as this replica applied it
// (§5.4), with each member's peer and client addresses (a copy).
func (r *Replica) Members() *messages.Membership {
	return proto.Clone(r.members.Load()).(*messages.Membership)
}

// outcomeUnknown is the error of a write whose call failed: its outcome
// is unknown, unless it was turned away before it was sent.
func outcomeUnknown(err error) error {
	if errors.Is(err, ErrOverloaded) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
}

// localRefusal is the API's error for a command refused before the core.
func localRefusal(err error) error {
	if errors.Is(err, ErrStopped) || errors.Is(err, ErrTooLarge) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalid, err)
}

// localToken names a caller in this process waiting for an answer.
type localToken uint64

func (t localToken) String() string { return strconv.FormatUint(uint64(t), 10) }

// localAnswer is what a local caller gets: a command's or read's response
// (with the state machine's own error), or another answer (msg), or why
// none came (err alone).
type localAnswer struct {
	resp *messages.ClientResponse
	msg  proto.Message
	err  error
}

// commandResult is a command's answer as the API returns it.
func (a localAnswer) commandResult() ([]byte, error) {
	switch {
	case a.resp == nil:
		return nil, a.err
	case a.err != nil: // Apply's own error, and its result
		return a.resp.Result, fmt.Errorf("%w: %w", ErrRejected, a.err)
	}
	return a.resp.Result, errorOf(a.resp)
}

// waiters are the local callers waiting for answers from the core's
// actor. Safe for concurrent use.
type waiters struct {
	mu     sync.Mutex
	next   localToken
	m      map[localToken]chan localAnswer
	failed error
}

func (w *waiters) init() { w.m = make(map[localToken]chan localAnswer) }

func (w *waiters) add() (localToken, chan localAnswer, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed != nil {
		return 0, nil, w.failed
	}
	w.next++
	ch := make(chan localAnswer, 1)
	w.m[w.next] = ch
	return w.next, ch, nil
}

// deliver hands id its answer (once; a caller that gave up gets nothing).
func (w *waiters) deliver(id uint64, a localAnswer) {
	w.mu.Lock()
	ch := w.m[localToken(id)]
	delete(w.m, localToken(id))
	w.mu.Unlock()
	if ch != nil {
		ch <- a
	}
}

func (w *waiters) drop(t localToken) {
	w.mu.Lock()
	delete(w.m, t)
	w.mu.Unlock()
}

// failAll answers every waiter with err, and every later caller.
func (w *waiters) failAll(err error) {
	w.mu.Lock()
	chs := w.m
	w.m, w.failed = make(map[localToken]chan localAnswer), err
	w.mu.Unlock()
	for _, ch := range chs {
		ch <- localAnswer{err: err}
	}
}

// call runs a request on the core's actor and waits for its answer, until
// ctx's deadline (or fallback without one).
func (r *Replica) call(ctx context.Context, sender actor.SenderContext, fallback time.Duration, run func(d *core.Driver, t localToken)) (localAnswer, error) {
	timeout, err := requestTimeout(ctx, fallback)
	if err != nil {
		return localAnswer{}, err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select { // a request sent before the core's actor runs would be lost
	case <-r.started:
	case <-ctx.Done():
		return localAnswer{}, ctx.Err()
	case <-timer.C:
		return localAnswer{}, fmt.Errorf("%w: the replica was not started", context.DeadlineExceeded)
	}
	if m := r.coreMailbox.Load(); m != nil && m.full() {
		// Back-pressure at the door: nothing was sent (mailbox.go).
		return localAnswer{}, r.overloaded()
	}
	t, ch, err := r.local.add()
	if err != nil {
		return localAnswer{}, err
	}
	sender.Send(r.pid(r.cfg.NodeID, CoreName), &localRequest{run: func(d *core.Driver) { run(d, t) }})
	select {
	case a := <-ch:
		return a, nil
	case <-ctx.Done():
		r.local.drop(t)
		return localAnswer{}, ctx.Err()
	case <-timer.C:
		r.local.drop(t)
		return localAnswer{}, context.DeadlineExceeded
	}
}

// requestTimeout is how long a request to the replica may wait: until ctx's
// deadline, or fallback without one; an expired ctx is its error.
func requestTimeout(ctx context.Context, fallback time.Duration) (time.Duration, error) {
	timeout := fallback
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return 0, context.DeadlineExceeded
	}
	return timeout, nil
}
