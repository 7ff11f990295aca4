package sim

import "errors"

// Sentinel errors of a failed run. A run's error wraps exactly one of
// ErrSafety or ErrLiveness and one of the specific errors below it, so tests
// can tell what broke with errors.Is.
var (
	// ErrSafety: a consistency invariant broke.
	ErrSafety = errors.New("sim: safety violation")
	// ErrLiveness: the system did not recover or an operation did not
	// complete in time once faults stopped.
	ErrLiveness = errors.New("sim: liveness violation")

	// ErrTwoValuesChosen: a majority of acceptors durably accepted two
	// different values for one instance.
	ErrTwoValuesChosen = errors.New("two values chosen for one instance")
	// ErrLearnedNotChosen: a learner handed out a value that is not the one
	// chosen for its instance.
	ErrLearnedNotChosen = errors.New("learner applied a value that was not chosen")
	// ErrAppliedDiverged: two replicas applied different values at one
	// instance: their applied sequences are not prefixes of one sequence.
	ErrAppliedDiverged = errors.New("replicas applied different values at one instance")
	// ErrAppliedOutOfOrder: a replica applied instances out of order, or one
	// twice.
	ErrAppliedOutOfOrder = errors.New("replica applied instances out of order")
	// ErrAppliedTwice: one client write is in the log at two instances.
	ErrAppliedTwice = errors.New("one client write applied at two instances")
	// ErrDurableContradiction: a replica sent a promise or acceptance that
	// its own durable state does not back.
	ErrDurableContradiction = errors.New("reply contradicts the replica's durable state")
	// ErrAcceptanceLost: a replica restarted without an acceptance its
	// disk had made durable, above what its checkpoints let go of.
	ErrAcceptanceLost = errors.New("a durable acceptance was lost")
	// ErrStateDiverged: replicas at the same log position hold different
	// databases.
	ErrStateDiverged = errors.New("replicas at one position hold different databases")
	// ErrChecksumMismatch: a replica's runtime consistency check (§6.2)
	// found its state differs from its group's majority, so it stopped.
	ErrChecksumMismatch = errors.New("runtime consistency check found a diverged replica")
	// ErrMembershipDiverged: two replicas hold different memberships after
	// applying the same instance (§5.4).
	ErrMembershipDiverged = errors.New("replicas disagree on the membership")
	// ErrNotLinearizable: the client history has no linearization.
	ErrNotLinearizable = errors.New("client history is not linearizable")
	// ErrLinearizabilityUnknown: the linearizability checker ran out of
	// time; treated as a failure so it is looked at.
	ErrLinearizabilityUnknown = errors.New("linearizability check timed out")
	// ErrUnexpectedResponse: a replica answered a well-formed request with
	// an error a correct replica never returns.
	ErrUnexpectedResponse = errors.New("unexpected client response")
	// ErrStaleRead: a replica served a lease or quorum read from a state
	// that misses a write some replica had already acknowledged (§5.2).
	ErrStaleRead = errors.New("read served from a state missing an acknowledged write")
	// ErrLeaseOverlap: two replicas served lease reads under leases whose
	// real-time intervals overlap (§5.2).
	ErrLeaseOverlap = errors.New("two replicas held master leases at once")
	// ErrEpochIgnored: a command applied although the epoch it was proposed
	// in had ended, or was refused although it had not (§5.3).
	ErrEpochIgnored = errors.New("command applied across an epoch change")
	// The lock service's invariants (locks_check.go).
	ErrTwoLockHolders      = errors.New("two holders of an exclusive lock at one instance")
	ErrSequencerAccepted   = errors.New("a sequencer was accepted after its acquisition ended")
	ErrLockDelayIgnored    = errors.New("a lock changed hands within an expired holder's lock-delay")
	ErrSessionExpiredEarly = errors.New("a session expired while its KeepAlives had been answered in time")
	ErrWriteAppliedTwice   = errors.New("a session's write applied twice")
	// ErrLockNotLinearizable: what the session clients were told of the
	// lock has no real-time order in which it is exclusive
	// (locks_linearizability.go).
	ErrLockNotLinearizable = errors.New("the lock's client history is not linearizable")
	// ErrWatchMissed: a watcher's changes are not the log's, once each
	// and in order.
	ErrWatchMissed = errors.New("a watcher missed, repeated or reordered a change")
	// ErrRestore: a replica's durable log did not restore.
	ErrRestore = errors.New("replica failed to restore its log")

	// ErrOpTooSlow: once the system had time to recover, an operation took
	// longer than the bound, or a write's outcome was lost.
	ErrOpTooSlow = errors.New("operation did not complete in bounded time")
	// ErrNotConverged: at the end of liveness mode the replicas disagree on
	// how far the log is chosen and applied, or there is not exactly one
	// master.
	ErrNotConverged = errors.New("replicas did not converge")
	// ErrNoProgress: while a cut left a connected majority, no client
	// write was chosen within ProgressBound (liveness.go).
	ErrNoProgress = errors.New("no progress while a majority could talk")
	// ErrDisruptiveCampaign: a node cut off from every other raised a
	// ballot it could not win (no pre-vote), which on its return deposes
	// a working master.
	ErrDisruptiveCampaign = errors.New("a node cut off from a majority raised its ballot")
	// ErrMessageTooLarge: a Promise or an Accept carried more than one
	// entry and more bytes of entries than its budget: a real transport
	// may refuse such a message for ever (paxos.DefaultMaxPromiseBytes).
	ErrMessageTooLarge = errors.New("a peer message outgrew its byte budget")
	// ErrStepBudget: the run took more steps than its bound (a livelock of
	// the simulator itself, or of messages at one instant).
	ErrStepBudget = errors.New("step budget exhausted")
)
