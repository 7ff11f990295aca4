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

// Sessions (Chubby §2.8, issue 16): a session lives while its KeepAlives
// reach the master; it owns locks and ephemeral keys, and its writes apply
// exactly once.

// DefaultSessionTTL is a session's TTL when SessionOptions leave it out:
// long enough to ride out a change of master (about a lease, 2-3 s here),
// short enough that a dead client's locks free within seconds.
const DefaultSessionTTL = 10 * time.Second

// SessionOptions shape a session.
type SessionOptions struct {
	TTL time.Duration // default DefaultSessionTTL
}

// Session is a client's session. Its methods are safe for concurrent use.
type Session struct {
	c    *Client
	id   uint64
	ttl  time.Duration
	done chan struct{}

	mu sync.Mutex
	// deadline is when the session surely lives until, on this client's
	// clock: counted from when the KeepAlive that promised it was sent,
	// so it is never later than the master's.
	deadline time.Time
	// nextSend: when its next KeepAlive is due.
	nextSend time.Time
	err      error
	nextSeq  uint64
	inFlight map[uint64]bool
}

// NewSession opens a session through the log and keeps it alive until
// Close or until it ends (Done).
func (c *Client) NewSession(ctx context.Context, opts SessionOptions) (*Session, error) {
	ttl := opts.TTL
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	sent := time.Now()
	res, err := c.Txn(ctx, db.OpenSession(ttl))
	if err != nil {
		return nil, err
	}
	if len(res.Results) != 1 || !res.Results[0].Found {
		return nil, fmt.Errorf("%w: the cluster opened no session (too many?)", ErrOverloaded)
	}
	s := &Session{c: c, id: res.Results[0].Session, ttl: ttl, done: make(chan struct{}),
		deadline: sent.Add(ttl), nextSend: sent.Add(ttl / 3), inFlight: map[uint64]bool{}}
	c.keeper.add(c, s)
	return s, nil
}

// ID is the session's id.
func (s *Session) ID() uint64 { return s.id }

// Done is closed when the session has ended: expired (its KeepAlives did
// not reach a master in time, or the master says it ended) or closed.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err says why the session ended (nil while it lives): ErrSessionExpired,
// or ErrClosed after Close.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// end ends the session for err, once.
func (s *Session) end(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	close(s.done)
	s.mu.Unlock()
	// Not under s.mu: the keeper takes its own lock, then sessions'.
	s.c.keeper.remove(s.id)
}

// sessionKeeper keeps a client's sessions alive: one loop, and one
// KeepAlive for every session due (a client with 10,000 sessions sends
// three KeepAlives a second, not 3,000).
type sessionKeeper struct {
	mu      sync.Mutex
	live    map[uint64]*Session
	running bool
	sending bool
	wake    chan struct{} // a session was added, or a send ended
	// wakeAt is when the loop will look at the sessions next: a session
	// added with nothing due before then needs no wake. Waking for each
	// added session made opening n sessions cost n scans of all of them
	// (10,000 took 36 s in `bench --sessions 10000`).
	wakeAt time.Time
}

// keeperTick bounds how long the keeper sleeps: it wakes for the next
// deadline or KeepAlive due, or after this.
const keeperTick = time.Second

// keepAliveEarly: a session's KeepAlive may go up to ttl/keepAliveEarly
// before it is due (a third of the TTL after the last), with the batch of
// another that is due: sooner than needed, never later.
const keepAliveEarly = 6

func (k *sessionKeeper) add(c *Client, s *Session) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.live == nil {
		k.live, k.wake = map[uint64]*Session{}, make(chan struct{}, 1)
	}
	k.live[s.id] = s
	if !k.running {
		k.running = true
		go k.run(c)
		k.poke()
		return
	}
	if s.nextSend.Before(k.wakeAt) || s.deadline.Before(k.wakeAt) {
		k.poke()
	}
}

// poke wakes the keeper's loop (callers hold k.mu).
func (k *sessionKeeper) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

func (k *sessionKeeper) remove(id uint64) {
	k.mu.Lock()
	delete(k.live, id)
	k.mu.Unlock()
}

