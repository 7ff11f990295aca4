package sim

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// Client retry timing, as in client/client.go.
const (
	backoffStart = 10 * time.Millisecond
	backoffMax   = 200 * time.Millisecond
	redirectWait = time.Millisecond
)

type opKind uint8

const (
	opGet opKind = iota
	opPut
	opCAS
	opDelete
)

func (k opKind) String() string { return [...]string{"get", "put", "cas", "delete"}[k] }

type opStatus uint8

const (
	opPending opStatus = iota
	opOK
	// opUnknown: a write whose answer was lost; it may or may not have
	// taken effect, and it was not retried.
	opUnknown
)

// op is one client operation in the history that the linearizability
// checker reads.
type op struct {
	id     int
	client int
	kind   opKind
	key    string
	keyIdx int
	value  string // put, cas: the new value
	// cas: expect the key present with old, or absent when !oldPresent.
	old        string
	oldPresent bool
	call, ret  int64
	status     opStatus
	// instance is where the log applied a write (0: nowhere yet), and
	// appliedAt when a replica first applied it: the latest moment the
	// write can have taken effect.
	instance  uint64
	appliedAt int64
	mode      readMode // gets: how it was served
	// refused: the write's epoch ended before it applied (it must not be
	// in the log as applied).
	refused bool
	// Results, for opOK.
	succeeded bool // cas: the guard held
	found     bool
	got       string
}

func (o *op) String() string {
	in := fmt.Sprintf("%s(%s", o.kind, o.key)
	if o.kind == opGet {
		in = fmt.Sprintf("get/%s(%s", o.mode, o.key)
	}
	switch o.kind {
	case opPut:
		in += "=" + o.value
	case opCAS:
		old := "<absent>"
		if o.oldPresent {
			old = o.old
		}
		in += fmt.Sprintf(": %s->%s", old, o.value)
	}
	in += ")"
	var outS string
	switch o.status {
	case opPending:
		outS = "pending"
	case opUnknown:
		outS = "unknown"
	default:
		outS = fmt.Sprintf("ok=%v found=%v got=%q", o.succeeded, o.found, o.got)
	}
	ret := "inf"
	if o.status == opOK {
		ret = time.Duration(o.ret).String()
	}
	return fmt.Sprintf("#%d c%d [%s, %s] %s -> %s", o.id, o.client, time.Duration(o.call), ret, in, outS)
}

// client is one closed-loop simulated client, following the real client's
// rules: it sends to the master it believes in (else the nodes in turn),
// follows NOT_MASTER hints, retries what was certainly not proposed and
// every read, and reports a write with a lost answer as unknown instead of
// retrying it.
type client struct {
	s      *Simulator
	idx    int
	id     uint32 // endpoint id
	master uint32 // 0: unknown
	next   int    // rotates the first node tried when no master is known
	cur    *op
	auto   bool // closed loop: issue the next operation after each
	// The current operation's attempts.
	payload  []byte
	readOnly bool
	mode     readMode // how a get is served
	attempt  int
	reqID    uint64
	target   uint32
	backoff  time.Duration
	seq      int
	// last value this client saw per key, to aim its compare-and-swaps.
	seen        []string
	seenPresent []bool
}

func newClient(s *Simulator, idx int) *client {
	return &client{s: s, idx: idx, id: clientBase + uint32(idx),
		seen: make([]string, s.cfg.Keys), seenPresent: make([]bool, s.cfg.Keys)}
}

func (c *client) name() string { return endpointName(c.id) }

// start schedules the first operation; from then on the client runs
// closed-loop. A client never started runs only the operations a scenario
// begins.
func (c *client) start() {
	c.auto = true
	c.s.sched.after(c.s.rng.Int64N(int64(c.s.cfg.ThinkMax)+1), c.issue)
}

// issue starts the next operation, unless clients have stopped issuing.
func (c *client) issue() {
	s := c.s
	if s.err != nil || s.sched.now >= s.issueStop {
		return
	}
	k := s.rng.IntN(s.cfg.Keys)
	c.seq++
	o := &op{id: len(s.history), client: c.idx, key: fmt.Sprintf("k%d", k), keyIdx: k, call: s.sched.now}
	var mop *messages.MultiOp
	c.mode = readLog
	switch r := s.rng.IntN(100); {
	case r < 35:
		o.kind, mop = opGet, db.Get([]byte(o.key))
		// Most gets are lease reads, as a lock service's are; some confirm
		// with a quorum, a few go through the log.
		switch m := s.rng.IntN(10); {
		case m < 6:
			c.mode = readLease
		case m < 9:
			c.mode = readQuorum
		}
		o.mode = c.mode
	case r < 65:
		o.kind = opPut
		o.value = fmt.Sprintf("c%d.%d", c.idx, c.seq)
		mop = db.Put([]byte(o.key), []byte(o.value))
	case r < 92:
		o.kind = opCAS
		o.value = fmt.Sprintf("c%d.%d", c.idx, c.seq)
		o.oldPresent, o.old = c.seenPresent[k], c.seen[k]
		var old []byte
		if o.oldPresent {
			old = []byte(o.old)
		}
		mop = db.CompareAndSwap([]byte(o.key), old, []byte(o.value))
	default:
		o.kind, mop = opDelete, db.Delete([]byte(o.key))
	}
	c.begin(o, mop)
}

// begin starts operation o, whose MultiOp is mop.
func (c *client) begin(o *op, mop *messages.MultiOp) {
	s := c.s
	payload, err := proto.Marshal(mop)
	if err != nil {
		panic(err)
	}
	o.id, o.client, o.call = len(s.history), c.idx, s.sched.now
	s.history = append(s.history, o)
	c.cur, c.payload, c.readOnly = o, payload, o.kind == opGet
	c.attempt, c.backoff = 0, backoffStart
	c.next++
	if s.trace != nil {
		s.tracef("%s issue %s", c.name(), o)
	}
	c.send()
}

