package db_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// limitsLog is a log that raises and lowers the group's value limit
// between puts of every size around it.
func limitsLog(t *testing.T) [][]byte {
	t.Helper()
	put := func(k string, n int) []byte { return encode(t, db.Put([]byte(k), bytes.Repeat([]byte("v"), n))) }
	return [][]byte{
		put("a", 100),                     // 1: no group limit yet
		put("b", db.MaxValueBytesCeiling), // 2
		encode(t, db.SetLimits(50)),       // 3
		put("c", 60),                      // 4: refused by every replica
		put("d", 50),                      // 5
		encode(t, db.CompareAndSwap([]byte("a"), bytes.Repeat([]byte("v"), 100), nil)), // 6: a test value over the limit: refused
		encode(t, db.SetLimits(200)), // 7
		put("c", 150),                // 8
		put("e", 201),                // 9: refused
	}
}

// Issue 15 item 5: replicas whose nodes were configured with different
// value limits (or one restarted with another) apply the same log the same
// way: Apply goes by the group's limit, chosen through the log, never by
// the node's own. With the node's limit at Apply, the first replica here
// refuses the put at instance 1 that the others apply, and they split.
func TestReplicasWithDifferentLocalLimitsApplyTheLogAlike(t *testing.T) {
	log := limitsLog(t)
	refused := map[uint64]bool{4: true, 6: true, 9: true}
	replicas := []*db.KV{db.NewWithLimits(db.Limits{MaxValueBytes: 10}), db.New(),
		db.NewWithLimits(db.Limits{MaxValueBytes: 1000}), db.NewWithLimits(db.Limits{MaxValueBytes: 10})}
	for i, kv := range replicas {
		for j, cmd := range log {
			inst := uint64(j + 1)
			var err error
			if i == len(replicas)-1 {
				err = kv.ApplyQuiet(inst, cmd) // as a follower applies, or a replay
			} else {
				_, err = kv.Apply(inst, cmd)
			}
			if refused[inst] != (err != nil) || err != nil && !errors.Is(err, db.ErrValueTooLarge) {
				t.Fatalf("replica %d, instance %d: err = %v, want refused %v (value too large)", i, inst, err, refused[inst])
			}
		}
	}
	for i, kv := range replicas[1:] {
		if kv.Hash() != replicas[0].Hash() {
			t.Fatalf("replica %d holds other state than replica 0 after the same log", i+1)
		}
		if g := kv.GroupLimits(); g != (db.GroupLimits{MaxValueBytes: 200, Instance: 7}) {
			t.Fatalf("replica %d: group limits %+v, want 200 set at instance 7", i+1, g)
		}
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		if _, ok := replicas[0].Read([]byte(k)); !ok {
			t.Fatalf("key %s missing", k)
		}
	}
	if _, ok := replicas[0].Read([]byte("e")); ok {
		t.Fatal("key e stored over the limit")
	}
}

// A refusal at Apply carries TOO_LARGE for the client, as the door's does
// (client.ErrValueTooLarge, the CLI's exit code for it).
func TestApplyRefusalOverTheGroupLimitIsTooLarge(t *testing.T) {
	kv := db.NewWithLimits(db.Limits{MaxValueBytes: 1000})
	if _, err := kv.Apply(1, encode(t, db.SetLimits(4))); err != nil {
		t.Fatal(err)
	}
	_, err := kv.Apply(2, encode(t, db.Put([]byte("k"), []byte("12345"))))
	var coded interface{ ErrorCode() messages.ErrorCode }
	if !errors.Is(err, db.ErrValueTooLarge) || !errors.As(err, &coded) || coded.ErrorCode() != messages.ErrorCode_ERROR_CODE_TOO_LARGE {
		t.Fatalf("err = %v, want value too large with code TOO_LARGE", err)
	}
	if kv.Len() != 0 {
		t.Fatal("refused put stored")
	}
}

// The door check (Limits) is the node's own limit until the log sets the
// group's, then the group's whatever the node's.
func TestDoorLimitIsTheGroupsOnceSet(t *testing.T) {
	kv := db.NewWithLimits(db.Limits{MaxValueBytes: 10})
	if got := kv.Limits().MaxValueBytes; got != 10 {
		t.Fatalf("door limit %d before the log set one, want the node's 10", got)
	}
	if _, err := kv.Apply(1, encode(t, db.SetLimits(300))); err != nil {
		t.Fatal(err)
	}
	if got := kv.Limits().MaxValueBytes; got != 300 {
		t.Fatalf("door limit %d, want the group's 300", got)
	}
	if got := db.NewWithLimits(db.Limits{MaxValueBytes: 1 << 30}).Limits().MaxValueBytes; got != db.MaxValueBytesCeiling {
		t.Fatalf("a node limit over the ceiling is taken as %d, want the ceiling", got)
	}
}

