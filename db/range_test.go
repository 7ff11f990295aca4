package db_test

import (
	"bytes"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// applyAt applies op at instance and returns its result.
func applyAt(t *testing.T, kv *db.KV, instance uint64, op *messages.MultiOp) *messages.MultiOpResult {
	t.Helper()
	out, err := kv.Apply(instance, encode(t, op))
	if err != nil {
		t.Fatalf("Apply at %d: %v", instance, err)
	}
	return decodeResult(t, out)
}

// rangeOf runs a read-only range op through Query, as a lease read would.
func rangeOf(t *testing.T, kv *db.KV, op *messages.MultiOp) *messages.OpResult {
	t.Helper()
	out, err := kv.Query(encode(t, op))
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	res := decodeResult(t, out)
	if len(res.Results) != 1 {
		t.Fatalf("%d results", len(res.Results))
	}
	return res.Results[0]
}

func keysOf(r *messages.OpResult) string {
	var b bytes.Buffer
	for _, kv := range r.Kvs {
		b.WriteString(string(kv.Key) + " ")
	}
	return b.String()
}

// Issue 16, item 5: keys in order, bounded by a count with a continuation,
// under a prefix or up to an end.
func TestRangeInOrderWithContinuation(t *testing.T) {
	kv := db.New()
	for i, k := range []string{"b/2", "a", "b/1", "b/3", "b0", "c", "b/"} {
		applyAt(t, kv, uint64(i+1), db.Put([]byte(k), []byte("v"+k)))
	}
	if got := keysOf(rangeOf(t, kv, db.Prefix([]byte("b/"), 0))); got != "b/ b/1 b/2 b/3 " {
		t.Fatalf("prefix b/ = %q", got)
	}
	if got := keysOf(rangeOf(t, kv, db.Range([]byte("a"), []byte("b/2"), 0))); got != "a b/ b/1 " {
		t.Fatalf("[a, b/2) = %q", got)
	}
	if got := keysOf(rangeOf(t, kv, db.Prefix(nil, 0))); got != "a b/ b/1 b/2 b/3 b0 c " {
		t.Fatalf("everything = %q", got)
	}
	// Pages of two, each continuing at the page's next key.
	var all string
	from := []byte("b/")
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("paging does not end")
		}
		op := &messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_RANGE, Key: from, RangeEnd: db.PrefixEnd([]byte("b/")), Limit: 2}}}
		r := rangeOf(t, kv, op)
		all += keysOf(r)
		if !r.More {
			break
		}
		if len(r.Kvs) != 2 {
			t.Fatalf("a page cut short has %d keys", len(r.Kvs))
		}
		from = r.NextKey
	}
	if all != "b/ b/1 b/2 b/3 " {
		t.Fatalf("pages = %q", all)
	}
}

// The byte limit cuts a page, yet the first key always comes (paging makes
// progress), and several ranges of one MultiOp share one page's budget.
func TestRangeByteLimit(t *testing.T) {
	kv := db.NewWithLimits(db.Limits{MaxRangeBytes: 25})
	for i := range 5 {
		applyAt(t, kv, uint64(i+1), db.Put([]byte(fmt.Sprintf("k%d", i)), bytes.Repeat([]byte("x"), 8)))
	}
	r := rangeOf(t, kv, db.Prefix([]byte("k"), 0))
	if keysOf(r) != "k0 k1 " || !r.More || string(r.NextKey) != "k2" {
		t.Fatalf("25-byte page = %q more %v next %q", keysOf(r), r.More, r.NextKey)
	}
	op := &messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_RANGE, Key: []byte("k"), Prefix: true, LimitBytes: 1}}}
	if r := rangeOf(t, kv, op); keysOf(r) != "k0 " || !r.More {
		t.Fatalf("1-byte page = %q: the first key must come", keysOf(r))
	}
	two := &messages.MultiOp{TOp: []*messages.Op{
		{Kind: messages.Op_KIND_RANGE, Key: []byte("k"), Prefix: true},
		{Kind: messages.Op_KIND_RANGE, Key: []byte("k"), Prefix: true},
	}}
	out, err := kv.Query(encode(t, two))
	if err != nil {
		t.Fatal(err)
	}
	res := decodeResult(t, out)
	if a, b := keysOf(res.Results[0]), keysOf(res.Results[1]); a != "k0 k1 " || b != "" || !res.Results[1].More {
		t.Fatalf("two ranges returned %q and %q: more than one page", a, b)
	}
}

