package sim

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// Session clients (issue 16, item 8): each opens a session, keeps it alive
// at the master, takes the lock lockName, writes fencedKey guarded by its
// sequencer and by an exactly-once sequence number, and releases it, or
// now and then stops its KeepAlives (a paused holder) and moves on to a
// new session. Their KeepAlives and the log's expiries, acquisitions and
// fenced writes are what the lock invariants (locks_check.go) judge.

// sessionBase: endpoint ids at or above it are session clients.
const sessionBase = 2000

const (
	lockName  = "lpk-lock"
	fencedKey = "lpk-fenced"
)

type sessKind uint8

const (
	sessOpen sessKind = iota
	sessLock
	sessWrite
	sessUnlock
	sessStale // a paused holder's write, with its old sequencer, as a server would send it
)

type sessClient struct {
	s      *Simulator
	idx    int
	id     uint32
	master uint32
	next   int

	session uint64
	// promisedUntil (true time): the latest end any KeepAlive answer (or
	// the open) promised, counted from when it was sent.
	promisedUntil int64
	seq           uint64
	held          *messages.Sequencer
	pausedUntil   int64
	stale         *messages.Sequencer // held when it paused
	staleWrites   int

	// The request in flight.
	kind    sessKind
	payload []byte
	reqID   uint64
	sent    int64
	target  uint32
	attempt int
	// The KeepAlive in flight.
	kaID   uint64
	kaSent int64
	// lockOp: the request in flight is this acquisition or release, in
	// the lock's history (locks_linearizability.go).
	lockOp *lockOp
}

func newSessClient(s *Simulator, idx int) *sessClient {
	return &sessClient{s: s, idx: idx, id: sessionBase + uint32(idx)}
}

func (c *sessClient) name() string { return "s" + strconv.Itoa(c.idx) }

func (c *sessClient) start() {
	c.s.sched.after(c.s.rng.Int64N(int64(c.s.cfg.ThinkMax)+1), c.step)
	c.s.sched.after(int64(c.s.cfg.SessionTTL/3), c.keepAliveTick)
}

// step starts the next request.
func (c *sessClient) step() {
	s := c.s
	if s.err != nil || s.sched.now >= s.issueStop || c.reqID != 0 {
		return
	}
	if s.sched.now < c.pausedUntil {
		s.sched.after(c.pausedUntil-s.sched.now, c.step)
		return
	}
	if c.session != 0 && s.sched.now >= c.promisedUntil {
		c.lost("no promise covers now") // as client.Session's deadline
	}
	switch {
	case c.stale != nil:
		c.staleWrites++
		mark := fmt.Sprintf("lpk-w/stale/%d/%d", c.idx, c.staleWrites)
		c.begin(sessStale, &messages.MultiOp{Guard: []*messages.Test{db.SequencerHolds(c.stale)},
			TOp: []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: []byte(mark), Value: []byte("1")},
				{Kind: messages.Op_KIND_PUT, Key: []byte(fencedKey), Value: []byte("stale")}}})
		c.stale = nil
	case c.session == 0:
		c.begin(sessOpen, db.OpenSession(s.cfg.SessionTTL))
	case c.held == nil:
		m := db.Lock(c.session, []byte(lockName), false, false)
		m.TOp[0].LockDelayMs = uint64(s.cfg.LockDelay / time.Millisecond)
		c.begin(sessLock, c.sequenced(m))
	default:
		// Fenced by the sequencer, and exactly once: the write puts this
		// (session, seq)'s own marker, whose version would be 2 if it
		// applied twice (the checker looks).
		c.seq++
		mark := fmt.Sprintf("lpk-w/%d/%d", c.session, c.seq)
		m := &messages.MultiOp{Session: c.session, Seq: c.seq, Acked: c.seq - 1,
			Guard: []*messages.Test{db.SequencerHolds(c.held)},
			TOp: []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: []byte(mark), Value: []byte("1")},
				{Kind: messages.Op_KIND_PUT, Key: []byte(fencedKey), Value: []byte(fmt.Sprintf("%d/%d", c.held.Instance, c.session))}}}
		c.begin(sessWrite, m)
	}
}

// sequenced gives a session's command its sequence number.
func (c *sessClient) sequenced(m *messages.MultiOp) *messages.MultiOp {
	c.seq++
	m.Seq, m.Acked = c.seq, c.seq-1
	return m
}

func (c *sessClient) begin(k sessKind, m *messages.MultiOp) {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	c.kind, c.payload, c.attempt, c.sent = k, b, 0, c.s.sched.now
	c.lockOp = nil
	if k == sessLock || k == sessUnlock {
		c.lockOp = &lockOp{kind: lockAcquire, session: c.session, client: c.idx, call: c.sent, ret: math.MaxInt64}
		if k == sessUnlock {
			c.lockOp.kind = lockRelease
		}
		c.s.lockHistory = append(c.s.lockHistory, c.lockOp)
	}
	c.next++
	c.send()
}

func (c *sessClient) pick() uint32 {
	if c.master != 0 {
		return c.master
	}
	c.next++
	return c.s.all[c.next%len(c.s.all)]
}

func (c *sessClient) send() {
	s := c.s
	c.target = c.pick()
	s.reqSeq++
	id := s.reqSeq
	c.reqID = id
	s.net.send(c.id, c.target, &clientRequest{client: c.id, reqID: id, payload: c.payload, read: readLog})
	s.sched.after(int64(s.cfg.AttemptTimeout), func() {
		if c.reqID == id && s.err == nil {
			c.master = 0
			if c.kind == sessOpen || c.kind == sessStale {
				// Not sequenced: maybe applied, maybe not (an orphan
				// session expires on its own).
				c.done()
				return
			}
			c.s.locks.stats.SequencedRetries++
			c.retry() // sequenced: applies once however often it is sent
		}
	})
}

