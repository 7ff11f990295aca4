package client

import "errors"

// Sentinel errors. Test with errors.Is.
var (
	// ErrNotMaster: the node asked is not master and named no master to ask.
	ErrNotMaster = errors.New("livepaxos: not master")
	// ErrNoMaster: no master answered before the deadline.
	ErrNoMaster = errors.New("livepaxos: no master reachable")
	// ErrValueTooLarge: a key, value or command over the limit; nothing was
	// changed.
	ErrValueTooLarge = errors.New("livepaxos: value too large")
	// ErrEmptyKey: keys must not be empty; nothing was changed.
	ErrEmptyKey = errors.New("livepaxos: empty key")
	// ErrInvalid: the request was refused as malformed; nothing was changed.
	ErrInvalid = errors.New("livepaxos: invalid request")
	// ErrSnapshot: the node did not take the snapshot asked for; nothing
	// was let go of.
	ErrSnapshot = errors.New("livepaxos: snapshot failed")
	// ErrOutcomeUnknown: a write was sent but its answer was lost (timeout,
	// or the master changed while it was in flight). It may or may not have
	// been applied; it was not retried, since retrying could apply it twice.
	ErrOutcomeUnknown = errors.New("livepaxos: write outcome unknown")
	// ErrOverloaded: the master's queue was full and the deadline passed
	// while retrying; nothing was proposed.
	ErrOverloaded = errors.New("livepaxos: master overloaded")
	// ErrMasterChanged: the master that handled a write lost mastership
	// (and maybe regained it) before the write applied, so it was not
	// applied anywhere (§5.3 epochs). It is safe to retry.
	ErrMasterChanged = errors.New("livepaxos: master changed; not applied")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("livepaxos: client closed")
)