// run ends the sessions whose deadline passed with no promise beyond it,
// and sends the KeepAlives due, until the client closes or has no
// session left.
func (k *sessionKeeper) run(c *Client) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-k.wake:
		}
		now := time.Now()
		var due, expired []*Session
		k.mu.Lock()
		if c.closed.Load() || len(k.live) == 0 {
			k.running = false
			k.mu.Unlock()
			return
		}
		next := now.Add(keeperTick)
		for _, s := range k.live {
			s.mu.Lock()
			switch {
			case !now.Before(s.deadline):
				expired = append(expired, s)
			case !now.Before(s.nextSend.Add(-s.ttl/keepAliveEarly)) && !k.sending:
				// Due, or due soon: sent together, sessions opened apart
				// fall into one batch instead of one wake and one scan
				// each.
				due = append(due, s)
			default:
				if s.deadline.Before(next) {
					next = s.deadline
				}
				if !k.sending && s.nextSend.Before(next) {
					next = s.nextSend
				}
			}
			s.mu.Unlock()
		}
		t.Reset(time.Until(next))
		k.wakeAt = next
		if len(due) > 0 {
			k.sending = true
		}
		k.mu.Unlock()
		for _, s := range expired {
			s.end(fmt.Errorf("%w: no KeepAlive reached a master within the TTL", ErrSessionExpired))
		}
		if len(due) > 0 {
			go k.send(c, due, now)
		}
	}
}

// send sends one KeepAlive for the sessions due, sent at now.
func (k *sessionKeeper) send(c *Client, due []*Session, now time.Time) {
	defer func() {
		k.mu.Lock()
		k.sending = false
		k.poke()
		k.mu.Unlock()
	}()
	ids := make([]uint64, len(due))
	soonest := due[0].deadline
	for i, s := range due {
		ids[i] = s.id
		s.mu.Lock()
		if s.deadline.Before(soonest) {
			soonest = s.deadline
		}
		s.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(time.Until(soonest), c.cfg.AttemptTimeout))
	defer cancel()
	promises, err := c.keepAlive(ctx, ids)
	for i, s := range due {
		s.mu.Lock()
		switch {
		case err != nil:
			s.nextSend = time.Now().Add(max(s.ttl/20, 10*time.Millisecond))
		case promises[i].Ended:
			s.mu.Unlock()
			s.end(fmt.Errorf("%w: the master says session %d ended", ErrSessionExpired, s.id))
			continue
		default:
			if d := now.Add(time.Duration(promises[i].ValidMs) * time.Millisecond); d.After(s.deadline) {
				s.deadline = d
			}
			s.nextSend = now.Add(s.ttl / 3)
		}
		s.mu.Unlock()
	}
}

// keepAlive sends one KeepAlive for sessions to the master (or any node,
// which forwards it) and returns each one's promise, in order.
func (c *Client) keepAlive(ctx context.Context, sessions []uint64) ([]*messages.SessionPromise, error) {
	var lastErr error = ErrNoMaster
	for attempt := 0; ctx.Err() == nil; attempt++ {
		ep := c.target(attempt, false)
		n, err := c.node(ep)
		if err != nil {
			return nil, err
		}
		resp, err := n.kvs[0].KeepAlive(ctx, &messages.KeepAliveRequest{Sessions: sessions})
		if err == nil {
			c.learn(ep, resp.Header, false)
			if len(resp.Promises) != len(sessions) {
				return nil, fmt.Errorf("%w: %d promises for %d sessions", ErrInvalid, len(resp.Promises), len(sessions))
			}
			return resp.Promises, nil
		}
		code, msg, said, out := c.rpcError(ep, err)
		if !said {
			c.unreachable(ep)
			lastErr = out
			continue
		}
		if _, err := c.outcome(code, msg, ep, true); errors.Is(err, ErrInvalid) {
			return nil, err
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil, lastErr
}

// Txn runs op for the session, exactly once: it carries the session and
// a sequence number, so the client may (and does) send it again after an
// unknown outcome, and a write that applied returns its first result.
func (s *Session) Txn(ctx context.Context, op *messages.MultiOp) (*messages.MultiOpResult, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.nextSeq++
	seq := s.nextSeq
	s.inFlight[seq] = true
	acked := seq - 1
	for q := range s.inFlight {
		acked = min(acked, q-1)
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.inFlight, seq)
		s.mu.Unlock()
	}()
	op.Session, op.Seq, op.Acked = s.id, seq, acked
	res, err := s.c.txn(ctx, op, true)
	if errors.Is(err, ErrSessionExpired) {
		s.end(err)
	}
	return res, err
}

// Close ends the session cleanly through the log: its locks are released
// with no lock-delay and its ephemeral keys deleted.
func (s *Session) Close(ctx context.Context) error {
	if err := s.Err(); err != nil {
		return nil
	}
	_, err := s.c.txn(ctx, db.CloseSession(s.id), true)
	s.end(ErrClosed)
	if errors.Is(err, ErrSessionExpired) {
		return nil
	}
	return err
}
