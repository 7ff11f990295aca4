package client

import (
	"errors"
	"strings"

	"google.golang.org/grpc/status"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/tlsconf"
)

// Sentinel errors. Test with errors.Is.
var (
	// ErrNotMaster: the node asked is not master and named no master to ask.
	ErrNotMaster = errors.New("livepaxos: not master")
	// ErrNoMaster: no master answered before the deadline (no node could
	// be reached, or none found a master).
	ErrNoMaster = errors.New("livepaxos: no master reachable")
	// ErrUnreachable: the node asked could not be reached (down, wrong
	// address, or a TLS mismatch, which the error names).
	ErrUnreachable = errors.New("livepaxos: node unreachable")
	// ErrValueTooLarge: a key, value or command over the limit; nothing was
	// changed.
	ErrValueTooLarge = errors.New("livepaxos: value too large")
	// ErrResultTooLarge: the MultiOp's result would be over the result
	// limit (the group's, `livepaxos limits set --max-result-bytes`, or
	// the node's default); nothing was changed. Split it into smaller
	// MultiOps, or page its ranges.
	ErrResultTooLarge = errors.New("livepaxos: result too large")
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
	// ErrPermissionDenied: the node requires an operator's client
	// certificate for this call (membership changes, check, snapshot);
	// nothing was done.
	ErrPermissionDenied = errors.New("livepaxos: permission denied")
	// ErrNoSpace: the master's disk is nearly full; the write was not
	// proposed. Reads still work; writes resume once space is freed.
	ErrNoSpace = errors.New("livepaxos: no space on the master's disk")
	// ErrMasterChanged: the master that handled a write lost mastership
	// (and maybe regained it) before the write applied, so it was not
	// applied anywhere (§5.3 epochs). It is safe to retry.
	ErrMasterChanged = errors.New("livepaxos: master changed; not applied")
	// ErrSessionExpired: the session ended (expired, or closed): its locks
	// and ephemeral keys are gone; open a new one.
	ErrSessionExpired = errors.New("livepaxos: session expired")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("livepaxos: client closed")
)

// Why an attempt got no answer (a muxStream's calls end with these). The
// difference matters for a write: one never handed to the connection may
// be sent elsewhere; one that was may have been proposed.
var (
	errNotSent = errors.New("not sent")
	errLost    = errors.New("sent, but no answer")
	// errNotClientPort: the endpoint does not serve the client API.
	errNotClientPort = errors.New("not a livepaxos client port")
)

// isNotSent reports whether an attempt certainly sent nothing.
func isNotSent(err error) bool { return errors.Is(err, errNotSent) }

// explain makes a connection failure one line that says what went wrong
// (TLS misconfiguration above all: tlsconf.Explain), without the
// internal errNotSent marker.
func explain(err error) error {
	var rest []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if e != errNotSent {
				rest = append(rest, e)
			}
		}
		switch len(rest) {
		case 0:
			return errors.New("unreachable")
		case 1:
			err = rest[0]
		default:
			err = errors.Join(rest...)
		}
	} else if err == errNotSent {
		return errors.New("unreachable")
	}
	if e := tlsconf.Explain(err); e != err {
		return e
	}
	return errors.New(transportMessage(err))
}

// transportMessage is the heart of a gRPC transport error: "dial tcp
// ...: connection refused" rather than the layers of status text around it.
func transportMessage(err error) string {
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = st.Message()
	}
	for _, p := range []string{`connection error: desc = "`, "transport: ", "Error while dialing: ", "error while dialing: "} {
		if i := strings.Index(msg, p); i >= 0 {
			msg = strings.TrimSuffix(msg[i+len(p):], `"`)
		}
	}
	return msg
}

func isEmptyKey(err error) bool { return errors.Is(err, db.ErrEmptyKey) }

func isTooLarge(err error) bool {
	return errors.Is(err, db.ErrValueTooLarge) || errors.Is(err, db.ErrKeyTooLarge) || errors.Is(err, db.ErrTooManyOps)
}

// misconfigured reports whether an attempt failed for a reason that
// waiting will not mend: the endpoint is not a client port, or its TLS
// and this client's do not fit (tlsconf's sentinels).
func misconfigured(err error) bool {
	if errors.Is(err, errNotClientPort) {
		return true
	}
	e := tlsconf.Explain(err)
	for _, s := range []error{tlsconf.ErrServerNeedsTLS, tlsconf.ErrServerNotTLS, tlsconf.ErrUnknownAuthority,
		tlsconf.ErrCertExpired, tlsconf.ErrClientCertRequired, tlsconf.ErrBadCertificate} {
		if errors.Is(e, s) {
			return true
		}
	}
	return false
}
