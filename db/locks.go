package db

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// Locks and sequencers (Chubby §2.4, issue 16 item 3), as replicated
// state: advisory locks on names, held exclusively or shared by sessions,
// with waiters served in order. Every acquisition has a sequencer (the
// lock's name, its mode, the log instance it was made at) that a MultiOp
// guard tests: it holds only while that acquisition still holds the lock,
// so a server that checks it refuses a deposed holder's requests.

// Lock-delay. When a holder's session expires (rather than releasing), the
// lock takes no holder for its lock-delay: a request the dead holder sent
// before its session ended may still be on its way to a server that does
// not check sequencers. DefaultLockDelay is 15 s, a little over the
// server's default request timeout (10 s): by then any request the holder
// sent while it held the lock has been answered or given up on. Chubby's
// one minute, its maximum too, is the cap.
const (
	DefaultLockDelay = 15 * time.Second
	MaxLockDelay     = time.Minute
)

// Lock returns a MultiOp that acquires the lock name for session,
// exclusively or shared; with wait the session queues if it cannot have it
// now.
func Lock(session uint64, name []byte, shared, wait bool) *messages.MultiOp {
	return &messages.MultiOp{Session: session,
		TOp: []*messages.Op{{Kind: messages.Op_KIND_LOCK, Key: name, Shared: shared, Wait: wait}}}
}

// Unlock returns a MultiOp that releases the lock name held (or waited
// for) by session.
func Unlock(session uint64, name []byte) *messages.MultiOp {
	return &messages.MultiOp{Session: session, TOp: []*messages.Op{{Kind: messages.Op_KIND_UNLOCK, Key: name}}}
}

// LockInfo returns a read-only MultiOp that reads the lock name's holders
// and waiters.
func LockInfo(name []byte) *messages.MultiOp {
	return &messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_LOCK_INFO, Key: name}}}
}

// OpenSession returns a MultiOp that opens a session with ttl.
func OpenSession(ttl time.Duration) *messages.MultiOp {
	return &messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_SESSION_OPEN, TtlMs: uint64(ttl / time.Millisecond)}}}
}

// CloseSession returns a MultiOp that ends session cleanly.
func CloseSession(session uint64) *messages.MultiOp {
	return &messages.MultiOp{Session: session, TOp: []*messages.Op{{Kind: messages.Op_KIND_SESSION_CLOSE}}}
}

// ExpireSession returns the MultiOp a master proposes when session's
// deadline passed.
func ExpireSession(session uint64) *messages.MultiOp {
	return &messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_SESSION_EXPIRE, Session: session}}}
}

// SequencerHolds is a guard test that holds while seq's acquisition holds
// its lock.
func SequencerHolds(seq *messages.Sequencer) *messages.Test {
	return &messages.Test{Kind: messages.Test_KIND_SEQUENCER, Key: seq.GetName(), Shared: seq.GetShared(), Instance: seq.GetInstance()}
}

// FormatSequencer writes seq as text, "INSTANCE:MODE:NAME" (MODE x for
// exclusive, s for shared; the name last, as it may hold colons), for
// passing on (the CLI's LIVEPAXOS_SEQUENCER).
func FormatSequencer(seq *messages.Sequencer) string {
	mode := "x"
	if seq.GetShared() {
		mode = "s"
	}
	return fmt.Sprintf("%d:%s:%s", seq.GetInstance(), mode, seq.GetName())
}

// ParseSequencer reads FormatSequencer's text.
func ParseSequencer(s string) (*messages.Sequencer, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 || parts[2] == "" || (parts[1] != "x" && parts[1] != "s") {
		return nil, fmt.Errorf("%w: sequencer %q: want INSTANCE:x|s:NAME", ErrInvalidOp, s)
	}
	n, err := strconv.ParseUint(parts[0], 10, 64)
	if err != nil || n == 0 {
		return nil, fmt.Errorf("%w: sequencer %q: bad instance", ErrInvalidOp, s)
	}
	return &messages.Sequencer{Name: []byte(parts[2]), Shared: parts[1] == "s", Instance: n}, nil
}

// sequencerHolds evaluates a KIND_SEQUENCER test.
func (kv *KV) sequencerHolds(t *messages.Test) bool {
	l, ok := kv.locks[string(t.Key)]
	if !ok {
		return false
	}
	for _, h := range l.Holders {
		if h.Instance == t.Instance && h.Shared == t.Shared {
			return true
		}
	}
	return false
}

