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
	stop context.CancelFunc

	mu sync.Mutex
	// deadline is when the session surely lives until, on this client's
	// clock: counted from when the KeepAlive that promised it was sent,
	// so it is never later than the master's.
	deadline time.Time
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
	kctx, stop := context.WithCancel(context.Background())
	s := &Session{c: c, id: res.Results[0].Session, ttl: ttl, done: make(chan struct{}), stop: stop,
		deadline: sent.Add(ttl), inFlight: map[uint64]bool{}}
	go s.keepAlive(kctx)
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
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.err = err
	s.stop()
	close(s.done)
}

// keepAlive sends a KeepAlive every third of the TTL (more often while
// none gets through) and ends the session once its deadline passes with
// no promise beyond it.
func (s *Session) keepAlive(ctx context.Context) {
	every := s.ttl / 3
	retry := max(s.ttl/20, 20*time.Millisecond)
	wait := every
	for {
		s.mu.Lock()
		left := time.Until(s.deadline)
		s.mu.Unlock()
		if left <= 0 {
			s.end(fmt.Errorf("%w: no KeepAlive reached a master within the TTL", ErrSessionExpired))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(wait, left)):
		}
		sent := time.Now()
		s.mu.Lock()
		left = s.deadline.Sub(sent)
		s.mu.Unlock()
		if left <= 0 {
			continue // ended at the top of the loop
		}
		actx, cancel := context.WithTimeout(ctx, min(left, s.c.cfg.AttemptTimeout))
		valid, err := s.c.keepAlive(actx, s.id)
		cancel()
		switch {
		case errors.Is(err, ErrSessionExpired):
			s.end(err)
			return
		case err != nil:
			wait = retry
		default:
			s.mu.Lock()
			if d := sent.Add(valid); d.After(s.deadline) {
				s.deadline = d
			}
			s.mu.Unlock()
			wait = every
		}
	}
}

// keepAlive sends one KeepAlive to the master (or any node, which
// forwards it) and returns how long the session surely lives from when it
// was sent.
func (c *Client) keepAlive(ctx context.Context, id uint64) (time.Duration, error) {
	var lastErr error = ErrNoMaster
	for attempt := 0; ctx.Err() == nil; attempt++ {
		ep := c.target(attempt, false)
		n, err := c.node(ep)
		if err != nil {
			return 0, err
		}
		resp, err := n.kvs[0].KeepAlive(ctx, &messages.KeepAliveRequest{Session: id})
		if err == nil {
			c.learn(ep, resp.Header, false)
			return time.Duration(resp.ValidMs) * time.Millisecond, nil
		}
		code, msg, said, out := c.rpcError(ep, err)
		if !said {
			c.unreachable(ep)
			lastErr = out
			continue
		}
		if _, err := c.outcome(code, msg, ep, true); errors.Is(err, ErrSessionExpired) || errors.Is(err, ErrInvalid) {
			return 0, err
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	return 0, lastErr
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
