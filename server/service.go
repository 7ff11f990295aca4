package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// kvService implements messages.KVServer: each unary call becomes one
// request through dispatch, answered on the caller's connection.
type kvService struct {
	messages.UnimplementedKVServer
	s *Server
}

// do runs req to its end, synchronously, within ctx.
func (s *Server) do(ctx context.Context, req *request) answer {
	req.deadline = s.deadline(ctx, 0)
	if req.kind == kindRead {
		if resp, ok := s.replica.ServeRead(&messages.ReadRequest{Query: req.payload, Consistency: req.consistency}); ok {
			return answer{msg: resp}
		}
	}
	ch := make(chan answer, 1)
	s.dispatch(req, func(a answer) { ch <- a })
	select {
	case a := <-ch:
		return a
	case <-ctx.Done():
		return answer{err: errNoAnswer}
	}
}

// deadline is when a request must be done by: ctx's deadline, else the
// call's own timeout (timeout > 0), else the configured default.
func (s *Server) deadline(ctx context.Context, timeout time.Duration) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	if timeout <= 0 {
		timeout = s.cfg.RequestTimeout
	}
	return time.Now().Add(timeout)
}

// multiOpAnswer turns an answer to a write or read into its API form.
func (s *Server) multiOpAnswer(req *request, a answer) (*messages.TxnResponse, error) {
	if f := s.failureOf(req, a); f != nil {
		return nil, s.status(f)
	}
	resp, ok := a.msg.(*messages.ClientResponse)
	if !ok {
		return nil, s.invalid(messages.ErrorCode_ERROR_CODE_INVALID, fmt.Sprintf("unexpected answer %T", a.msg))
	}
	res := &messages.MultiOpResult{}
	if err := proto.Unmarshal(resp.Result, res); err != nil {
		return nil, s.invalid(messages.ErrorCode_ERROR_CODE_INVALID, "undecodable result: "+err.Error())
	}
	return &messages.TxnResponse{Header: s.header(resp), Result: res}, nil
}

// checkOp validates a MultiOp before it goes anywhere: its size and, with
// Config.Validate, the database's limits.
func (s *Server) checkOp(op *messages.MultiOp, readOnly bool) ([]byte, error) {
	if op == nil {
		op = &messages.MultiOp{}
	}
	if readOnly && !db.IsReadOnly(op) {
		return nil, s.invalid(messages.ErrorCode_ERROR_CODE_INVALID, "Read takes a read-only MultiOp (gets and guards); use Txn")
	}
	if v := s.cfg.Validate; v != nil {
		if err := v(op); err != nil {
			code := messages.ErrorCode_ERROR_CODE_INVALID
			switch {
			case errors.Is(err, actors.ErrTooLarge):
				code = messages.ErrorCode_ERROR_CODE_TOO_LARGE
			case errors.Is(err, db.ErrResultTooLarge):
				code = messages.ErrorCode_ERROR_CODE_RESULT_TOO_LARGE
			}
			return nil, s.invalid(code, err.Error())
		}
	}
	b, err := proto.Marshal(op)
	if err != nil {
		return nil, s.invalid(messages.ErrorCode_ERROR_CODE_INVALID, err.Error())
	}
	if len(b) > s.cfg.MaxCommandBytes {
		return nil, s.invalid(messages.ErrorCode_ERROR_CODE_TOO_LARGE, fmt.Sprintf("request is %d bytes, limit %d", len(b), s.cfg.MaxCommandBytes))
	}
	return b, nil
}

func (k *kvService) Txn(ctx context.Context, in *messages.TxnRequest) (*messages.TxnResponse, error) {
	payload, err := k.s.checkOp(in.Op, false)
	if err != nil {
		return nil, err
	}
	req := &request{kind: kindWrite, payload: payload}
	return k.s.multiOpAnswer(req, k.s.do(ctx, req))
}

func (k *kvService) Read(ctx context.Context, in *messages.ReadOnlyRequest) (*messages.TxnResponse, error) {
	payload, err := k.s.checkOp(in.Op, true)
	if err != nil {
		return nil, err
	}
	req := &request{kind: kindRead, payload: payload, consistency: in.Consistency}
	return k.s.multiOpAnswer(req, k.s.do(ctx, req))
}

func (k *kvService) Put(ctx context.Context, in *messages.PutRequest) (*messages.PutResponse, error) {
	resp, err := k.Txn(ctx, &messages.TxnRequest{Op: db.Put(in.Key, in.Value)})
	if err != nil {
		return nil, err
	}
	return &messages.PutResponse{Header: resp.Header}, nil
}

func (k *kvService) Get(ctx context.Context, in *messages.GetRequest) (*messages.GetResponse, error) {
	resp, err := k.Read(ctx, &messages.ReadOnlyRequest{Op: db.Get(in.Key), Consistency: in.Consistency})
	if err != nil {
		return nil, err
	}
	out := &messages.GetResponse{Header: resp.Header}
	if rs := resp.Result.GetResults(); len(rs) == 1 {
		out.Found, out.Value = rs[0].Found, rs[0].Value
	}
	return out, nil
}

func (k *kvService) Range(ctx context.Context, in *messages.RangeRequest) (*messages.RangeResponse, error) {
	op := &messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_RANGE, Key: in.Key, RangeEnd: in.RangeEnd,
		Prefix: in.Prefix, Limit: in.Limit, LimitBytes: in.LimitBytes}}}
	resp, err := k.Read(ctx, &messages.ReadOnlyRequest{Op: op, Consistency: in.Consistency})
	if err != nil {
		return nil, err
	}
	out := &messages.RangeResponse{Header: resp.Header}
	if rs := resp.Result.GetResults(); len(rs) == 1 {
		out.Kvs, out.More, out.NextKey = rs[0].Kvs, rs[0].More, rs[0].NextKey
	}
	return out, nil
}

