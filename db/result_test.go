package db_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// Issue 15 item 4: a MultiOp's result is bounded.

// big is a value at the ceiling: the largest a key can hold.
var big = bytes.Repeat([]byte("v"), db.MaxValueBytesCeiling)

// bigKeys applies, from instance 1 on, one put of a ceiling-sized value
// per key, and returns the next instance.
func bigKeys(t *testing.T, kv *db.KV, keys ...string) uint64 {
	t.Helper()
	for i, k := range keys {
		if _, err := kv.Apply(uint64(i+1), encode(t, db.Put([]byte(k), big))); err != nil {
			t.Fatal(err)
		}
	}
	return uint64(len(keys) + 1)
}

// gets is a MultiOp of a GET per key after ops.
func gets(ops []*messages.Op, keys ...string) *messages.MultiOp {
	for _, k := range keys {
		ops = append(ops, &messages.Op{Kind: messages.Op_KIND_GET, Key: []byte(k)})
	}
	return &messages.MultiOp{TOp: ops}
}

// Once the group set a result limit, a MultiOp whose GETs would answer
// more is refused as a whole, by Apply and by ApplyQuiet alike (a
// follower, a replay): its put is not applied anywhere, and the client
// learns why (RESULT_TOO_LARGE). Without the bound, both replicas apply
// the put and Apply answers 2 MiB.
func TestGroupResultLimitRefusesTheWholeMultiOp(t *testing.T) {
	replicas := []*db.KV{db.New(), db.New()}
	var next uint64
	for _, kv := range replicas {
		next = bigKeys(t, kv, "a", "b")
	}
	setLimit := encode(t, db.SetGroupLimits(0, db.MinResultBytes))
	over := encode(t, gets([]*messages.Op{{Kind: messages.Op_KIND_PUT, Key: []byte("w"), Value: []byte("x")}}, "a", "b"))
	for i, kv := range replicas {
		if _, err := kv.Apply(next, setLimit); err != nil {
			t.Fatal(err)
		}
		if g := kv.GroupLimits(); g != (db.GroupLimits{MaxResultBytes: db.MinResultBytes, ResultInstance: next}) {
			t.Fatalf("group limits %+v, want the result limit alone, set at %d", g, next)
		}
		var err error
		if i == 0 {
			var out []byte
			out, err = kv.Apply(next+1, over)
			if res := decodeResult(t, out); len(res.Results) != 0 {
				t.Fatalf("a refused MultiOp answered %d results", len(res.Results))
			}
		} else {
			err = kv.ApplyQuiet(next+1, over)
		}
		var coded interface{ ErrorCode() messages.ErrorCode }
		if !errors.Is(err, db.ErrResultTooLarge) || !errors.As(err, &coded) || coded.ErrorCode() != messages.ErrorCode_ERROR_CODE_RESULT_TOO_LARGE {
			t.Fatalf("replica %d: err = %v, want result too large (RESULT_TOO_LARGE)", i, err)
		}
		if _, ok := kv.Read([]byte("w")); ok {
			t.Fatalf("replica %d: the refused MultiOp's put was applied", i)
		}
	}
	if replicas[0].Hash() != replicas[1].Hash() {
		t.Fatal("Apply and ApplyQuiet left different states")
	}
	// One GET of the largest value always fits (MinResultBytes), and a
	// GET counts what the MultiOp's own earlier put leaves: here nothing.
	fits := gets([]*messages.Op{{Kind: messages.Op_KIND_DELETE, Key: []byte("b")}}, "a", "b")
	out, err := replicas[0].Apply(next+2, encode(t, fits))
	if err != nil {
		t.Fatal(err)
	}
	if res := decodeResult(t, out); len(res.Results) != 3 || !bytes.Equal(res.Results[1].Value, big) || res.Results[2].Found {
		t.Fatalf("result %v, want a's value and b deleted", res.Results)
	}
	// A put of a large value followed by its GET counts the put's value.
	putThenGet := gets([]*messages.Op{{Kind: messages.Op_KIND_PUT, Key: []byte("c"), Value: big}}, "a", "c")
	if _, err := replicas[0].Apply(next+3, encode(t, putThenGet)); !errors.Is(err, db.ErrResultTooLarge) {
		t.Fatalf("a put then two large gets: %v, want result too large", err)
	}
}

