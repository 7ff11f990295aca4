package client

import (
	"context"
	"fmt"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// Leader election on a lock (Chubby §2.4's primary election): a candidate
// takes the lock name, then writes its value to the key name, guarded by
// its sequencer and bound to its session, so the key names the leader
// while its leadership lasts and goes when its session ends.

// Leadership is a won election.
type Leadership struct {
	lock *Lock
	name string
}

// Campaign waits in line for the election name and, once elected,
// publishes value as the leader's.
func (s *Session) Campaign(ctx context.Context, name string, value []byte) (*Leadership, error) {
	l, err := s.Lock(ctx, name, LockOptions{})
	if err != nil {
		return nil, err
	}
	res, err := s.Txn(ctx, &messages.MultiOp{Guard: []*messages.Test{db.SequencerHolds(l.Sequencer())},
		TOp: []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: []byte(name), Value: value, Ephemeral: true}}})
	if err == nil && !res.Succeeded {
		err = fmt.Errorf("%w: elected, but the lock was lost before the leader's value was written", ErrSessionExpired)
	}
	if err != nil {
		l.Unlock(context.WithoutCancel(ctx))
		return nil, err
	}
	return &Leadership{lock: l, name: name}, nil
}

// Sequencer is the leadership's lock acquisition: pass it on, as a lock's.
func (l *Leadership) Sequencer() *messages.Sequencer { return l.lock.Sequencer() }

// Lost is closed when the leadership surely ended.
func (l *Leadership) Lost() <-chan struct{} { return l.lock.Lost() }

// Resign withdraws the leader's value and gives the election up.
func (l *Leadership) Resign(ctx context.Context) error {
	if _, err := l.lock.s.Txn(ctx, &messages.MultiOp{Guard: []*messages.Test{db.SequencerHolds(l.Sequencer())},
		TOp: []*messages.Op{{Kind: messages.Op_KIND_DELETE, Key: []byte(l.name)}}}); err != nil {
		return err
	}
	return l.lock.Unlock(ctx)
}

// Leader returns the value the election name's leader published (found
// false: no leader now).
func (c *Client) Leader(ctx context.Context, name string) (value []byte, found bool, err error) {
	return c.Get(ctx, []byte(name))
}

// Observe streams the election's leaders: each value a new leader
// published, and nil when a leader went with none elected yet.
func (c *Client) Observe(ctx context.Context, name string) <-chan []byte {
	out := make(chan []byte, 4)
	go func() {
		defer close(out)
		for u := range c.Watch(ctx, []byte(name), WatchOptions{}) {
			var vals [][]byte
			if u.Reset {
				var v []byte
				for _, kv := range u.KVs {
					v = kv.Value
				}
				vals = append(vals, v)
			}
			for _, e := range u.Events {
				if e.Delete {
					vals = append(vals, nil)
				} else {
					vals = append(vals, e.Value)
				}
			}
			for _, v := range vals {
				select {
				case out <- v:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
