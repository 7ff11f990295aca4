package server

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// The group's value and result limits (db/limits.go, db/result.go): set
// through the log by an operator (SetLimits is an admin method:
// authz.go), read from the answering node's database.

func (k *kvService) SetLimits(ctx context.Context, in *messages.SetLimitsRequest) (*messages.LimitsResponse, error) {
	v, r := in.GetMaxValueBytes(), in.GetMaxResultBytes()
	switch {
	case v == 0 && r == 0:
		return nil, k.s.invalid(messages.ErrorCode_ERROR_CODE_INVALID, "set a value limit, a result limit or both")
	case v > db.MaxValueBytesCeiling:
		return nil, k.s.invalid(messages.ErrorCode_ERROR_CODE_INVALID,
			fmt.Sprintf("value limit %d: want 1 to %d bytes", v, db.MaxValueBytesCeiling))
	case r != 0 && (r < db.MinResultBytes || r > db.MaxResultBytesCeiling):
		return nil, k.s.invalid(messages.ErrorCode_ERROR_CODE_INVALID,
			fmt.Sprintf("result limit %d: want %d to %d bytes", r, db.MinResultBytes, db.MaxResultBytesCeiling))
	}
	payload, err := proto.Marshal(db.SetGroupLimits(v, r))
	if err != nil {
		return nil, k.s.invalid(messages.ErrorCode_ERROR_CODE_INVALID, err.Error())
	}
	// admin: the master's check lets this command hold an operator's op,
	// which it refuses in any client's Txn.
	req := &request{kind: kindWrite, payload: payload, admin: true}
	resp, err := k.s.multiOpAnswer(req, k.s.do(ctx, req))
	if err != nil {
		return nil, err
	}
	// What this call set, as chosen at its instance; the limit it left is
	// as this node knows it (the master's, or a node that may lag).
	out := k.limitsResponse(resp.Header)
	at := resp.Header.GetInstance()
	if v != 0 {
		out.MaxValueBytes, out.GroupSet, out.SetInstance = v, true, at
	}
	if r != 0 {
		out.MaxResultBytes, out.ResultGroupSet, out.ResultSetInstance = r, true, at
	}
	return out, nil
}

func (k *kvService) Limits(context.Context, *messages.LimitsRequest) (*messages.LimitsResponse, error) {
	if k.s.cfg.DB == nil {
		return nil, k.s.invalid(messages.ErrorCode_ERROR_CODE_INVALID, "this node serves no database")
	}
	return k.limitsResponse(k.s.header(nil)), nil
}

// limitsResponse is the limits in force at this node: the group's where
// the log set them, else its own door's.
func (k *kvService) limitsResponse(h *messages.Header) *messages.LimitsResponse {
	out := &messages.LimitsResponse{Header: h, Ceiling: db.MaxValueBytesCeiling,
		MaxResultBytes: db.DefaultMaxResultBytes, ResultCeiling: db.MaxResultBytesCeiling}
	kv := k.s.cfg.DB
	if kv == nil {
		return out
	}
	g := kv.GroupLimits()
	out.MaxValueBytes, out.GroupSet, out.SetInstance = uint64(kv.Limits().MaxValueBytes), g.Set(), g.Instance
	if g.ResultSet() {
		out.MaxResultBytes, out.ResultGroupSet, out.ResultSetInstance = uint64(g.MaxResultBytes), true, g.ResultInstance
	}
	return out
}
