package messages

import (
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ErrorDomain is the domain of the google.rpc.ErrorInfo detail that every
// error status given by a livepaxos node carries; a status without it came
// from the transport (a connection that failed or broke), not a node.
const ErrorDomain = "livepaxos.v1"

// Metadata keys of that ErrorInfo detail.
const (
	MetaMasterID            = "master_id"
	MetaMasterClientAddress = "master_client_address"
)

// GRPCCode is the gRPC status code with which the client API answers c:
// the code a client in any language acts on (InvalidArgument: fix the
// request; Aborted: not applied, safe to retry; Unknown: may or may not
// have applied; Unavailable and ResourceExhausted: nothing was done, try
// again; FailedPrecondition: nothing was done, and the same request will
// fail again while the state is as it is: a session that ended, or
// values too large to answer in one result).
func (c ErrorCode) GRPCCode() codes.Code {
	switch c {
	case ErrorCode_ERROR_CODE_OK:
		return codes.OK
	case ErrorCode_ERROR_CODE_NOT_MASTER, ErrorCode_ERROR_CODE_UNAVAILABLE:
		return codes.Unavailable
	case ErrorCode_ERROR_CODE_INVALID, ErrorCode_ERROR_CODE_TOO_LARGE:
		return codes.InvalidArgument
	case ErrorCode_ERROR_CODE_OVERLOADED, ErrorCode_ERROR_CODE_NO_SPACE:
		return codes.ResourceExhausted
	case ErrorCode_ERROR_CODE_MASTER_CHANGED:
		return codes.Aborted
	case ErrorCode_ERROR_CODE_PERMISSION_DENIED:
		return codes.PermissionDenied
	case ErrorCode_ERROR_CODE_OUTCOME_UNKNOWN:
		return codes.Unknown
	case ErrorCode_ERROR_CODE_SESSION_EXPIRED, ErrorCode_ERROR_CODE_RESULT_TOO_LARGE:
		return codes.FailedPrecondition
	}
	return codes.Internal
}

// NewStatus is the status of an answer with error code c: its gRPC code,
// msg, and an ErrorInfo naming c and the master as the answering node
// knows it.
func NewStatus(c ErrorCode, msg string, masterID uint32, masterClientAddress string) *status.Status {
	st := status.New(c.GRPCCode(), msg)
	info := &errdetails.ErrorInfo{Reason: c.String(), Domain: ErrorDomain, Metadata: map[string]string{}}
	if masterID != 0 {
		info.Metadata[MetaMasterID] = strconv.FormatUint(uint64(masterID), 10)
	}
	if masterClientAddress != "" {
		info.Metadata[MetaMasterClientAddress] = masterClientAddress
	}
	if with, err := st.WithDetails(info); err == nil {
		return with
	}
	return st
}

// StatusError reads what a node said in an error status: its error code
// and the master it named. ok is false for a status without livepaxos's
// ErrorInfo, which the transport gave (no node answered).
func StatusError(st *status.Status) (c ErrorCode, masterID uint32, masterClientAddress string, ok bool) {
	for _, d := range st.Details() {
		info, isInfo := d.(*errdetails.ErrorInfo)
		if !isInfo || info.Domain != ErrorDomain {
			continue
		}
		v, known := ErrorCode_value[info.Reason]
		if !known {
			v = int32(ErrorCode_ERROR_CODE_INVALID)
		}
		id, _ := strconv.ParseUint(info.Metadata[MetaMasterID], 10, 32)
		return ErrorCode(v), uint32(id), info.Metadata[MetaMasterClientAddress], true
	}
	return ErrorCode_ERROR_CODE_OK, 0, "", false
}

// IsProtocolMessage reports whether a message type (by protobuf full name)
// is one of livepaxos's own: the only types a node takes from the peer
// port (cluster.Options.AllowMessages).
func IsProtocolMessage(name protoreflect.FullName) bool { return name.Parent() == "livepaxos.v1" }