// While the group set no result limit, Apply bounds nothing, as before
// the limit existed: an old log replays the same. The reads a node serves
// outside the log (Query) and its door (CheckResult) are bounded by the
// default all the same.
func TestNoGroupResultLimitKeepsApplyUnbounded(t *testing.T) {
	keys := make([]string, db.DefaultMaxResultBytes/db.MaxValueBytesCeiling+1)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	kv := db.New()
	next := bigKeys(t, kv, keys...)
	op := gets(nil, keys...)
	out, err := kv.Apply(next, encode(t, op))
	if err != nil {
		t.Fatalf("Apply of %d large gets with no group limit: %v", len(keys), err)
	}
	if res := decodeResult(t, out); len(res.Results) != len(keys) {
		t.Fatalf("%d results, want %d", len(res.Results), len(keys))
	}
	if _, err := kv.Query(encode(t, op)); !errors.Is(err, db.ErrResultTooLarge) {
		t.Fatalf("Query of %d large gets: %v, want result too large (the default bound)", len(keys), err)
	}
	if err := kv.CheckResult(op); !errors.Is(err, db.ErrResultTooLarge) {
		t.Fatalf("door check of %d large gets: %v, want result too large", len(keys), err)
	}
	if _, err := kv.Query(encode(t, gets(nil, keys[1:]...))); err != nil {
		t.Fatalf("Query of %d large gets, at the default bound: %v", len(keys)-1, err)
	}
}

// The door check judges by the node's state: GETs of absent or small keys
// pass whatever their number, and either list (t_op or f_op) over the
// limit is refused, since either may run. Once the group set a limit, the
// door goes by it.
func TestDoorCheckOfTheResult(t *testing.T) {
	kv := db.New()
	var many []string
	for i := range db.DefaultMaxOps {
		many = append(many, fmt.Sprint("absent", i))
	}
	if err := kv.CheckResult(gets(nil, many...)); err != nil {
		t.Fatalf("%d gets of absent keys: %v", len(many), err)
	}
	next := bigKeys(t, kv, "a", "b")
	f := gets(nil, "a", "b")
	op := &messages.MultiOp{Guard: []*messages.Test{{Kind: messages.Test_KIND_PRESENT, Key: []byte("a")}}, FOp: f.TOp}
	if err := kv.CheckResult(op); err != nil {
		t.Fatalf("2 MiB in f_op under the default bound: %v", err)
	}
	if _, err := kv.Apply(next, encode(t, db.SetGroupLimits(0, db.MinResultBytes))); err != nil {
		t.Fatal(err)
	}
	if err := kv.CheckResult(op); !errors.Is(err, db.ErrResultTooLarge) {
		t.Fatalf("2 MiB in f_op over the group's limit: %v, want result too large", err)
	}
	// The proposer's check of the encoded command says the same.
	if err := kv.CheckResultEncoded(encode(t, op)); !errors.Is(err, db.ErrResultTooLarge) {
		t.Fatalf("encoded: 2 MiB in f_op over the group's limit: %v, want result too large", err)
	}
	if err := kv.CheckResultEncoded(encode(t, gets(nil, "a"))); err != nil {
		t.Fatalf("encoded: one large get: %v", err)
	}
	if err := kv.CheckResult(gets(nil, "a")); err != nil {
		t.Fatalf("one large get: %v", err)
	}
}

