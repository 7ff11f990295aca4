package db

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	sess "github.com/livepaxos/livepaxos/session"
)

// Sessions (Chubby §2.8, issue 16 items 1, 2 and 6), as replicated state:
// which sessions exist and their TTLs, the keys bound to each (ephemeral
// keys), and each one's last write results (exactly-once). When a session
// ends is the master's decision (package session): it proposes the
// expiry; here a session only ends when that, or its client's close,
// applies.

// Session limits and defaults.
const (
	MinSessionTTL      = 100 * time.Millisecond
	MaxSessionTTL      = time.Hour
	DefaultMaxSessions = 100000
	// DefaultMaxSessionResults bounds the writes of one session whose
	// results are kept for retries until the client acknowledges them: the
	// writes a client may have in flight at once.
	DefaultMaxSessionResults = 256
)

// Errors of commands acting for a session. They are deterministic
// refusals (every replica refuses alike) and change nothing; each names
// the ErrorCode a client sees.
var (
	ErrNoSession = codedError{errors.New("db: no such session (it ended)"),
		messages.ErrorCode_ERROR_CODE_SESSION_EXPIRED}
	ErrStaleSequence = codedError{errors.New("db: sequence number already acknowledged"),
		messages.ErrorCode_ERROR_CODE_INVALID}
	ErrTooManyInFlight = codedError{errors.New("db: too many unacknowledged writes in the session"),
		messages.ErrorCode_ERROR_CODE_OVERLOADED}
	ErrTooManySessions = codedError{errors.New("db: too many sessions"),
		messages.ErrorCode_ERROR_CODE_OVERLOADED}
)

// codedError is a sentinel that tells the replica which ErrorCode its
// client gets (core looks for an ErrorCode method).
type codedError struct {
	error
	code messages.ErrorCode
}

func (e codedError) ErrorCode() messages.ErrorCode { return e.code }
func (e codedError) Unwrap() error                 { return e.error }

// session is one live session.
type session struct {
	rec       *messages.SessionRecord // results kept sorted by seq
	ephemeral map[string]struct{}     // keys bound to it
	locks     map[string]struct{}     // locks it holds or waits for
}

// SessionEvent is a session's start or end, in log order, for the master's
// keeper of deadlines.
type SessionEvent = sess.Event

// SessionInfo is one live session: its id and TTL.
type SessionInfo = sess.Info

// Sessions returns the live sessions in id order.
func (kv *KV) Sessions() []SessionInfo {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	out := make([]SessionInfo, 0, len(kv.sessions))
	for _, id := range slices.Sorted(maps.Keys(kv.sessions)) {
		out = append(out, SessionInfo{ID: id, TTL: time.Duration(kv.sessions[id].rec.TtlMs) * time.Millisecond})
	}
	return out
}

// HasSession reports whether session id is live.
func (kv *KV) HasSession(id uint64) bool {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	_, ok := kv.sessions[id]
	return ok
}

// TakeSessionEvents returns the sessions opened and ended since the last
// call, in log order (call it on the goroutine that applies).
func (kv *KV) TakeSessionEvents() []SessionEvent {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	ev := kv.events
	kv.events = nil
	return ev
}

// ObserveTime sets the log's time, in Unix milliseconds, for the command
// applied next: the time its master took it (messages.Command.proposed_ms).
// Time in the state never goes back, even across masters whose clocks
// disagree.
func (kv *KV) ObserveTime(ms int64) {
	kv.mu.Lock()
	if ms > kv.nowMs {
		kv.nowMs = ms
	}
	kv.mu.Unlock()
}

