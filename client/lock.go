package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// LockOptions shape a lock acquisition.
type LockOptions struct {
	Shared bool
	// LockDelay: how long the lock takes no holder after this session
	// expires while holding it (0: db.DefaultLockDelay).
	LockDelay time.Duration
}

// Lock is a lock held by a session (Chubby §2.4).
type Lock struct {
	s    *Session
	name []byte
	seq  *messages.Sequencer

	once     sync.Once
	released chan struct{}
	lost     chan struct{}
}

// Sequencer names this acquisition: pass it to the servers the lock
// guards, which check it (a MultiOp guard db.SequencerHolds, or
// Client.CheckSequencer) and so refuse a deposed holder.
func (l *Lock) Sequencer() *messages.Sequencer { return l.seq }

// Lost is closed when the lock is no longer surely held: its session
// ended, or it was released.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Lock acquires the lock name for the session, waiting in line (served in
// order) until it has it or ctx ends; a waiter gives its place up when
// ctx ends.
func (s *Session) Lock(ctx context.Context, name string, opts LockOptions) (*Lock, error) {
	op := func() *messages.MultiOp {
		m := db.Lock(s.id, []byte(name), opts.Shared, true)
		m.TOp[0].LockDelayMs = uint64(opts.LockDelay / time.Millisecond)
		return m
	}
	res, err := s.Txn(ctx, op())
	for poll := 10 * time.Millisecond; ; poll = min(2*poll, 200*time.Millisecond) {
		if err != nil {
			return nil, s.giveUp(name, err)
		}
		if r := res.Results[0]; r.Found {
			return s.held(name, r.Sequencer), nil
		}
		// Queued: watch the lock until this session holds it, or may
		// take it (a lock-delay ran out: the log has to say so).
		select {
		case <-ctx.Done():
			return nil, s.giveUp(name, ctx.Err())
		case <-s.done:
			return nil, s.Err()
		case <-time.After(poll):
		}
		info, ierr := s.c.Read(ctx, db.LockInfo([]byte(name)), Lease)
		if ierr != nil {
			err = ierr
			continue
		}
		rec := info.Results[0].GetLock()
		for _, h := range rec.GetHolders() {
			if h.Session == s.id {
				return s.held(name, &messages.Sequencer{Name: []byte(name), Shared: h.Shared, Instance: h.Instance}), nil
			}
		}
		ws := rec.GetWaiters()
		if len(ws) == 0 || ws[0].Session == s.id {
			res, err = s.Txn(ctx, op())
		} else {
			res = &messages.MultiOpResult{Results: []*messages.OpResult{{Queued: true}}}
		}
	}
}

// giveUp leaves the lock's line after a failed or abandoned wait.
func (s *Session) giveUp(name string, err error) error {
	if s.Err() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.ttl)
		defer cancel()
		s.Txn(ctx, db.Unlock(s.id, []byte(name)))
	}
	return err
}

func (s *Session) held(name string, seq *messages.Sequencer) *Lock {
	l := &Lock{s: s, name: []byte(name), seq: seq, released: make(chan struct{}), lost: make(chan struct{})}
	go func() {
		select {
		case <-s.done:
		case <-l.released:
		}
		close(l.lost)
	}()
	return l
}

// Unlock releases the lock.
func (l *Lock) Unlock(ctx context.Context) error {
	_, err := l.s.Txn(ctx, db.Unlock(l.s.id, l.name))
	if err == nil || errors.Is(err, ErrSessionExpired) {
		l.once.Do(func() { close(l.released) })
		if err != nil {
			return nil
		}
	}
	return err
}

// CheckSequencer reports whether seq's acquisition still holds its lock:
// the one call another service makes before acting for a lock holder
// (a linearizable lease read).
func (c *Client) CheckSequencer(ctx context.Context, seq *messages.Sequencer) (bool, error) {
	if seq == nil || len(seq.Name) == 0 || seq.Instance == 0 {
		return false, fmt.Errorf("%w: an empty sequencer", ErrInvalid)
	}
	res, err := c.Read(ctx, &messages.MultiOp{Guard: []*messages.Test{db.SequencerHolds(seq)}}, Lease)
	if err != nil {
		return false, err
	}
	return res.Succeeded, nil
}
