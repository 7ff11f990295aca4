package actors

import (
	"errors"
	"fmt"

	"github.com/livepaxos/livepaxos/core"
	"github.com/livepaxos/livepaxos/messages"
)

// Errors of the embedding API (Propose, Read, Snapshot, ChangeMembers and
// Client). Test with errors.Is; NotMasterError carries the master.

// Refusals: nothing was proposed, nothing changed; a retry may succeed.
var (
	// ErrNotMaster: this replica is not master (see NotMasterError).
	ErrNotMaster = errors.New("actors: this replica is not master")
	// ErrNoSpace: the master's disk is nearly full (Config.MinFreeBytes);
	// nothing was proposed.
	ErrNoSpace = errors.New("actors: no space on the master's disk")
	// ErrOverloaded: the master's queue, or the replica's mailbox, was
	// full; nothing was done.
	ErrOverloaded = errors.New("actors: replica overloaded")
	// ErrUnavailable: a read could not be served in time (mastership not
	// confirmed by a majority).
	ErrUnavailable = errors.New("actors: read not served in time")
)

// A command or read refused for what it is: retrying it changes nothing.
var (
	// ErrInvalid: refused before it was proposed (Config.ValidateCommand,
	// or a malformed request).
	ErrInvalid = errors.New("actors: invalid request")
	// ErrMembership refuses a membership change that cannot be made.
	ErrMembership = core.ErrMembership
	// ErrTooLarge marks a command refused for its size. A ValidateCommand
	// error that wraps it reaches the client as ERROR_CODE_TOO_LARGE.
	ErrTooLarge = errors.New("too large")
	// ErrRejected: the state machine refused the command (its own error
	// is wrapped too, and its result returned beside) or the query.
	ErrRejected = errors.New("actors: command rejected")
)

// What became of a command whose answer says the log moved without it.
var (
	// ErrOutcomeUnknown: the command may or may not have applied
	// (mastership changed while it was in flight, or no answer in time).
	ErrOutcomeUnknown = errors.New("actors: outcome unknown (mastership changed or no answer)")
	// ErrMasterChanged: the command's epoch ended before it applied, so it
	// was applied nowhere (§5.3). It is safe to retry.
	ErrMasterChanged = errors.New("actors: master changed before the command applied; not applied")
)

// ErrSnapshot reports a snapshot that was not taken; nothing was let go
// of.
var ErrSnapshot = errors.New("actors: snapshot failed")

// ErrDiverged stops a replica whose state's checksum differs from the one
// a majority of its group computed at the same instance (§6.2).
var ErrDiverged = core.ErrDiverged

// NotMasterError is ErrNotMaster with the master this replica knows of
// (MasterID 0: none known), so a caller can go there.
type NotMasterError struct {
	MasterID      uint32
	MasterAddress string
	Reason        string
}

func (e *NotMasterError) Error() string {
	s := "actors: this replica is not master"
	if e.Reason != "" && e.Reason != "not master" {
		s += " (" + e.Reason + ")"
	}
	if e.MasterID != 0 {
		s += fmt.Sprintf("; the master is node %d at %s", e.MasterID, e.MasterAddress)
	}
	return s
}

// Is makes errors.Is(err, ErrNotMaster) hold.
func (e *NotMasterError) Is(target error) bool { return target == ErrNotMaster }

// errorOf maps a replica's answer to the embedding API's errors (nil for
// OK): the one place the error codes are read in this package.
func errorOf(resp *messages.ClientResponse) error {
	switch resp.Code {
	case messages.ErrorCode_ERROR_CODE_OK:
		return nil
	case messages.ErrorCode_ERROR_CODE_NOT_MASTER:
		return &NotMasterError{MasterID: resp.MasterId, MasterAddress: resp.MasterAddress, Reason: resp.Error}
	case messages.ErrorCode_ERROR_CODE_OVERLOADED:
		return fmt.Errorf("%w: %s", ErrOverloaded, resp.Error)
	case messages.ErrorCode_ERROR_CODE_NO_SPACE:
		return fmt.Errorf("%w: %s", ErrNoSpace, resp.Error)
	case messages.ErrorCode_ERROR_CODE_MASTER_CHANGED:
		return fmt.Errorf("%w: %s", ErrMasterChanged, resp.Error)
	case messages.ErrorCode_ERROR_CODE_OUTCOME_UNKNOWN:
		return fmt.Errorf("%w: %s", ErrOutcomeUnknown, resp.Error)
	case messages.ErrorCode_ERROR_CODE_TOO_LARGE:
		return fmt.Errorf("%w: %w: %s", ErrInvalid, ErrTooLarge, resp.Error)
	case messages.ErrorCode_ERROR_CODE_UNAVAILABLE:
		return fmt.Errorf("%w: %s", ErrUnavailable, resp.Error)
	}
	return fmt.Errorf("%w: %s", ErrRejected, resp.Error)
}

// codeOf is the error code a refusal before the core is sent with.
func codeOf(err error) messages.ErrorCode {
	var coded interface{ ErrorCode() messages.ErrorCode }
	switch {
	case errors.As(err, &coded):
		// The validator's own code (a result too large: db.ErrResultTooLarge).
		return coded.ErrorCode()
	case errors.Is(err, ErrTooLarge):
		return messages.ErrorCode_ERROR_CODE_TOO_LARGE
	case errors.Is(err, ErrStopped):
		return messages.ErrorCode_ERROR_CODE_NOT_MASTER
	case errors.Is(err, ErrOverloaded):
		return messages.ErrorCode_ERROR_CODE_OVERLOADED
	}
	return messages.ErrorCode_ERROR_CODE_INVALID
}

// refusal is the answer to a request refused before the core saw it,
// naming the master as this replica knows it.
func (r *Replica) refusal(requestID uint64, err error) *messages.ClientResponse {
	resp := &messages.ClientResponse{RequestId: requestID, Code: codeOf(err), Error: err.Error()}
	if v := r.view.Load(); v != nil {
		resp.MasterId, resp.MasterAddress = v.MasterID, v.MasterAddress
	}
	return resp
}
