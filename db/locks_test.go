package db_test

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// lockDB applies commands at increasing instances, at a log time the test
// sets.
type lockDB struct {
	t    *testing.T
	kv   *db.KV
	inst uint64
	ms   int64
}

func newLockDB(t *testing.T) *lockDB { return &lockDB{t: t, kv: db.New(), ms: 1_000_000} }

func (l *lockDB) apply(op *messages.MultiOp) (*messages.MultiOpResult, error) {
	l.t.Helper()
	l.inst++
	l.kv.ObserveTime(l.ms)
	out, err := l.kv.Apply(l.inst, encode(l.t, op))
	return decodeResult(l.t, out), err
}

func (l *lockDB) must(op *messages.MultiOp) *messages.OpResult {
	l.t.Helper()
	res, err := l.apply(op)
	if err != nil || len(res.Results) == 0 {
		l.t.Fatalf("apply %v: %v %v", op, res, err)
	}
	return res.Results[0]
}

func (l *lockDB) open() uint64 {
	l.t.Helper()
	r := l.must(db.OpenSession(10 * time.Second))
	if !r.Found || r.Session == 0 {
		l.t.Fatalf("open: %v", r)
	}
	return r.Session
}

// Issue 16, item 3: one exclusive holder; waiters served in order; a
// sequencer holds only while its acquisition does; shared holders
// together.
func TestLocksExclusiveSharedAndInOrder(t *testing.T) {
	l := newLockDB(t)
	a, b, c := l.open(), l.open(), l.open()
	name := []byte("lpk-lock")
	ra := l.must(db.Lock(a, name, false, true))
	if !ra.Found || ra.Sequencer.GetInstance() != l.inst {
		t.Fatalf("a's acquisition: %v", ra)
	}
	if r := l.must(db.Lock(b, name, false, false)); r.Found || r.Queued {
		t.Fatalf("b without waiting: %v", r)
	}
	if r := l.must(db.Lock(b, name, false, true)); r.Found || !r.Queued {
		t.Fatalf("b waiting: %v", r)
	}
	if r := l.must(db.Lock(c, name, true, true)); r.Found || !r.Queued {
		t.Fatalf("c waiting: %v", r)
	}
	guard := func(seq *messages.Sequencer) bool {
		res, err := l.apply(&messages.MultiOp{Guard: []*messages.Test{db.SequencerHolds(seq)},
			TOp: []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: []byte("guarded"), Value: []byte("v")}}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Succeeded
	}
	if !guard(ra.Sequencer) {
		t.Fatal("the holder's sequencer was refused")
	}
	if again := l.must(db.Lock(a, name, false, true)); !proto.Equal(again.Sequencer, ra.Sequencer) {
		t.Fatalf("acquiring again: %v, want the same sequencer", again)
	}
	if r := l.must(db.Unlock(a, name)); !r.Found {
		t.Fatal("a's unlock found nothing")
	}
	if guard(ra.Sequencer) {
		t.Fatal("a released, yet its sequencer was accepted")
	}
	hs := l.kv.Holders(name)
	if len(hs) != 1 || hs[0].Session != b || hs[0].Shared {
		t.Fatalf("after a's release: holders %v, want b (first in line)", hs)
	}
	rb := l.must(db.Lock(b, name, false, true))
	if !rb.Found || rb.Sequencer.Instance == ra.Sequencer.Instance {
		t.Fatalf("b's acquisition %v", rb)
	}
	info := l.must(db.LockInfo(name))
	if len(info.Lock.Waiters) != 1 || info.Lock.Waiters[0].Session != c {
		t.Fatalf("lock info %v", info.Lock)
	}
	// b closes its session: c (shared) gets it, and another shared one
	// joins; an exclusive one must wait.
	l.must(db.CloseSession(b))
	d := l.open()
	if r := l.must(db.Lock(d, name, true, false)); !r.Found {
		t.Fatalf("a second shared holder: %v", r)
	}
	if r := l.must(db.Lock(a, name, false, false)); r.Found {
		t.Fatal("an exclusive acquisition beside shared holders")
	}
	if hs := l.kv.Holders(name); len(hs) != 2 {
		t.Fatalf("shared holders %v", hs)
	}
}

// Lock-delay: a holder whose session expires leaves the lock free of
// holders for its lock-delay; a clean release or close does not.
func TestLockDelayAfterExpiry(t *testing.T) {
	l := newLockDB(t)
	a, b := l.open(), l.open()
	name := []byte("lpk-lock")
	ra := l.must(db.Lock(a, name, false, false))
	if r := l.must(db.Lock(b, name, false, true)); !r.Queued {
		t.Fatal("b did not queue")
	}
	if r := l.must(db.ExpireSession(a)); !r.Found {
		t.Fatal("expiry found no session")
	}
	if hs := l.kv.Holders(name); len(hs) != 0 {
		t.Fatalf("holders during lock-delay: %v", hs)
	}
	l.ms += int64(db.DefaultLockDelay/time.Millisecond) - 1
	if r := l.must(db.Lock(b, name, false, true)); r.Found {
		t.Fatal("acquired before the lock-delay ran out")
	}
	l.ms++
	rb := l.must(db.Lock(b, name, false, true))
	if !rb.Found || proto.Equal(rb.Sequencer, ra.Sequencer) {
		t.Fatalf("after the lock-delay: %v", rb)
	}
	// A clean close: no delay.
	c := l.open()
	l.must(db.CloseSession(b))
	if r := l.must(db.Lock(c, name, false, false)); !r.Found {
		t.Fatal("a lock released by a close is held up")
	}
	// An expired session's commands are refused, with the code that says so.
	_, err := l.apply(db.Lock(a, name, false, false))
	var coded interface{ ErrorCode() messages.ErrorCode }
	if !errors.Is(err, db.ErrNoSession) || !errors.As(err, &coded) || coded.ErrorCode() != messages.ErrorCode_ERROR_CODE_SESSION_EXPIRED {
		t.Fatalf("a dead session's lock: %v", err)
	}
}

