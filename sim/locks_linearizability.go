package sim

import (
	"fmt"
	"math"

	"github.com/anishathalye/porcupine"
)

// A porcupine model for the lock (issue 16, item 8). The lock invariants
// (locks_check.go) judge the replicated log, instance by instance; this
// judges what the session clients saw, in real time: their acquisitions
// and releases, with the log's session expiries as the third kind of
// operation, must have one sequential order that respects real time and
// in which the lock is exclusive. A client told it holds the lock while
// another's acquisition, answered earlier, was neither released nor
// expired is caught here even if every replica's log is sound (a reply
// routed from the wrong instance, say).

// lockOpKind is what one lock operation did.
type lockOpKind uint8

const (
	lockAcquire lockOpKind = iota
	lockRelease
	lockExpire // the log expired the session (and released what it held)
)

// lockOp is one operation in the lock's history. An acquisition or release
// whose answer never came has ret == math.MaxInt64 and known false: it
// may have taken effect at any point after its call, or never. One
// answered "session expired" is not known either, with its ret: a retry
// of a sequenced acquisition whose first attempt took the lock gets that
// answer once the session's expiry released it.
type lockOp struct {
	kind      lockOpKind
	session   uint64
	client    int
	call, ret int64
	known     bool
	acquired  bool // lockAcquire, known: the answer said it holds the lock
}

func (o *lockOp) String() string {
	end := "open"
	if o.ret != math.MaxInt64 {
		end = fmt.Sprintf("%.6fs", float64(o.ret)/1e9)
	}
	what := [...]string{"acquire", "release", "expire"}[o.kind]
	out := "?"
	switch {
	case o.kind == lockExpire:
		out = "done"
	case !o.known:
	case o.kind == lockAcquire && o.acquired:
		out = "acquired"
	case o.kind == lockAcquire:
		out = "not acquired"
	default:
		out = "released"
	}
	return fmt.Sprintf("s%d %s(session %d) [%.6fs, %s] -> %s", o.client, what, o.session, float64(o.call)/1e9, end, out)
}

// lockModel is the lock's sequential specification: the state is the
// holding session (0: free). An acquisition answered "not acquired" is
// always possible (the lock may be held, or within an expired holder's
// lock-delay, which locks_check.go judges); one answered "acquired" needs
// the lock free. A release or an expiry frees the lock if the session
// holds it. An operation whose answer never came may have taken effect or
// not: both next states.
var lockModel = (&porcupine.NondeterministicModel{
	Init: func() []any { return []any{uint64(0)} },
	Step: func(state, input, _ any) []any {
		holder := state.(uint64)
		o := input.(*lockOp)
		var next uint64 // the state if the operation took effect
		switch o.kind {
		case lockAcquire:
			next = holder
			if holder == 0 {
				next = o.session
			}
		default: // a release or an expiry
			next = holder
			if holder == o.session {
				next = 0
			}
		}
		switch {
		case o.kind != lockExpire && !o.known:
			return []any{holder, next}
		case o.kind == lockAcquire && o.acquired:
			if holder != 0 {
				return nil
			}
			return []any{next}
		case o.kind == lockAcquire:
			return []any{holder}
		}
		return []any{next}
	},
	DescribeOperation: func(input, _ any) string { return input.(*lockOp).String() },
	DescribeState:     func(state any) string { return fmt.Sprintf("held by session %d", state.(uint64)) },
}).ToModel()

// checkLocksLinearizable checks the lock's history.
func checkLocksLinearizable(history []*lockOp) error {
	ops := make([]porcupine.Operation, 0, len(history))
	for _, o := range history {
		ops = append(ops, porcupine.Operation{ClientId: o.client, Input: o, Call: o.call, Return: o.ret})
	}
	switch porcupine.CheckOperationsTimeout(lockModel, ops, linearizabilityTimeout) {
	case porcupine.Illegal:
		return fmt.Errorf("%w: %w: the lock's history has no linearization:\n%s", ErrSafety, ErrLockNotLinearizable, excerpt(ops))
	case porcupine.Unknown:
		return fmt.Errorf("%w: %w: the lock (%d operations)", ErrSafety, ErrLinearizabilityUnknown, len(ops))
	}
	return nil
}
