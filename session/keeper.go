// Package session is the master's side of Chubby's sessions (issue 16,
// item 1): when each session ends. It is deterministic, like the replica
// core: time is an argument, nothing here reads a clock, sleeps, or does
// I/O. The replicated state (db) holds which sessions exist and their
// TTLs; a session's deadline is not replicated, because KeepAlives extend
// it at the master without a log write. The master ends a session by
// proposing its expiry through the log once its deadline passed.
//
// After a change of master the new one cannot know when each session's
// last KeepAlive was. It gives every session a full TTL from the moment it
// takes over (Chubby's rule). That honours any promise the old master
// made: the old master answered KeepAlives only while its lease held, so
// each promise ended at most one TTL after the old lease, and a new master
// takes over only after that lease (plus --clock-drift-max) is over. So a
// session ends at the earliest one TTL after its last KeepAlive and at the
// latest one TTL after the later of its last KeepAlive and the change of
// master.
package session

import (
	"errors"
	"slices"
	"time"
)

// Errors of KeepAlive.
var (
	// ErrNotMaster: only the master extends sessions.
	ErrNotMaster = errors.New("session: not the master")
	// ErrNoSession: the session does not exist (never opened, or ended):
	// its client must open a new one; its locks and ephemeral keys are
	// gone.
	ErrNoSession = errors.New("session: no such session")
	// ErrExpiring: the session's deadline passed and its expiry is on its
	// way through the log; it cannot be extended any more.
	ErrExpiring = errors.New("session: expired")
)

// Planted is a deliberate bug, for the simulator to prove an invariant
// catches it.
type Planted int

const (
	// PlantedNone: no bug.
	PlantedNone Planted = iota
	// PlantedNoExtensionAtTakeover: a new master keeps no grace for the
	// sessions it inherits; they expire at once although the old master
	// promised them time.
	PlantedNoExtensionAtTakeover
)

// ExpiryRetry is how long after handing out a session's expiry Due hands
// it out again if it has not applied (its proposal was lost or refused).
const ExpiryRetry = time.Second

type tracked struct {
	ttl      time.Duration
	deadline time.Time
	expiring bool      // its expiry was handed out by Due
	handed   time.Time // when
}

// Event is a session's start or end as the applied log says, in log
// order.
type Event struct {
	ID    uint64
	TTL   time.Duration // a start only
	Ended bool
	// Expired: the end was the master's expiry (false: its client closed
	// it).
	Expired bool
}

// Observe takes the applied log's session events at now.
func (k *Keeper) Observe(evs []Event, now time.Time) {
	for _, e := range evs {
		if e.Ended {
			k.Ended(e.ID)
		} else {
			k.Opened(e.ID, e.TTL, now)
		}
	}
}

// Keeper tracks the deadlines of every live session while its replica is
// master. It is not safe for concurrent use: one goroutine (the replica's)
// owns it.
type Keeper struct {
	master   bool
	sessions map[uint64]*tracked
	planted  Planted
	// soonest is no later than any session's next moment to hand out:
	// Due scans the sessions only once it has come (a master with many
	// sessions ticks often, and they are rarely due).
	soonest time.Time
}

// NewKeeper returns a keeper of a replica that is not master.
func NewKeeper(planted Planted) *Keeper {
	return &Keeper{sessions: make(map[uint64]*tracked), planted: planted}
}

// Info is one session as the replicated state knows it.
type Info struct {
	ID  uint64
	TTL time.Duration
}

// TakeOver makes the keeper a new master's at now, with the live sessions
// the applied log holds: each gets a full TTL from now.
func (k *Keeper) TakeOver(now time.Time, live []Info) {
	k.master = true
	clear(k.sessions)
	for _, s := range live {
		deadline := now.Add(s.TTL)
		if k.planted == PlantedNoExtensionAtTakeover {
			deadline = now
		}
		k.sessions[s.ID] = &tracked{ttl: s.TTL, deadline: deadline}
	}
	k.soonest = time.Time{}
}

// Step down: the replica is no longer master; it forgets every deadline
// (the next master keeps its own).
func (k *Keeper) StepDown() {
	k.master = false
	clear(k.sessions)
}

// Master reports whether the keeper keeps deadlines.
func (k *Keeper) Master() bool { return k.master }

// Opened records that a session's creation applied at now (a master only;
// others ignore it): its first deadline is one TTL away.
func (k *Keeper) Opened(id uint64, ttl time.Duration, now time.Time) {
	if !k.master {
		return
	}
	k.sessions[id] = &tracked{ttl: ttl, deadline: now.Add(ttl)}
	if d := now.Add(ttl); d.Before(k.soonest) {
		k.soonest = d
	}
}

// Ended records that a session's end (closed by its client, or expired)
// applied.
func (k *Keeper) Ended(id uint64) { delete(k.sessions, id) }

// KeepAlive extends session id to one TTL from now and returns the new
// deadline, which the master promises: the session will not end before
// it. The caller must answer only while the master's lease holds (a
// deposed master's promise would not bind its successor beyond what
// TakeOver gives).
func (k *Keeper) KeepAlive(id uint64, now time.Time) (deadline time.Time, ttl time.Duration, err error) {
	if !k.master {
		return time.Time{}, 0, ErrNotMaster
	}
	s, ok := k.sessions[id]
	if !ok {
		return time.Time{}, 0, ErrNoSession
	}
	if s.expiring || !now.Before(s.deadline) {
		return time.Time{}, 0, ErrExpiring
	}
	if d := now.Add(s.ttl); d.After(s.deadline) {
		s.deadline = d
	}
	return s.deadline, s.ttl, nil
}

// Due returns, in id order, the sessions whose deadline passed by now and
// whose expiry has not been handed out in the last ExpiryRetry; the
// master proposes each one's expiry.
func (k *Keeper) Due(now time.Time) []uint64 {
	if !k.master || now.Before(k.soonest) {
		return nil
	}
	var due []uint64
	soonest := now.Add(time.Hour)
	for id, s := range k.sessions {
		next := s.deadline
		if s.expiring {
			next = s.handed.Add(ExpiryRetry)
		}
		if now.Before(next) {
			if next.Before(soonest) {
				soonest = next
			}
			continue
		}
		s.expiring, s.handed = true, now
		due = append(due, id)
		if r := now.Add(ExpiryRetry); r.Before(soonest) {
			soonest = r
		}
	}
	k.soonest = soonest
	slices.Sort(due)
	return due
}

// Deadline returns the session's deadline at this master.
func (k *Keeper) Deadline(id uint64) (time.Time, bool) {
	s, ok := k.sessions[id]
	if !ok {
		return time.Time{}, false
	}
	return s.deadline, true
}

// Len is the number of sessions tracked.
func (k *Keeper) Len() int { return len(k.sessions) }