// beginSession runs the session part of a MultiOp before its guard: the
// session must exist; a write with a sequence number it has seen returns
// that write's first result (done). Query (read-only) skips it.
func (kv *KV) beginSession(op *messages.MultiOp) (s *session, first *messages.MultiOpResult, err error) {
	if op.Session == 0 {
		return nil, nil, nil
	}
	s, ok := kv.sessions[op.Session]
	if !ok {
		return nil, nil, fmt.Errorf("%w: session %d", ErrNoSession, op.Session)
	}
	if op.Seq == 0 {
		return s, nil, nil
	}
	rec := s.rec
	i, found := slices.BinarySearchFunc(rec.Results, op.Seq, func(r *messages.SeqResult, seq uint64) int {
		return cmpUint(r.Seq, seq)
	})
	if found {
		res := &messages.MultiOpResult{}
		if err := proto.Unmarshal(rec.Results[i].Result, res); err != nil {
			panic(fmt.Sprintf("db: a kept result does not decode: %v", err))
		}
		return s, res, nil
	}
	if op.Seq <= rec.Acked {
		return nil, nil, fmt.Errorf("%w: seq %d, acknowledged up to %d", ErrStaleSequence, op.Seq, rec.Acked)
	}
	if len(rec.Results) >= kv.limits.MaxSessionResults {
		return nil, nil, fmt.Errorf("%w: %d", ErrTooManyInFlight, len(rec.Results))
	}
	return s, nil, nil
}

// endSessionWrite keeps a sequenced write's result and drops the ones
// its client acknowledged.
func (kv *KV) endSessionWrite(s *session, op *messages.MultiOp, res *messages.MultiOpResult) {
	if s == nil || op.Seq == 0 {
		return
	}
	if _, live := kv.sessions[op.Session]; !live {
		return // the MultiOp closed its own session
	}
	rec := s.rec
	if op.Acked > rec.Acked {
		rec.Acked = op.Acked
		n := 0
		for _, r := range rec.Results {
			if r.Seq > rec.Acked {
				rec.Results[n] = r
				n++
			}
		}
		clear(rec.Results[n:])
		rec.Results = rec.Results[:n]
	}
	if op.Seq <= rec.Acked {
		return // acknowledged in the same breath: nobody will ask again
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(res)
	if err != nil {
		panic(fmt.Sprintf("db: encoding MultiOpResult: %v", err))
	}
	i, _ := slices.BinarySearchFunc(rec.Results, op.Seq, func(r *messages.SeqResult, seq uint64) int {
		return cmpUint(r.Seq, seq)
	})
	rec.Results = slices.Insert(rec.Results, i, &messages.SeqResult{Seq: op.Seq, Result: b})
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// openSession runs a validated KIND_SESSION_OPEN.
func (kv *KV) openSession(o *messages.Op) *messages.OpResult {
	if len(kv.sessions) >= kv.limits.MaxSessions {
		return &messages.OpResult{} // found false: not opened
	}
	kv.nextSession++
	id := kv.nextSession
	kv.sessions[id] = &session{rec: &messages.SessionRecord{Id: id, TtlMs: o.TtlMs},
		ephemeral: map[string]struct{}{}, locks: map[string]struct{}{}}
	kv.events = append(kv.events, SessionEvent{ID: id, TTL: time.Duration(o.TtlMs) * time.Millisecond})
	return &messages.OpResult{Found: true, Session: id}
}

// endSession ends session id: its ephemeral keys are deleted, its locks
// released (expired: exclusive ones then stay free for their lock-delay)
// and its place in lock queues given up.
func (kv *KV) endSession(id uint64, expired bool) bool {
	s, ok := kv.sessions[id]
	if !ok {
		return false
	}
	for _, k := range slices.Sorted(maps.Keys(s.ephemeral)) {
		kv.del(k)
	}
	for _, name := range slices.Sorted(maps.Keys(s.locks)) {
		kv.release(name, id, expired)
	}
	delete(kv.sessions, id)
	kv.events = append(kv.events, SessionEvent{ID: id, Ended: true, Expired: expired})
	return true
}

// bind records that key's entry now belongs to owner (0: none), keeping
// the sessions' sets of ephemeral keys in step.
func (kv *KV) bind(key string, was, owner uint64) {
	if was == owner {
		return
	}
	if s, ok := kv.sessions[was]; ok {
		delete(s.ephemeral, key)
	}
	if s, ok := kv.sessions[owner]; ok {
		s.ephemeral[key] = struct{}{}
	}
}

// LiveSessions is Sessions, for the replica's keeper (core.SessionStore).
func (kv *KV) LiveSessions() []sess.Info { return kv.Sessions() }

// ExpireCommand is the encoded MultiOp that expires session id.
func (kv *KV) ExpireCommand(id uint64) []byte {
	b, err := proto.Marshal(ExpireSession(id))
	if err != nil {
		panic(fmt.Sprintf("db: encoding an expiry: %v", err))
	}
	return b
}