func (k *kvService) KeepAlive(ctx context.Context, in *messages.KeepAliveRequest) (*messages.KeepAliveResponse, error) {
	switch {
	case (in.Session == 0) == (len(in.Sessions) == 0):
		return nil, k.s.invalid(messages.ErrorCode_ERROR_CODE_INVALID, "KeepAlive names one session, or a batch of sessions")
	case len(in.Sessions) > maxKeepAliveBatch:
		return nil, k.s.invalid(messages.ErrorCode_ERROR_CODE_TOO_LARGE, fmt.Sprintf("%d sessions in one KeepAlive, limit %d", len(in.Sessions), maxKeepAliveBatch))
	}
	req := &request{kind: kindKeepAlive, session: in.Session, sessions: in.Sessions}
	a := k.s.do(ctx, req)
	if f := k.s.failureOf(req, a); f != nil {
		return nil, k.s.status(f)
	}
	resp, ok := a.msg.(*messages.ClientResponse)
	if !ok {
		return nil, k.s.invalid(messages.ErrorCode_ERROR_CODE_INVALID, fmt.Sprintf("unexpected answer %T", a.msg))
	}
	res := &messages.KeepAliveResult{}
	if err := proto.Unmarshal(resp.Result, res); err != nil {
		return nil, k.s.invalid(messages.ErrorCode_ERROR_CODE_INVALID, "undecodable result: "+err.Error())
	}
	return &messages.KeepAliveResponse{Header: k.s.header(resp), ValidMs: res.ValidMs, TtlMs: res.TtlMs, Promises: res.Promises}, nil
}

// maxKeepAliveBatch bounds the sessions of one KeepAlive (and so its
// answer and the master's work on it).
const maxKeepAliveBatch = 100000

func (k *kvService) Status(context.Context, *messages.StatusRequest) (*messages.StatusResponse, error) {
	return k.s.replica.Status(), nil
}

func (k *kvService) Members(context.Context, *messages.MembersListRequest) (*messages.Membership, error) {
	return k.s.replica.Members(), nil
}

func (k *kvService) ChangeMembers(ctx context.Context, in *messages.MembersRequest) (*messages.MembersChangeResponse, error) {
	req := &request{kind: kindMembers, members: in}
	a := k.s.do(ctx, req)
	if f := k.s.failureOf(req, a); f != nil {
		return nil, k.s.status(f)
	}
	resp, _ := a.msg.(*messages.ClientResponse)
	v, err := strconv.ParseUint(string(resp.GetResult()), 10, 64)
	if err != nil {
		return nil, k.s.invalid(messages.ErrorCode_ERROR_CODE_INVALID, "unexpected answer: "+string(resp.GetResult()))
	}
	return &messages.MembersChangeResponse{Header: k.s.header(resp), Version: v}, nil
}

func (k *kvService) Snapshot(ctx context.Context, _ *messages.SnapshotRequest) (*messages.SnapshotResponse, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	req := &request{kind: kindSnapshot}
	a := k.s.do(ctx, req)
	if resp, ok := a.msg.(*messages.SnapshotResponse); ok {
		return resp, nil // an error in it is the snapshotter's answer, not the call's
	}
	return nil, k.s.failedStatus(req, a)
}

func (k *kvService) Check(ctx context.Context, _ *messages.CheckRequest) (*messages.CheckResponse, error) {
	req := &request{kind: kindCheck}
	a := k.s.do(ctx, req)
	if resp, ok := a.msg.(*messages.CheckResponse); ok {
		if resp.Error != "" {
			return nil, k.s.invalid(messages.ErrorCode_ERROR_CODE_UNAVAILABLE, resp.Error)
		}
		return resp, nil
	}
	return nil, k.s.failedStatus(req, a)
}

// failedStatus is the status of an answer that is not what the call
// expects: why it failed, or that it was unexpected.
func (s *Server) failedStatus(req *request, a answer) error {
	if f := s.failureOf(req, a); f != nil {
		return s.status(f)
	}
	return s.invalid(messages.ErrorCode_ERROR_CODE_INVALID, fmt.Sprintf("unexpected answer %T", a.msg))
}

// TransferMastership has this node, if master, hand mastership over
// (actors.Replica.TransferMastership) and answers with the new master. A
// node that is not master refuses it as not master, naming the master, so
// that the client asks it there.
func (k *kvService) TransferMastership(ctx context.Context, in *messages.TransferMastershipRequest) (*messages.TransferMastershipResponse, error) {
	r := k.s.replica
	if id, self := r.Master(); !self {
		return nil, k.s.status(&failure{code: messages.ErrorCode_ERROR_CODE_NOT_MASTER, msg: "not master", masterID: id})
	}
	if _, deadline := ctx.Deadline(); !deadline {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, k.s.cfg.RequestTimeout)
		defer cancel()
	}
	id, err := r.TransferMastership(ctx, in.To)
	switch {
	case errors.Is(err, actors.ErrNoSuccessor):
		return nil, k.s.invalid(messages.ErrorCode_ERROR_CODE_INVALID, err.Error())
	case err != nil:
		return nil, k.s.invalid(messages.ErrorCode_ERROR_CODE_UNAVAILABLE, "handing mastership over: "+err.Error())
	}
	return &messages.TransferMastershipResponse{MasterId: id, MasterClientAddress: r.ClientAddressOf(id)}, nil
}
