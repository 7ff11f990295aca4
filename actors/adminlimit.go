package actors

import (
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// Consistency checks and snapshots are the two requests whose cost is the
// whole state: a check has every voter checksum its state machine, a
// snapshot has this node write all of it. Both are coalesced in the core
// (one check proposal, one snapshot at a time, waiters answered together),
// but the waiters still queue, and a sender that asks again as soon as it
// is answered keeps every replica checksumming. So each sender (by the
// address of its reply PID: the client API of this node or a forwarding
// node) gets a budget of its own, and senders beyond adminSenders share
// one: forged addresses cannot grow the table or take the known senders'
// share.
const (
	checksPerSecond    = 1 // each sender: one consistency check a second,
	checkBurst         = 4 // with bursts of four
	snapshotsPerSecond = 0.2
	snapshotBurst      = 2
	// adminSenders bounds the table of per-sender budgets.
	adminSenders = 64
)

// adminLimits holds each sender's budgets of checks and snapshots. Used
// on the core actor's goroutine only.
type adminLimits struct {
	checks, snapshots map[string]*rate.Limiter
	// others is the shared budget of senders that did not fit the table.
	otherChecks, otherSnapshots *rate.Limiter
}

func newAdminLimits() *adminLimits {
	return &adminLimits{
		checks:         make(map[string]*rate.Limiter),
		snapshots:      make(map[string]*rate.Limiter),
		otherChecks:    rate.NewLimiter(checksPerSecond, checkBurst),
		otherSnapshots: rate.NewLimiter(snapshotsPerSecond, snapshotBurst),
	}
}

// allowCheck reports whether sender may start a consistency check now.
func (l *adminLimits) allowCheck(sender string, now time.Time) bool {
	return limiterFor(l.checks, l.otherChecks, sender, checksPerSecond, checkBurst).AllowN(now, 1)
}

// allowSnapshot reports whether sender may ask for a snapshot now.
func (l *adminLimits) allowSnapshot(sender string, now time.Time) bool {
	return limiterFor(l.snapshots, l.otherSnapshots, sender, snapshotsPerSecond, snapshotBurst).AllowN(now, 1)
}

func limiterFor(table map[string]*rate.Limiter, shared *rate.Limiter, sender string, perSecond rate.Limit, burst int) *rate.Limiter {
	if l, ok := table[sender]; ok {
		return l
	}
	if len(table) >= adminSenders {
		return shared
	}
	l := rate.NewLimiter(perSecond, burst)
	table[sender] = l
	return l
}

var (
	errTooManyChecks    = fmt.Errorf("%w: too many consistency checks asked: at most %d a second per sender", ErrOverloaded, checksPerSecond)
	errTooManySnapshots = fmt.Errorf("%w: too many snapshots asked: at most one every %v per sender", ErrOverloaded, time.Duration(float64(time.Second)/snapshotsPerSecond))
)

// limits returns the actor's budgets, made at first use.
func (a *coreActor) limits() *adminLimits {
	if a.admin == nil {
		a.admin = newAdminLimits()
	}
	return a.admin
}