// acquire runs a validated KIND_LOCK for session sid.
func (kv *KV) acquire(o *messages.Op, sid uint64) *messages.OpResult {
	name := string(o.Key)
	l, ok := kv.locks[name]
	if !ok {
		l = &messages.LockRecord{Name: []byte(name)}
		kv.locks[name] = l
	}
	kv.promote(l)
	if h := holderOf(l.Holders, sid); h != nil {
		return &messages.OpResult{Found: true, Sequencer: sequencerOf(l, h)}
	}
	delay := o.LockDelayMs
	if delay == 0 {
		delay = uint64(DefaultLockDelay / time.Millisecond)
	}
	queued := holderOf(l.Waiters, sid) != nil
	if !queued && len(l.Waiters) == 0 && kv.grantable(l, o.Shared) {
		h := &messages.LockHolder{Session: sid, Shared: o.Shared, Instance: kv.lastApplied, LockDelayMs: delay}
		l.Holders = append(l.Holders, h)
		kv.sessions[sid].locks[name] = struct{}{}
		return &messages.OpResult{Found: true, Sequencer: sequencerOf(l, h)}
	}
	if !queued && o.Wait {
		l.Waiters = append(l.Waiters, &messages.LockHolder{Session: sid, Shared: o.Shared, Instance: kv.lastApplied, LockDelayMs: delay})
		kv.sessions[sid].locks[name] = struct{}{}
		queued = true
	}
	kv.tidy(name, l)
	return &messages.OpResult{Queued: queued}
}

// grantable reports whether a new acquisition in the mode shared may be
// made now: no lock-delay in force, and no holder or only shared holders
// for a shared one.
func (kv *KV) grantable(l *messages.LockRecord, shared bool) bool {
	if kv.nowMs < l.FreeAtMs {
		return false
	}
	if len(l.Holders) == 0 {
		return true
	}
	if !shared {
		return false
	}
	for _, h := range l.Holders {
		if !h.Shared {
			return false
		}
	}
	return true
}

// promote grants the lock to the waiters at the head of its line while
// they can have it: in order, one exclusive or a run of shared ones.
func (kv *KV) promote(l *messages.LockRecord) {
	for len(l.Waiters) > 0 && kv.grantable(l, l.Waiters[0].Shared) {
		w := l.Waiters[0]
		l.Waiters[0] = nil
		l.Waiters = l.Waiters[1:]
		w.Instance = kv.lastApplied
		l.Holders = append(l.Holders, w)
	}
	if len(l.Waiters) == 0 {
		l.Waiters = nil
	}
}

// release takes session sid off lock name, as holder or waiter, and
// reports whether it held it. expired: its session expired, and the lock
// then takes no holder for the lock-delay the holder asked for.
func (kv *KV) release(name string, sid uint64, expired bool) bool {
	l, ok := kv.locks[name]
	if !ok {
		return false
	}
	held := false
	l.Holders = slices.DeleteFunc(l.Holders, func(h *messages.LockHolder) bool {
		if h.Session != sid {
			return false
		}
		held = true
		if expired && !kv.plantedNoLockDelay {
			l.FreeAtMs = max(l.FreeAtMs, kv.nowMs+int64(h.LockDelayMs))
		}
		return true
	})
	l.Waiters = slices.DeleteFunc(l.Waiters, func(h *messages.LockHolder) bool { return h.Session == sid })
	if s, ok := kv.sessions[sid]; ok {
		delete(s.locks, name)
	}
	kv.promote(l)
	kv.tidy(name, l)
	return held
}

// tidy drops a lock nobody holds or waits for once no lock-delay keeps it.
func (kv *KV) tidy(name string, l *messages.LockRecord) {
	if len(l.Holders) == 0 && len(l.Waiters) == 0 && kv.nowMs >= l.FreeAtMs {
		delete(kv.locks, name)
	}
}

func holderOf(hs []*messages.LockHolder, sid uint64) *messages.LockHolder {
	for _, h := range hs {
		if h.Session == sid {
			return h
		}
	}
	return nil
}

func sequencerOf(l *messages.LockRecord, h *messages.LockHolder) *messages.Sequencer {
	return &messages.Sequencer{Name: []byte(string(l.Name)), Shared: h.Shared, Instance: h.Instance}
}

// lockInfo runs a KIND_LOCK_INFO: a copy of the lock's record (found
// false: nobody holds or waits for it and no lock-delay is in force).
func (kv *KV) lockInfo(o *messages.Op) *messages.OpResult {
	l, ok := kv.locks[string(o.Key)]
	if !ok {
		return &messages.OpResult{}
	}
	return &messages.OpResult{Found: true, Lock: proto.Clone(l).(*messages.LockRecord)}
}

// Holders returns the sessions holding lock name, for tests and the
// simulator's invariants.
func (kv *KV) Holders(name []byte) []*messages.LockHolder {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	l, ok := kv.locks[string(name)]
	if !ok {
		return nil
	}
	return proto.Clone(l).(*messages.LockRecord).Holders
}

// PlantNoLockDelay makes the database forget lock-delay: the planted bug
// the simulator's lock-delay invariant must catch (tests only).
func (kv *KV) PlantNoLockDelay() { kv.plantedNoLockDelay = true }

// Now returns the log's time (ObserveTime), in Unix milliseconds.
func (kv *KV) Now() int64 {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	return kv.nowMs
}