// Per key: the instance that created it, the instance of its last put and
// a version; each is a guard test, so a compare-and-swap on them has no
// ABA (the same value written back is a new version).
func TestKeyMetadataAndGuards(t *testing.T) {
	kv := db.New()
	k := []byte("k")
	applyAt(t, kv, 3, db.Put(k, []byte("a")))
	applyAt(t, kv, 5, db.Put(k, []byte("b")))
	applyAt(t, kv, 9, db.Put(k, []byte("a")))
	g := applyAt(t, kv, 10, db.Get(k)).Results[0]
	if g.CreateInstance != 3 || g.ModInstance != 9 || g.Version != 3 {
		t.Fatalf("get = create %d mod %d version %d, want 3 9 3", g.CreateInstance, g.ModInstance, g.Version)
	}
	r := rangeOf(t, kv, db.Prefix(k, 0)).Kvs[0]
	if r.CreateInstance != 3 || r.ModInstance != 9 || r.Version != 3 {
		t.Fatalf("range = %v", r)
	}
	guarded := func(test *messages.Test) bool {
		op := &messages.MultiOp{Guard: []*messages.Test{test}, TOp: []*messages.Op{{Kind: messages.Op_KIND_GET, Key: k}}}
		return rangeOfGuard(t, kv, op)
	}
	for _, c := range []struct {
		test *messages.Test
		want bool
	}{
		{db.CreateInstanceIs(k, 3), true}, {db.CreateInstanceIs(k, 9), false},
		{db.ModInstanceIs(k, 9), true}, {db.ModInstanceIs(k, 3), false},
		{db.VersionIs(k, 3), true}, {db.VersionIs(k, 1), false},
		{db.VersionIs([]byte("absent"), 1), false},
	} {
		if got := guarded(c.test); got != c.want {
			t.Errorf("guard %v = %v, want %v", c.test, got, c.want)
		}
	}
	// Deleted and created again: a new creation, version 1 again.
	applyAt(t, kv, 11, db.Delete(k))
	applyAt(t, kv, 12, db.Put(k, []byte("a")))
	if guarded(db.CreateInstanceIs(k, 3)) || !guarded(db.CreateInstanceIs(k, 12)) || !guarded(db.VersionIs(k, 1)) {
		t.Fatal("a key created again kept its old metadata")
	}
}

func rangeOfGuard(t *testing.T, kv *db.KV, op *messages.MultiOp) bool {
	t.Helper()
	out, err := kv.Query(encode(t, op))
	if err != nil {
		t.Fatal(err)
	}
	return decodeResult(t, out).Succeeded
}

// A snapshot carries the metadata and the order: a replica restored from
// it answers ranges and guards exactly as the original.
func TestRangeAfterRestore(t *testing.T) {
	kv := db.New()
	for i := range 20 {
		applyAt(t, kv, uint64(i+1), db.Put([]byte(fmt.Sprintf("k%02d", 19-i)), []byte{byte(i)}))
	}
	_, write, err := kv.BeginSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	applyAt(t, kv, 30, db.Delete([]byte("k05"))) // during the snapshot: ranges see it
	if got := keysOf(rangeOf(t, kv, db.Range([]byte("k04"), []byte("k07"), 0))); got != "k04 k06 " {
		t.Fatalf("range during a snapshot = %q", got)
	}
	restored := restoreInto(t, db.New(), writeSnapshot(t, write))
	a, b := rangeOf(t, restored, db.Prefix(nil, 0)), rangeOf(t, kv, db.Prefix(nil, 0))
	b.Kvs = append(b.Kvs[:5:5], append([]*messages.KeyValue{{Key: []byte("k05"), Value: []byte{14}, CreateInstance: 15, ModInstance: 15, Version: 1}}, b.Kvs[5:]...)...)
	if !proto.Equal(a, b) {
		t.Fatalf("restored range differs:\n%v\n%v", a, b)
	}
}

func TestValidateRange(t *testing.T) {
	var l db.Limits
	for _, bad := range []*messages.Op{
		{Kind: messages.Op_KIND_RANGE, Key: []byte("b"), RangeEnd: []byte("a")},
		{Kind: messages.Op_KIND_RANGE, Key: []byte("a"), RangeEnd: []byte("b"), Prefix: true},
		{Kind: messages.Op_KIND_RANGE, Key: []byte("a"), Value: []byte("v")},
		{Kind: messages.Op_KIND_GET, Key: []byte("a"), Limit: 3},
		{Kind: messages.Op_KIND_PUT, Key: []byte("a"), Prefix: true},
	} {
		if err := l.Validate(&messages.MultiOp{TOp: []*messages.Op{bad}}); err == nil {
			t.Errorf("Validate(%v) = nil", bad)
		}
		if err := l.ValidateEncoded(encode(t, &messages.MultiOp{TOp: []*messages.Op{bad}})); err == nil {
			t.Errorf("ValidateEncoded(%v) = nil", bad)
		}
	}
	for _, bad := range []*messages.Test{
		{Kind: messages.Test_KIND_VERSION, Key: []byte("a")},
		{Kind: messages.Test_KIND_MOD_INSTANCE, Key: []byte("a"), Version: 1},
		{Kind: messages.Test_KIND_PRESENT, Key: []byte("a"), Instance: 1},
		{Kind: messages.Test_KIND_CREATE_INSTANCE, Instance: 1},
	} {
		if err := l.Validate(&messages.MultiOp{Guard: []*messages.Test{bad}}); err == nil {
			t.Errorf("Validate(%v) = nil", bad)
		}
	}
	if !db.IsReadOnly(db.Prefix(nil, 0)) {
		t.Error("a range is not read-only")
	}
	if got := db.PrefixEnd([]byte{'a', 0xff}); string(got) != "b" {
		t.Errorf("PrefixEnd(a\\xff) = %q", got)
	}
	if db.PrefixEnd([]byte{0xff}) != nil || db.PrefixEnd(nil) != nil {
		t.Error("PrefixEnd of all-0xff or nothing is not nil")
	}
}
