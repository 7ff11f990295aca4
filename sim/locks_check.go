package sim

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// The lock service's invariants (issue 16, item 8), judged on every
// replica after every command it applies:
//   - at most one exclusive holder of a lock at any instance
//     (ErrTwoLockHolders);
//   - a fenced write applies only while its sequencer's acquisition holds
//     the lock (ErrSequencerAccepted);
//   - a lock whose holder's session expired takes no new holder before the
//     lock-delay ran out, in the log's time (ErrLockDelayIgnored);
//   - no session expires while a KeepAlive answer promised it more time
//     (ErrSessionExpiredEarly);
//   - no (session, seq) write applies twice (ErrWriteAppliedTwice).

// checkedKV is a replica's database with the lock checker after every
// command (only in runs with session clients).
type checkedKV struct {
	*db.KV
	n *node
}

func (k checkedKV) Apply(instance uint64, cmd []byte) ([]byte, error) {
	pre := k.n.s.locks.before(k.KV, cmd)
	res, err := k.KV.Apply(instance, cmd)
	k.n.s.locks.after(k.n, instance, pre)
	return res, err
}

func (k checkedKV) ApplyQuiet(instance uint64, cmd []byte) error {
	pre := k.n.s.locks.before(k.KV, cmd)
	err := k.KV.ApplyQuiet(instance, cmd)
	k.n.s.locks.after(k.n, instance, pre)
	return err
}

// lockChecker holds what the invariants need across replicas.
type lockChecker struct {
	s *Simulator
	// promised: per session, the latest end a KeepAlive answer (or its
	// open) promised its client, in true time.
	promises map[uint64]int64
	// expiryJudged: the expiries already judged (the first replica to
	// apply one judges it).
	expiryJudged map[uint64]bool
	// freeAt: per replica's database, the log time before which its lock
	// may take no holder (an expired holder's lock-delay).
	freeAt map[*db.KV]int64
	// What the runs did, judged on the first replica to apply each
	// instance (tests assert the workload reached each).
	stats lockStats
	seen  map[uint64]bool
}

// lockStats counts what the lock workload did.
type lockStats struct {
	Acquired, Expired, FencedApplied, FencedRefused, SequencedRetries int
}

func (a *lockStats) add(b lockStats) {
	a.Acquired += b.Acquired
	a.Expired += b.Expired
	a.FencedApplied += b.FencedApplied
	a.FencedRefused += b.FencedRefused
	a.SequencedRetries += b.SequencedRetries
}

func newLockChecker(s *Simulator) *lockChecker {
	return &lockChecker{s: s, promises: map[uint64]int64{}, expiryJudged: map[uint64]bool{}, freeAt: map[*db.KV]int64{},
		seen: map[uint64]bool{}}
}

func (lc *lockChecker) opened(c *sessClient, session uint64) {
	lc.promises[session] = max(lc.promises[session], c.promisedUntil)
}

func (lc *lockChecker) promise(session uint64, until int64) {
	lc.promises[session] = max(lc.promises[session], until)
}

// pre is the state before one command.
type pre struct {
	op      *messages.MultiOp
	holders []*messages.LockHolder
	mark    []byte // a fenced write's exactly-once marker
	marked  bool   // present before
}

func (lc *lockChecker) before(kv *db.KV, cmd []byte) pre {
	p := pre{op: &messages.MultiOp{}, holders: kv.Holders([]byte(lockName))}
	if proto.Unmarshal(cmd, p.op) != nil {
		p.op = &messages.MultiOp{}
	}
	if fencedSeq(p.op) != nil {
		p.mark = p.op.TOp[0].Key
		_, p.marked = kv.Read(p.mark)
	}
	return p
}

// fencedSeq is the sequencer a session client's fenced write carries.
func fencedSeq(op *messages.MultiOp) *messages.Test {
	if len(op.Guard) != 1 || op.Guard[0].Kind != messages.Test_KIND_SEQUENCER || len(op.TOp) != 2 {
		return nil
	}
	return op.Guard[0]
}

