package server

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// The group's value limit (db/limits.go): set through the log by an
// operator (SetLimits is an admin method: authz.go), read from the
// answering node's database.

func (k *kvService) SetLimits(ctx context.Context, in *messages.SetLimitsRequest) (*messages.LimitsResponse, error) {
	if n := in.GetMaxValueBytes(); n == 0 || n > db.MaxValueBytesCeiling {
		return nil, k.s.invalid(messages.ErrorCode_ERROR_CODE_INVALID,
			fmt.Sprintf("value limit %d: want 1 to %d bytes", n, db.MaxValueBytesCeiling))
	}
	payload, err := proto.Marshal(db.SetLimits(in.MaxValueBytes))
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
	return &messages.LimitsResponse{Header: resp.Header, MaxValueBytes: in.MaxValueBytes, GroupSet: true,
		SetInstance: resp.Header.GetInstance(), Ceiling: db.MaxValueBytesCeiling}, nil
}

func (k *kvService) Limits(context.Context, *messages.LimitsRequest) (*messages.LimitsResponse, error) {
	kv := k.s.cfg.DB
	if kv == nil {
		return nil, k.s.invalid(messages.ErrorCode_ERROR_CODE_INVALID, "this node serves no database")
	}
	g := kv.GroupLimits()
	return &messages.LimitsResponse{Header: k.s.header(nil), MaxValueBytes: uint64(kv.Limits().MaxValueBytes),
		GroupSet: g.Set(), SetInstance: g.Instance, Ceiling: db.MaxValueBytesCeiling}, nil
}
