package server

import (
	"errors"

	"google.golang.org/grpc/status"

	"github.com/livepaxos/livepaxos/messages"
)

// header is the Header of an answer: this node, the master as it knows it,
// and where in the log the answer was given.
func (s *Server) header(resp *messages.ClientResponse) *messages.Header {
	master, self := s.replica.Master()
	if self {
		master = s.replica.NodeID()
	}
	h := &messages.Header{NodeId: s.replica.NodeID(), MasterId: master, MasterClientAddress: s.replica.ClientAddressOf(master)}
	if resp != nil {
		h.Instance, h.Epoch, h.Behind = resp.Instance, resp.Epoch, resp.Behind
	}
	return h
}

// failure is an error answer: its code and text, and the master to name.
type failure struct {
	code     messages.ErrorCode
	msg      string
	masterID uint32
}

// failureOf says why an answer failed, or nil when it succeeded. req is
// what was asked: a lost answer to a write leaves its outcome unknown.
func (s *Server) failureOf(req *request, a answer) *failure {
	if a.err == nil {
		if resp, ok := a.msg.(*messages.ClientResponse); ok && resp.Code != messages.ErrorCode_ERROR_CODE_OK {
			return &failure{code: resp.Code, msg: resp.Error, masterID: resp.MasterId}
		}
		return nil
	}
	master, self := s.replica.Master()
	if self {
		master = s.replica.NodeID()
	}
	f := &failure{code: messages.ErrorCode_ERROR_CODE_UNAVAILABLE, msg: a.err.Error(), masterID: master}
	switch {
	case errors.Is(a.err, errTooManyPending):
		f.code = messages.ErrorCode_ERROR_CODE_OVERLOADED
	case errors.Is(a.err, errNoAnswer) && !req.idempotent():
		f.code, f.msg = messages.ErrorCode_ERROR_CODE_OUTCOME_UNKNOWN, "no answer from the master in time"
	case errors.Is(a.err, errNoAnswer):
		f.msg = "no answer from the master in time"
	case errors.Is(a.err, errNoMaster), errors.Is(a.err, errMasterUnreachable):
		f.code = messages.ErrorCode_ERROR_CODE_NOT_MASTER
	}
	return f
}

// status is a failure as a gRPC status error.
func (s *Server) status(f *failure) error {
	return messages.NewStatus(f.code, f.msg, f.masterID, s.replica.ClientAddressOf(f.masterID)).Err()
}

// invalid is the status of a request refused before it was sent anywhere.
func (s *Server) invalid(code messages.ErrorCode, msg string) error {
	return s.status(&failure{code: code, msg: msg})
}

var _ = status.New