// Under the group's result limit a MultiOp's ranges get what its GETs
// leave: the page stops there (more, next_key) instead of refusing, and
// the whole result stays within the limit. Without the limit the range
// would return up to MaxRangeBytes.
func TestRangesStopAtTheResultLimit(t *testing.T) {
	kv := db.New()
	next := bigKeys(t, kv, "a")
	value := bytes.Repeat([]byte("r"), 40<<10)
	for i := range 10 {
		if _, err := kv.Apply(next, encode(t, db.Put(fmt.Appendf(nil, "r%d", i), value))); err != nil {
			t.Fatal(err)
		}
		next++
	}
	if _, err := kv.Apply(next, encode(t, db.SetGroupLimits(0, db.MinResultBytes))); err != nil {
		t.Fatal(err)
	}
	op := gets([]*messages.Op{{Kind: messages.Op_KIND_RANGE, Key: []byte("r"), Prefix: true}}, "a")
	out, err := kv.Apply(next+1, encode(t, op))
	if err != nil {
		t.Fatal(err)
	}
	res := decodeResult(t, out)
	page := res.Results[0]
	if len(page.Kvs) != 1 || !page.More || string(page.NextKey) != "r1" {
		t.Fatalf("range page of %d keys (more %v, next %q), want 1 key then r1", len(page.Kvs), page.More, page.NextKey)
	}
	n := len(res.Results[1].Value)
	for _, e := range page.Kvs {
		n += len(e.Key) + len(e.Value)
	}
	if n > db.MinResultBytes {
		t.Fatalf("result bytes %d over the limit %d", n, db.MinResultBytes)
	}
	// Alone, the range gets the whole limit.
	out, err = kv.Apply(next+2, encode(t, &messages.MultiOp{TOp: op.TOp[:1]}))
	if err != nil {
		t.Fatal(err)
	}
	if page := decodeResult(t, out).Results[0]; len(page.Kvs) != 10 || page.More {
		t.Fatalf("a range alone: %d keys (more %v), want all 10", len(page.Kvs), page.More)
	}
}

func TestSetResultLimitValidation(t *testing.T) {
	var l db.Limits
	for _, c := range []struct {
		name string
		op   *messages.MultiOp
		ok   bool
	}{
		{"result alone", db.SetGroupLimits(0, db.MinResultBytes), true},
		{"both", db.SetGroupLimits(5, db.MaxResultBytesCeiling), true},
		{"neither", db.SetGroupLimits(0, 0), false},
		{"under the minimum", db.SetGroupLimits(0, db.MinResultBytes-1), false},
		{"over the ceiling", db.SetGroupLimits(0, db.MaxResultBytesCeiling+1), false},
		{"max_result_bytes on a get", &messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_GET, Key: []byte("k"), MaxResultBytes: db.MinResultBytes}}}, false},
	} {
		if err := l.Validate(c.op); (err == nil) != c.ok || err != nil && !errors.Is(err, db.ErrInvalidOp) {
			t.Errorf("%s: Validate = %v, want ok %v", c.name, err, c.ok)
		}
	}
}

// The result limit lives in snapshots and checksums beside the value
// limit, each with the instance that set it; a change of one leaves the
// other.
func TestSnapshotKeepsTheResultLimit(t *testing.T) {
	src := db.New()
	for i, cmd := range [][]byte{
		encode(t, db.SetLimits(20)),
		encode(t, db.SetGroupLimits(0, db.MinResultBytes)),
	} {
		if _, err := src.Apply(uint64(i+1), cmd); err != nil {
			t.Fatal(err)
		}
	}
	want := db.GroupLimits{MaxValueBytes: 20, Instance: 1, MaxResultBytes: db.MinResultBytes, ResultInstance: 2}
	dst := copyBySnapshot(t, src, db.New())
	if g := dst.GroupLimits(); g != want || dst.Hash() != src.Hash() {
		t.Fatalf("restored group limits %+v (want %+v), same hash %v", g, want, dst.Hash() == src.Hash())
	}
	if db.New().Hash() == func() *db.KV {
		kv := db.New()
		if _, err := kv.Apply(1, encode(t, db.SetGroupLimits(0, db.MinResultBytes))); err != nil {
			t.Fatal(err)
		}
		return kv
	}().Hash() {
		t.Fatal("the checksum does not cover the result limit")
	}
	for _, st := range []*messages.LockServiceState{
		{MaxResultBytes: db.MinResultBytes - 1, ResultLimitInstance: 1},
		{MaxResultBytes: db.MaxResultBytesCeiling + 1, ResultLimitInstance: 1},
		{MaxResultBytes: db.MinResultBytes},
		{ResultLimitInstance: 1},
		{MaxResultBytes: db.MinResultBytes, ResultLimitInstance: 9}, // after the snapshot's instance
	} {
		kv := db.New()
		if err := kv.Restore(bytes.NewReader(snapshotWithLockState(t, 3, encode(t, st)))); !errors.Is(err, db.ErrMalformed) {
			t.Errorf("%v: Restore = %v, want malformed", st, err)
		}
		if kv.GroupLimits().ResultSet() || kv.LastApplied() != 0 {
			t.Errorf("%v: a refused Restore changed the database", st)
		}
	}
}