func TestSetLimitsValidation(t *testing.T) {
	var l db.Limits
	one := func(o *messages.Op) *messages.MultiOp { return &messages.MultiOp{TOp: []*messages.Op{o}} }
	for _, c := range []struct {
		name string
		op   *messages.MultiOp
		ok   bool
	}{
		{"valid", db.SetLimits(1), true},
		{"at the ceiling", db.SetLimits(db.MaxValueBytesCeiling), true},
		{"zero", db.SetLimits(0), false},
		{"over the ceiling", db.SetLimits(db.MaxValueBytesCeiling + 1), false},
		{"with a key", one(&messages.Op{Kind: messages.Op_KIND_SET_LIMITS, Key: []byte("k"), MaxValueBytes: 5}), false},
		{"with a prefix", one(&messages.Op{Kind: messages.Op_KIND_SET_LIMITS, Prefix: true, MaxValueBytes: 5}), false},
		{"not alone", &messages.MultiOp{TOp: []*messages.Op{db.SetLimits(5).TOp[0], {Kind: messages.Op_KIND_GET, Key: []byte("k")}}}, false},
		{"guarded", &messages.MultiOp{Guard: []*messages.Test{{Kind: messages.Test_KIND_PRESENT, Key: []byte("k")}}, TOp: db.SetLimits(5).TOp}, false},
		{"max_value_bytes on a put", one(&messages.Op{Kind: messages.Op_KIND_PUT, Key: []byte("k"), MaxValueBytes: 5}), false},
	} {
		err := l.Validate(c.op)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, db.ErrInvalidOp) {
			t.Errorf("%s: Validate = %v, want ok %v", c.name, err, c.ok)
		}
		if err := l.ValidateEncoded(encode(t, c.op)); (err == nil) != c.ok {
			t.Errorf("%s: ValidateEncoded = %v, want ok %v", c.name, err, c.ok)
		}
	}
	// A client may not change the group's limits with a Txn.
	for _, err := range []error{l.ValidateClient(db.SetLimits(5)), l.ValidateClientEncoded(encode(t, db.SetLimits(5)))} {
		if !errors.Is(err, db.ErrAdminOp) || !errors.Is(err, db.ErrInvalidOp) {
			t.Fatalf("client's limits change: %v, want an operator's op refused", err)
		}
	}
}

// The group's limit lives in snapshots: a replica restored from one (its
// node configured otherwise) applies what follows as the others do, and
// a value stored before the limit was lowered comes back with it.
func TestSnapshotKeepsTheGroupLimit(t *testing.T) {
	src := db.New()
	for i, cmd := range [][]byte{
		encode(t, db.Put([]byte("big"), bytes.Repeat([]byte("v"), 500))),
		encode(t, db.SetLimits(20)),
	} {
		if _, err := src.Apply(uint64(i+1), cmd); err != nil {
			t.Fatal(err)
		}
	}
	dst := copyBySnapshot(t, src, db.NewWithLimits(db.Limits{MaxValueBytes: 1000}))
	if g := dst.GroupLimits(); g != (db.GroupLimits{MaxValueBytes: 20, Instance: 2}) || dst.Hash() != src.Hash() {
		t.Fatalf("restored group limits %+v (want 20 at 2), same hash %v", g, dst.Hash() == src.Hash())
	}
	next := encode(t, db.Put([]byte("k"), bytes.Repeat([]byte("v"), 21)))
	for _, kv := range []*db.KV{src, dst} {
		if _, err := kv.Apply(3, next); !errors.Is(err, db.ErrValueTooLarge) {
			t.Fatalf("a 21-byte put after the restore: %v, want refused by the group's limit 20", err)
		}
	}
}

// A snapshot whose group limit is out of bounds is refused, and changes
// nothing.
func TestRestoreRefusesABadGroupLimit(t *testing.T) {
	for _, st := range []*messages.LockServiceState{
		{MaxValueBytes: db.MaxValueBytesCeiling + 1, LimitsInstance: 1},
		{MaxValueBytes: 5},
		{LimitsInstance: 1},
		{MaxValueBytes: 5, LimitsInstance: 9}, // after the snapshot's instance
	} {
		kv := db.New()
		if err := kv.Restore(bytes.NewReader(snapshotWithLockState(t, 3, encode(t, st)))); !errors.Is(err, db.ErrMalformed) {
			t.Errorf("%v: Restore = %v, want malformed", st, err)
		}
		if kv.GroupLimits().Set() || kv.LastApplied() != 0 {
			t.Errorf("%v: a refused Restore changed the database", st)
		}
	}
}

// snapshotWithLockState is an empty database's snapshot at instance last
// with the given lock-service state.
func snapshotWithLockState(t *testing.T, last uint64, st []byte) []byte {
	t.Helper()
	b := []byte("LPKV0003")
	b = fmt.Appendf(b, "%s", []byte{0, 0, 0, 0, 0, 0, 0, byte(last), 0, 0, 0, 0, 0, 0, 0, 0})
	b = append(b, 0, byte(len(st)))
	return append(b, st...)
}