func (lc *lockChecker) after(n *node, instance uint64, p pre) {
	s := lc.s
	kv := n.kv
	now := kv.Now()
	first := !lc.seen[instance]
	lc.seen[instance] = true
	hs := kv.Holders([]byte(lockName))
	exclusive := 0
	for _, h := range hs {
		if !h.Shared {
			exclusive++
		}
	}
	if exclusive > 1 || (exclusive == 1 && len(hs) > 1) {
		s.fail(ErrSafety, ErrTwoLockHolders, "%s at instance %d: holders %v", n.name(), instance, hs)
		return
	}
	for _, o := range p.op.TOp {
		if o.Kind != messages.Op_KIND_SESSION_EXPIRE {
			continue
		}
		if !lc.expiryJudged[o.Session] {
			lc.expiryJudged[o.Session] = true
			lc.stats.Expired++
			slack := int64(s.cfg.SessionTTL)*4*s.cfg.MaxDriftPPM/1_000_000 + int64(2*time.Millisecond)
			if until := lc.promises[o.Session]; s.sched.now < until-slack {
				s.fail(ErrSafety, ErrSessionExpiredEarly, "session %d expired at instance %d, %v before the end its client was promised",
					o.Session, instance, time.Duration(until-s.sched.now))
				return
			}
			// The expiry was chosen after its master's clock passed the
			// session's end (at the earliest, what its client was last
			// promised, less the drift slack twice over for the margin) and
			// before this first apply anywhere.
			s.lockHistory = append(s.lockHistory, &lockOp{kind: lockExpire, session: o.Session, client: -1,
				call: max(0, min(lc.promises[o.Session]-2*slack, s.sched.now)), ret: s.sched.now, known: true})
		}
		for _, h := range p.holders {
			if h.Session == o.Session {
				lc.freeAt[kv] = max(lc.freeAt[kv], now+int64(s.cfg.LockDelay/time.Millisecond))
			}
		}
	}
	for _, h := range hs {
		isNew := true
		for _, b := range p.holders {
			isNew = isNew && !(b.Session == h.Session && b.Instance == h.Instance)
		}
		if isNew && first {
			lc.stats.Acquired++
		}
		if isNew && now < lc.freeAt[kv] {
			s.fail(ErrSafety, ErrLockDelayIgnored, "%s at instance %d: session %d took %s at log time %d, lock-delay until %d",
				n.name(), instance, h.Session, lockName, now, lc.freeAt[kv])
			return
		}
	}
	if t := fencedSeq(p.op); t != nil {
		out, err := kv.Query(mustMarshal(db.Get(p.mark)))
		res := &messages.MultiOpResult{}
		if err != nil || proto.Unmarshal(out, res) != nil || len(res.Results) != 1 {
			s.fail(ErrSafety, ErrUnexpectedResponse, "reading marker %q: %v", p.mark, err)
			return
		}
		g := res.Results[0]
		if g.Version > 1 {
			s.fail(ErrSafety, ErrWriteAppliedTwice, "%s at instance %d: session %d's write seq %d applied %d times",
				n.name(), instance, p.op.Session, p.op.Seq, g.Version)
			return
		}
		held := false
		for _, b := range p.holders {
			held = held || (b.Instance == t.Instance && b.Shared == t.Shared)
		}
		ran := g.Found && !p.marked
		if first && ran {
			lc.stats.FencedApplied++
		} else if first && !g.Found {
			lc.stats.FencedRefused++
		}
		if ran && !held {
			s.fail(ErrSafety, ErrSequencerAccepted, "%s at instance %d: a write fenced by acquisition %d applied; holders were %v",
				n.name(), instance, t.Instance, p.holders)
			return
		}
	}
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("sim: %v", err))
	}
	return b
}