// Issue 16, item 2: ephemeral keys go with their session; a plain put
// takes a key back from it.
func TestEphemeralKeys(t *testing.T) {
	l := newLockDB(t)
	s := l.open()
	eph := func(k string) *messages.MultiOp {
		return &messages.MultiOp{Session: s, TOp: []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: []byte(k), Value: []byte("v"), Ephemeral: true}}}
	}
	l.must(eph("lpk/a"))
	l.must(eph("lpk/b"))
	l.must(db.Put([]byte("lpk/b"), []byte("kept"))) // no longer ephemeral
	if g := l.must(db.Get([]byte("lpk/a"))); g.Owner != s {
		t.Fatalf("owner %d, want %d", g.Owner, s)
	}
	l.must(db.ExpireSession(s))
	if _, ok := l.kv.Read([]byte("lpk/a")); ok {
		t.Fatal("an ephemeral key outlived its session")
	}
	if v, ok := l.kv.Read([]byte("lpk/b")); !ok || string(v) != "kept" {
		t.Fatal("a key put plainly after was deleted with the session")
	}
	if _, err := l.kv.Apply(l.inst+1, encode(t, &messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: []byte("k"), Ephemeral: true}}})); !errors.Is(err, db.ErrInvalidOp) {
		t.Fatalf("an ephemeral put with no session: %v", err)
	}
}

// Issue 16, item 6: a session's write with a sequence number applies
// once; its retry returns the first result; acknowledged ones are
// refused; results survive a snapshot.
func TestExactlyOnceWrites(t *testing.T) {
	l := newLockDB(t)
	s := l.open()
	incr := func(seq, acked uint64) (*messages.MultiOpResult, error) {
		// A write whose result shows whether it ran: put if absent, else read.
		return l.apply(&messages.MultiOp{Session: s, Seq: seq, Acked: acked,
			Guard: []*messages.Test{{Kind: messages.Test_KIND_ABSENT, Key: []byte("once")}},
			TOp:   []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: []byte("once"), Value: []byte("1")}},
			FOp:   []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: []byte("once"), Value: []byte("2")}}})
	}
	first, err := incr(1, 0)
	if err != nil || !first.Succeeded {
		t.Fatal(first, err)
	}
	restored := copyBySnapshot(t, l.kv, db.New())
	if restored.Hash() != l.kv.Hash() {
		t.Fatal("a restored database differs")
	}
	l.kv = restored
	retry, err := incr(1, 0)
	if err != nil || !proto.Equal(retry, first) {
		t.Fatalf("retry = %v %v, want the first result %v", retry, err, first)
	}
	if v, _ := l.kv.Read([]byte("once")); string(v) != "1" {
		t.Fatalf("applied twice: %q", v)
	}
	second, err := incr(2, 1) // acknowledges 1
	if err != nil || second.Succeeded {
		t.Fatal(second, err)
	}
	if _, err := incr(1, 1); !errors.Is(err, db.ErrStaleSequence) {
		t.Fatalf("an acknowledged seq again: %v", err)
	}
}

func TestSequencerText(t *testing.T) {
	seq := &messages.Sequencer{Name: []byte("a:b"), Shared: true, Instance: 42}
	s := db.FormatSequencer(seq)
	back, err := db.ParseSequencer(s)
	if err != nil || !proto.Equal(back, seq) || s != "42:s:a:b" {
		t.Fatalf("%q -> %v %v", s, back, err)
	}
	for _, bad := range []string{"", "0:x:a", "1:y:a", "1:x:", "x:x:a"} {
		if _, err := db.ParseSequencer(bad); err == nil {
			t.Errorf("ParseSequencer(%q) = nil error", bad)
		}
	}
}

// No client ends another's session: an expiry is the master's to propose.
func TestClientsCannotExpireSessions(t *testing.T) {
	var l db.Limits
	if err := l.ValidateClientEncoded(encode(t, db.ExpireSession(7))); !errors.Is(err, db.ErrInvalidOp) {
		t.Fatalf("a client's expiry: %v", err)
	}
	if err := l.ValidateEncoded(encode(t, db.ExpireSession(7))); err != nil {
		t.Fatalf("the master's expiry: %v", err)
	}
	if err := l.ValidateClientEncoded(encode(t, db.Lock(7, []byte("n"), false, true))); err != nil {
		t.Fatalf("a lock: %v", err)
	}
}