// send makes one attempt, to the master if known, else the nodes in turn.
func (c *client) send() {
	s := c.s
	c.target = c.master
	if c.target == 0 {
		c.target = s.all[(c.attempt+c.next)%len(s.all)]
	}
	s.reqSeq++
	c.reqID = s.reqSeq
	id := c.reqID
	s.reqOps[id] = c.cur
	if s.trace != nil {
		s.tracef("%s -> %s request %d (op #%d attempt %d)", c.name(), endpointName(c.target), id, c.cur.id, c.attempt)
	}
	s.net.send(c.id, c.target, &clientRequest{client: c.id, reqID: id, payload: c.payload, read: c.mode})
	s.sched.after(int64(s.cfg.AttemptTimeout), func() {
		if c.cur != nil && c.reqID == id && s.err == nil {
			c.timeout()
		}
	})
}

// retry waits out the back-off, then tries again (client.submit's loop).
func (c *client) retry() {
	wait := c.backoff
	c.backoff = min(2*c.backoff, backoffMax)
	c.attempt++
	c.reqID = 0 // answers to the old attempt are stale now
	cur := c.cur
	c.s.sched.after(int64(wait), func() {
		if c.cur == cur && c.s.err == nil {
			c.send()
		}
	})
}

func (c *client) forget(node uint32) {
	if c.master == node {
		c.master = 0
	}
}

func (c *client) timeout() {
	c.forget(c.target)
	if c.s.trace != nil {
		c.s.tracef("%s timeout on request %d", c.name(), c.reqID)
	}
	if !c.readOnly {
		c.finish(opUnknown)
		return
	}
	c.retry()
}

func (c *client) receive(from uint32, msg any) {
	switch m := msg.(type) {
	case *deadLetter:
		if c.cur == nil || m.reqID != c.reqID {
			return
		}
		c.forget(from)
		c.retry() // never delivered: safe to send elsewhere
	case *messages.ClientResponse:
		if c.cur == nil || m.RequestId != c.reqID {
			return // an answer to an attempt already given up on
		}
		c.response(from, m)
	default:
		panic(fmt.Sprintf("sim: %s got a %T", c.name(), msg))
	}
}

func (c *client) response(from uint32, m *messages.ClientResponse) {
	switch m.Code {
	case messages.ErrorCode_ERROR_CODE_OK:
		c.master = from
		if !c.readOnly && m.Instance != c.cur.instance {
			c.s.fail(ErrSafety, ErrUnexpectedResponse, "op #%d acknowledged at instance %d, the log has it at %d",
				c.cur.id, m.Instance, c.cur.instance)
			return
		}
		c.decode(m.Result)
	case messages.ErrorCode_ERROR_CODE_NOT_MASTER:
		if m.MasterId != 0 && m.MasterId != from {
			c.master = m.MasterId
			c.backoff = redirectWait // a redirect: go at once
		} else {
			c.forget(from)
		}
		c.retry()
	case messages.ErrorCode_ERROR_CODE_OVERLOADED, messages.ErrorCode_ERROR_CODE_UNAVAILABLE:
		c.retry()
	case messages.ErrorCode_ERROR_CODE_MASTER_CHANGED:
		// Not applied, on any replica: the epoch it was proposed in ended.
		c.forget(from)
		if !c.readOnly {
			if c.cur.instance != 0 {
				c.s.fail(ErrSafety, ErrEpochIgnored, "op #%d refused as master-changed, but applied at instance %d",
					c.cur.id, c.cur.instance)
				return
			}
			c.cur.refused = true
			c.finish(opUnknown)
			return
		}
		c.retry()
	case messages.ErrorCode_ERROR_CODE_OUTCOME_UNKNOWN:
		c.forget(from)
		if !c.readOnly {
			c.finish(opUnknown)
			return
		}
		c.retry()
	default:
		c.s.fail(ErrSafety, ErrUnexpectedResponse, "%s answered op #%d with %s: %s",
			endpointName(from), c.cur.id, m.Code, m.Error)
	}
}

// decode fills in the result of a successful operation.
func (c *client) decode(b []byte) {
	o := c.cur
	res := &messages.MultiOpResult{}
	if err := proto.Unmarshal(b, res); err != nil || len(res.Results) != 1 {
		c.s.fail(ErrSafety, ErrUnexpectedResponse, "op #%d: result %v with %d results", o.id, err, len(res.Results))
		return
	}
	r := res.Results[0]
	o.succeeded, o.found, o.got = res.Succeeded, r.Found, string(r.Value)
	k := o.keyIdx
	switch o.kind {
	case opGet:
		c.seenPresent[k], c.seen[k] = o.found, o.got
	case opPut:
		c.seenPresent[k], c.seen[k] = true, o.value
	case opCAS:
		if o.succeeded {
			c.seenPresent[k], c.seen[k] = true, o.value
		} else {
			c.seenPresent[k], c.seen[k] = o.found, o.got
		}
	case opDelete:
		c.seenPresent[k] = false
	}
	c.finish(opOK)
}

func (c *client) finish(st opStatus) {
	s := c.s
	o := c.cur
	o.status = st
	o.ret = s.sched.now
	c.cur, c.reqID = nil, 0
	if s.trace != nil {
		s.tracef("%s done %s", c.name(), o)
	}
	s.check.opDone(o)
	if s.err != nil {
		return
	}
	if c.auto {
		s.sched.after(s.rng.Int64N(int64(s.cfg.ThinkMax)+1), c.issue)
	}
}