func (c *sessClient) retry() {
	c.attempt++
	c.reqID = 0
	wait := min(backoffStart<<min(c.attempt, 5), backoffMax)
	c.s.sched.after(int64(wait), func() {
		if c.reqID == 0 && c.s.err == nil {
			c.send()
		}
	})
}

// done ends the request in flight and thinks before the next.
func (c *sessClient) done() {
	c.reqID = 0
	c.s.sched.after(c.s.rng.Int64N(int64(c.s.cfg.ThinkMax)+1), c.step)
}

// lost forgets the session: it expired, or its client stopped trusting it.
func (c *sessClient) lost(why string) {
	if c.s.trace != nil && c.session != 0 {
		c.s.tracef("%s session %d lost: %s", c.name(), c.session, why)
	}
	c.session, c.held, c.seq = 0, nil, 0
}

func (c *sessClient) receive(from uint32, msg any) {
	switch m := msg.(type) {
	case *deadLetter:
		if m.reqID == c.reqID && c.reqID != 0 {
			c.master = 0
			c.retry()
		}
	case *messages.ClientResponse:
		switch m.RequestId {
		case c.kaID:
			c.keepAliveAnswer(from, m)
		case c.reqID:
			c.response(from, m)
		}
	default:
		panic(fmt.Sprintf("sim: %s got a %T", c.name(), msg))
	}
}

func (c *sessClient) response(from uint32, m *messages.ClientResponse) {
	s := c.s
	switch m.Code {
	case messages.ErrorCode_ERROR_CODE_OK:
		c.master = from
	case messages.ErrorCode_ERROR_CODE_NOT_MASTER:
		c.master = m.MasterId
		if m.MasterId == from {
			c.master = 0
		}
		c.retry()
		return
	case messages.ErrorCode_ERROR_CODE_SESSION_EXPIRED:
		if c.lockOp != nil {
			c.lockOp.ret = s.sched.now // took effect before the expiry, or never
		}
		c.lost("the cluster says so")
		c.done()
		return
	case messages.ErrorCode_ERROR_CODE_OVERLOADED, messages.ErrorCode_ERROR_CODE_UNAVAILABLE,
		messages.ErrorCode_ERROR_CODE_MASTER_CHANGED, messages.ErrorCode_ERROR_CODE_OUTCOME_UNKNOWN:
		c.master = 0
		if c.kind == sessOpen || c.kind == sessStale {
			c.done()
			return
		}
		c.retry()
		return
	default:
		s.fail(ErrSafety, ErrUnexpectedResponse, "%s: %v: %s", c.name(), m.Code, m.Error)
		return
	}
	if c.kind == sessStale {
		c.done() // the checker judged it as it applied
		return
	}
	res := &messages.MultiOpResult{}
	if err := proto.Unmarshal(m.Result, res); err != nil || len(res.Results) == 0 {
		s.fail(ErrSafety, ErrUnexpectedResponse, "%s: result %v (%v)", c.name(), res, err)
		return
	}
	r := res.Results[0]
	switch c.kind {
	case sessOpen:
		if r.Found {
			c.session = r.Session
			c.promisedUntil = c.sent + int64(s.cfg.SessionTTL)
			s.locks.opened(c, r.Session)
		}
	case sessLock:
		if r.Found {
			c.held = r.Sequencer
		}
		c.lockOp.ret, c.lockOp.known, c.lockOp.acquired = s.sched.now, true, r.Found
	case sessWrite:
		switch {
		case !res.Succeeded:
			c.held = nil // the sequencer no longer holds: the session ended
		case s.rng.IntN(5) == 0:
			// A paused holder: no KeepAlive for two TTLs.
			c.pausedUntil = s.sched.now + 2*int64(s.cfg.SessionTTL)
			c.stale = c.held
			c.lost("paused")
		default:
			c.begin(sessUnlock, c.sequenced(db.Unlock(c.session, []byte(lockName))))
			return
		}
	case sessUnlock:
		c.held = nil
		c.lockOp.ret, c.lockOp.known = s.sched.now, true
	}
	c.done()
}

// keepAliveTick sends a KeepAlive every third of the TTL.
func (c *sessClient) keepAliveTick() {
	s := c.s
	if s.err != nil || s.sched.now >= s.end {
		return
	}
	s.sched.after(int64(s.cfg.SessionTTL/3), c.keepAliveTick)
	if c.session == 0 || s.sched.now < c.pausedUntil {
		return
	}
	s.reqSeq++
	c.kaID, c.kaSent = s.reqSeq, s.sched.now
	s.net.send(c.id, c.pick(), &messages.KeepAliveRequest{RequestId: c.kaID, Session: c.session})
}

func (c *sessClient) keepAliveAnswer(from uint32, m *messages.ClientResponse) {
	c.kaID = 0
	switch m.Code {
	case messages.ErrorCode_ERROR_CODE_OK:
		c.master = from
		res := &messages.KeepAliveResult{}
		if err := proto.Unmarshal(m.Result, res); err != nil {
			c.s.fail(ErrSafety, ErrUnexpectedResponse, "%s: KeepAlive result: %v", c.name(), err)
			return
		}
		c.promisedUntil = max(c.promisedUntil, c.kaSent+int64(time.Duration(res.ValidMs)*time.Millisecond))
		c.s.locks.promise(c.session, c.promisedUntil)
	case messages.ErrorCode_ERROR_CODE_NOT_MASTER:
		c.master = m.MasterId
	case messages.ErrorCode_ERROR_CODE_SESSION_EXPIRED:
		if c.reqID == 0 {
			c.lost("KeepAlive refused")
		}
	}
}
