package server

import (
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/internal/backoff"
	"github.com/livepaxos/livepaxos/messages"
)

// kind is what a request asks of the group, which decides where it goes
// and whether it may be sent again.
type kind int

const (
	kindWrite     kind = iota // a command through the log, at the master's proposer
	kindRead                  // a read at a lease manager (the master's unless stale)
	kindMembers               // a membership change, at the master's proposer
	kindCheck                 // a consistency check, at the master's proposer
	kindSnapshot              // a snapshot of this node, at its own snapshotter
	kindKeepAlive             // a session's KeepAlive, at the master's core
)

// request is one client request on its way through this node: it is sent
// again, to the master as this node then knows it, as long as it certainly
// was not acted on and its deadline allows.
type request struct {
	kind        kind
	payload     []byte // writes and reads: the encoded MultiOp
	admin       bool   // a write the caller was authorized for as an operator (SetLimits)
	consistency messages.Consistency
	members     *messages.MembersRequest
	session     uint64 // kindKeepAlive: one session, or
	sessions    []uint64
	deadline    time.Time
	backoff     time.Duration
	// tried is the node the last attempt went to, so that a refusal that
	// names no other master waits before the next attempt.
	tried uint32
	// masterless is when the request first found no master to go to
	// (Config.NoMasterWait).
	masterless time.Time
}

// noMaster reports whether a is an attempt's end that shows no master
// this node can reach: none known, its connection down, or a refusal
// that names none.
func noMaster(a answer) bool {
	if errors.Is(a.err, errNoMaster) || errors.Is(a.err, errMasterUnreachable) {
		return true
	}
	m, ok := a.msg.(*messages.ClientResponse)
	return ok && m.Code == messages.ErrorCode_ERROR_CODE_NOT_MASTER && m.MasterId == 0
}

// idempotent reports whether a request may be sent again after it may
// have arrived: reads and checks change nothing (a check only adds a
// checksum value).
func (r *request) idempotent() bool {
	return r.kind == kindRead || r.kind == kindSnapshot || r.kind == kindCheck || r.kind == kindKeepAlive
}

// errNoMaster: no master is known here, or none answered in time.
var errNoMaster = errors.New("no master known")

// errMasterUnreachable: the master this node knows is not connected to it.
var errMasterUnreachable = errors.New("the master is not reachable from this node")

// Retry pacing for a request refused because its target was not master (an
// election under way): short at first, never more than maxBackoff.
const (
	firstBackoff = 5 * time.Millisecond
	maxBackoff   = 100 * time.Millisecond
)

// dispatch sends req on its way and calls done once with the answer. It
// never blocks: answers, retries and time-outs arrive on other goroutines.
func (s *Server) dispatch(req *request, done func(answer)) {
	target, to, err := s.route(req)
	if err != nil {
		s.retryOr(req, done, answer{err: err})
		return
	}
	req.tried = to
	s.fwd.send(target, req.deadline, req.idempotent(), func(id uint64) any { return req.message(id) }, func(a answer) {
		s.settle(req, done, a)
	})
}

// route picks the role actor that serves req: this node's own when it is
// master (or for stale reads and snapshots), else the master's as this
// node knows it.
func (s *Server) route(req *request) (*actor.PID, uint32, error) {
	self := s.replica.NodeID()
	role := actors.ProposerName
	switch req.kind {
	case kindSnapshot:
		return s.replica.RolePID(self, actors.SnapshotterName), self, nil
	case kindRead:
		role = actors.LeaseName
		if req.consistency == messages.Consistency_CONSISTENCY_STALE {
			return s.replica.RolePID(self, role), self, nil
		}
	}
	master, isSelf := s.replica.Master()
	switch {
	case isSelf:
		master = self
	case master == 0:
		return nil, 0, errNoMaster
	}
	pid := s.replica.RolePID(master, role)
	switch {
	case pid == nil:
		return nil, 0, errNoMaster
	case !req.idempotent() && master != self && s.fwd.isDown(pid.Address):
		// A write sent to a peer whose connection is down could be lost
		// with no way to tell (see inbox.SendUserMessage): wait for it to
		// come back or for another master.
		return nil, 0, errMasterUnreachable
	}
	return pid, master, nil
}

// message builds the actor message of one attempt.
func (r *request) message(id uint64) any {
	switch r.kind {
	case kindRead:
		return &messages.ReadRequest{RequestId: id, Query: r.payload, Consistency: r.consistency}
	case kindMembers:
		m := proto.Clone(r.members).(*messages.MembersRequest)
		m.RequestId = id
		return m
	case kindCheck:
		return &messages.CheckRequest{RequestId: id}
	case kindSnapshot:
		return &messages.SnapshotRequest{RequestId: id}
	case kindKeepAlive:
		return &messages.KeepAliveRequest{RequestId: id, Session: r.session, Sessions: r.sessions}
	}
	return &messages.ClientRequest{RequestId: id, Command: r.payload, Admin: r.admin}
}

// settle decides what an attempt's outcome means: the final answer, or
// another attempt when the request certainly was not acted on (or changes
// nothing) and time remains.
func (s *Server) settle(req *request, done func(answer), a answer) {
	switch {
	case errors.Is(a.err, errNotDelivered):
		s.retryOr(req, done, answer{err: errNoMaster})
		return
	case errors.Is(a.err, errNoAnswer) && req.idempotent():
		s.retryOr(req, done, a)
		return
	case a.err != nil:
		done(a)
		return
	}
	switch m := a.msg.(type) {
	case *messages.ClientResponse:
		if m.Code == messages.ErrorCode_ERROR_CODE_NOT_MASTER {
			// Refused before anything was proposed: the target was not
			// master (any more). Follow its word, or wait for an election.
			if m.MasterId != 0 && m.MasterId != req.tried {
				req.backoff = 0
			}
			s.retryOr(req, done, a)
			return
		}
	case *messages.CheckResponse:
		if m.Error != "" && m.Instance == 0 && req.kind == kindCheck {
			s.retryOr(req, done, a)
			return
		}
	}
	done(a)
}

// retryOr sends req again after its back-off if its deadline allows, and
// otherwise ends it with last.
func (s *Server) retryOr(req *request, done func(answer), last answer) {
	wait := req.backoff
	now := time.Now()
	if noMaster(last) {
		if req.masterless.IsZero() {
			req.masterless = now
		}
		if now.Add(wait).Sub(req.masterless) > s.cfg.NoMasterWait {
			done(last) // say so while the client has time to go elsewhere
			return
		}
	} else {
		req.masterless = time.Time{}
	}
	if !now.Add(wait).Before(req.deadline) {
		done(last)
		return
	}
	req.backoff = backoff.Next(req.backoff, firstBackoff, maxBackoff)
	if wait == 0 {
		s.dispatch(req, done)
		return
	}
	time.AfterFunc(wait, func() { s.dispatch(req, done) })
}
