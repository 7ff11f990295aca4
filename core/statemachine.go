package core

import (
	"errors"
	"io"

	"github.com/livepaxos/livepaxos/messages"
)

// StateMachine is the application a replica feeds chosen commands to. Apply
// is called from one goroutine, strictly in log order, exactly once per
// chosen command (including on restart, when the log is replayed). It must be
// deterministic: every replica computes the same results from the same log.
// The returned bytes go back to the client that submitted the command, and
// so does a non-nil error (the command's deterministic refusal), with the
// bytes returned beside it.
type StateMachine interface {
	Apply(instance uint64, command []byte) (result []byte, err error)
}

// QuietApplier is implemented by state machines that can apply a command
// without computing its result, for the commands nobody waits for (those
// another replica proposed, and the log replayed at startup): most of the
// commands a follower applies. ApplyQuiet must change the state exactly as
// Apply does.
type QuietApplier interface {
	ApplyQuiet(instance uint64, command []byte) error
}

// Reader is implemented by state machines that answer read-only queries
// without going through the log: lease, quorum and stale reads (§5.2).
// Query must be safe to call concurrently with Apply and must not change
// state. A state machine without it has its reads go through the log like
// any command.
type Reader interface {
	Query(query []byte) (result []byte, err error)
}

// EpochObserver is implemented by state machines that want the epoch
// (§5.3): ObserveEpoch is called, in log order and before the commands of
// the instance that starts it, each time a new mastership's epoch begins
// (and with the epoch a snapshot restored). Every replica sees the same
// calls at the same log positions.
type EpochObserver interface {
	ObserveEpoch(epoch uint64)
}

// Snapshotter is implemented by state machines that can save and restore
// their whole state (§5.5). BeginSnapshot is called on the apply
// goroutine, between two instances: it returns the last instance the
// state machine applied (0: it does not keep count; the snapshot is then
// as of the replica's last applied instance) and a function that writes
// the state as of then, which the replica calls on another goroutine
// while Apply goes on (a "pause-less" snapshot; db.KV freezes its
// contents and keeps changes aside meanwhile). Restore replaces the whole
// state with one so written, or changes nothing and returns an error.
type Snapshotter interface {
	BeginSnapshot() (instance uint64, write func(w io.Writer) error, err error)
	Restore(r io.Reader) error
}

// Checksummer is implemented by state machines whose replicas can be
// compared at run time (§6.2). BeginChecksum is called on the apply
// goroutine right after a checksum value applied; it returns a function
// that computes a digest of the state as of then, which the replica may
// call on another goroutine while Apply goes on. Equal states must give
// equal digests on every replica (db.KV: SHA-256 over the sorted
// contents).
type Checksummer interface {
	BeginChecksum() (sum func() []byte)
}

// TimeObserver is implemented by state machines that keep time (db.KV:
// lock-delay): ObserveTime is called before each command is applied with
// the time its master took it (Command.proposed_ms, Unix milliseconds),
// the same on every replica.
type TimeObserver interface {
	ObserveTime(ms int64)
}

// CodedError is implemented by a state machine's errors that tell which
// ErrorCode the client gets (default ERROR_CODE_INVALID).
type CodedError interface {
	error
	ErrorCode() messages.ErrorCode
}

// errorCode is the ErrorCode of a state machine's refusal.
func errorCode(err error) messages.ErrorCode {
	var c CodedError
	if errors.As(err, &c) {
		return c.ErrorCode()
	}
	return messages.ErrorCode_ERROR_CODE_INVALID
}

// InstanceObserver is implemented by state machines that want to know when
// every command of an instance has applied (db.KV: watchers get whole
// instances). EndInstance is called after each applied entry, no-ops too.
type InstanceObserver interface {
	EndInstance(instance uint64)
}
