package db_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
	"google.golang.org/protobuf/proto"
)

// encode marshals m or fails the test.
func encode(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// decodeResult unmarshals an Apply result or fails the test.
func decodeResult(t testing.TB, b []byte) *messages.MultiOpResult {
	t.Helper()
	res := new(messages.MultiOpResult)
	if err := proto.Unmarshal(b, res); err != nil {
		t.Fatalf("unmarshal result: %v", err)
	}
	return res
}

// mustExecute runs op and fails the test if it was rejected by Validate.
func mustExecute(t testing.TB, kv *db.KV, op *messages.MultiOp) *messages.MultiOpResult {
	t.Helper()
	if err := kv.Limits().Validate(op); err != nil {
		t.Fatalf("Validate(%v): %v", op, err)
	}
	return kv.Execute(op)
}

func TestApplyRunsCommand(t *testing.T) {
	kv := db.New()
	out, err := kv.Apply(1, encode(t, db.Put([]byte("k"), []byte("v"))))
	if err != nil {
		t.Fatalf("Apply put: %v", err)
	}
	res := decodeResult(t, out)
	if !res.Succeeded || len(res.Results) != 1 || res.Results[0].Found {
		t.Fatalf("put result = %v, want succeeded with one not-found result", res)
	}
	out, err = kv.Apply(2, encode(t, db.Get([]byte("k"))))
	if err != nil {
		t.Fatalf("Apply get: %v", err)
	}
	res = decodeResult(t, out)
	if !res.Succeeded || len(res.Results) != 1 || !res.Results[0].Found || string(res.Results[0].Value) != "v" {
		t.Fatalf("get result = %v, want found \"v\"", res)
	}
	if got := kv.LastApplied(); got != 2 {
		t.Fatalf("LastApplied = %d, want 2", got)
	}
}

func TestApplyInvalidChangesNothing(t *testing.T) {
	// Field 1 of a Command is a varint where MultiOp expects a message:
	// protobuf-go refuses to decode that.
	command := encode(t, &messages.Command{Origin: 3, ReplyAddress: "x", Payload: []byte("p")})
	// Fields 4 and 5 of a Command are undefined in MultiOp: this decodes, but
	// only into unknown fields.
	unknown := encode(t, &messages.Command{RequestId: 7, Payload: []byte("p")})
	tests := []struct {
		name    string
		payload []byte
		want    error
	}{
		{"truncated varint", []byte{0x80}, db.ErrMalformed},
		{"bad wire type", []byte{0xff, 0xff, 0xff}, db.ErrMalformed},
		{"truncated length", []byte{0x0a, 0x10, 0x01}, db.ErrMalformed},
		{"text", []byte("PUT k v"), db.ErrMalformed},
		{"another message", command, db.ErrMalformed},
		// Must not run as an empty MultiOp.
		{"only unknown fields", unknown, db.ErrInvalidOp},
		{"empty key", encode(t, db.Put(nil, []byte("v"))), db.ErrEmptyKey},
		{"oversize value", encode(t, db.Put([]byte("k"), make([]byte, db.DefaultMaxValueBytes+1))), db.ErrValueTooLarge},
		{"unknown kind", encode(t, &messages.MultiOp{TOp: []*messages.Op{{Kind: 99, Key: []byte("k")}}}), db.ErrInvalidOp},
		// Valid ops first, invalid one last: the valid ones must not run either.
		{"invalid after valid", encode(t, &messages.MultiOp{TOp: []*messages.Op{
			{Kind: messages.Op_KIND_PUT, Key: []byte("a"), Value: []byte("changed")},
			{Kind: messages.Op_KIND_DELETE, Key: []byte("b")},
			{Kind: messages.Op_KIND_PUT, Key: []byte("c"), Value: make([]byte, db.DefaultMaxValueBytes+1)},
		}}), db.ErrValueTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := db.New()
			kv.Execute(db.Put([]byte("a"), []byte("1")))
			kv.Execute(db.Put([]byte("b"), []byte("2")))
			before, n := kv.Hash(), kv.Len()

			out, err := kv.Apply(7, tt.payload)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Apply error = %v, want %v", err, tt.want)
			}
			if res := decodeResult(t, out); res.Succeeded || len(res.Results) != 0 {
				t.Errorf("result = %v, want empty unsuccessful result", res)
			}
			if kv.Hash() != before || kv.Len() != n {
				t.Errorf("state changed by invalid command")
			}
			if got := kv.LastApplied(); got != 7 {
				t.Errorf("LastApplied = %d, want 7 (the position was consumed)", got)
			}
		})
	}
}

func TestApplyEmptyPayloadIsEmptyMultiOp(t *testing.T) {
	// Zero bytes are a valid encoding of MultiOp{}: no guard, no ops. It
	// succeeds and does nothing, which is harmless.
	kv := db.New()
	out, err := kv.Apply(1, nil)
	if err != nil {
		t.Fatalf("Apply(nil): %v", err)
	}
	if res := decodeResult(t, out); !res.Succeeded || len(res.Results) != 0 {
		t.Fatalf("result = %v, want succeeded with no results", res)
	}
}

func TestApplyInstanceOrder(t *testing.T) {
	put := encode(t, db.Put([]byte("k"), []byte("v")))
	tests := []struct {
		name      string
		instances []uint64
		wantPanic bool
	}{
		{"increasing", []uint64{1, 2, 5, 100}, false},
		{"starts at zero", []uint64{0, 1}, false},
		{"repeat", []uint64{1, 2, 2}, true}, // Apply allows it: see below
		{"backwards", []uint64{3, 2}, true},
		{"zero after one", []uint64{1, 0}, true},
	}
	applies := []struct {
		name  string
		apply func(kv *db.KV, instance uint64)
	}{
		{"Apply", func(kv *db.KV, instance uint64) { kv.Apply(instance, put) }},
		{"ApplyBatch", func(kv *db.KV, instance uint64) { kv.ApplyBatch(instance, [][]byte{put}) }},
	}
	for _, tt := range tests {
		for _, a := range applies {
			name, apply := a.name, a.apply
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				kv := db.New()
				last := len(tt.instances) - 1
				for _, in := range tt.instances[:last] {
					apply(kv, in)
				}
				want := tt.wantPanic
				if name == "Apply" && tt.name == "repeat" {
					want = false // commands batched in one instance share it
				}
				if got := didPanic(func() { apply(kv, tt.instances[last]) }); got != want {
					t.Fatalf("%s(%d) after %v panicked = %v, want %v", name, tt.instances[last], tt.instances[:last], got, want)
				}
			})
		}
	}
}

func didPanic(f func()) (panicked bool) {
	defer func() { panicked = recover() != nil }()
	f()
	return false
}

func TestApplyBatch(t *testing.T) {
	kv := db.New()
	results, errs := kv.ApplyBatch(1, [][]byte{
		encode(t, db.Put([]byte("a"), []byte("1"))),
		{0xff}, // garbage in the middle must not stop the rest
		encode(t, db.Get([]byte("a"))),
	})
	if len(results) != 3 || len(errs) != 3 {
		t.Fatalf("got %d results, %d errors, want 3 each", len(results), len(errs))
	}
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], db.ErrMalformed) {
		t.Fatalf("errs = %v, want [nil ErrMalformed nil]", errs)
	}
	if res := decodeResult(t, results[2]); string(res.Results[0].Value) != "1" {
		t.Fatalf("get in same batch = %v, want \"1\"", res)
	}
	if kv.LastApplied() != 1 {
		t.Fatalf("LastApplied = %d, want 1", kv.LastApplied())
	}

	// A no-op Value: nothing to apply, but the position is consumed.
	before := kv.Hash()
	results, errs = kv.ApplyBatch(2, nil)
	if len(results) != 0 || len(errs) != 0 || kv.LastApplied() != 2 || kv.Hash() != before {
		t.Fatalf("no-op batch: results %v errs %v LastApplied %d", results, errs, kv.LastApplied())
	}
}

// TestApplyDeterministic applies the same mixed log (valid, failing guards,
// invalid) to two replicas and checks they agree on every result and on the
// final state.
func TestApplyDeterministic(t *testing.T) {
	var log [][]byte
	for i := range 200 {
		k := []byte(fmt.Sprintf("k%d", i%17))
		v := []byte(strings.Repeat("v", i%5))
		switch i % 6 {
		case 0, 1:
			log = append(log, encode(t, db.Put(k, v)))
		case 2:
			log = append(log, encode(t, db.Delete(k)))
		case 3:
			log = append(log, encode(t, db.CompareAndSwap(k, v, []byte(fmt.Sprint(i)))))
		case 4:
			log = append(log, encode(t, db.Get(k)))
		case 5:
			log = append(log, []byte{byte(i), 0xff})
		}
	}
	a, b := db.New(), db.New()
	for i, p := range log {
		ra, ea := a.Apply(uint64(i+1), p)
		rb, eb := b.Apply(uint64(i+1), p)
		if !bytes.Equal(ra, rb) || fmt.Sprint(ea) != fmt.Sprint(eb) {
			t.Fatalf("instance %d: replicas disagree: %x/%v vs %x/%v", i+1, ra, ea, rb, eb)
		}
	}
	if a.Hash() != b.Hash() || a.Len() != b.Len() {
		t.Fatal("replicas' states differ after the same log")
	}
}

func TestReadCopies(t *testing.T) {
	kv := db.New()
	key, val := []byte("key"), []byte("value")
	mustExecute(t, kv, db.Put(key, val))

	// The caller reuses its buffers: the stored data must not change.
	copy(key, "XXX")
	copy(val, "XXXXX")
	got, ok := kv.Read([]byte("key"))
	if !ok || string(got) != "value" {
		t.Fatalf("after reusing put buffers Read = %q, %v, want \"value\", true", got, ok)
	}

	// Modifying what Read returned must not change the stored data.
	got[0] = 'X'
	if again, _ := kv.Read([]byte("key")); string(again) != "value" {
		t.Fatalf("after modifying a Read result Read = %q", again)
	}

	// Nor may a GET result alias storage a later op mutates.
	res := mustExecute(t, kv, db.Get([]byte("key")))
	mustExecute(t, kv, db.Put([]byte("key"), []byte("other")))
	if string(res.Results[0].Value) != "value" {
		t.Fatalf("earlier GET result changed to %q by a later put", res.Results[0].Value)
	}
	res.Results[0].Value[0] = 'X'
	if again, _ := kv.Read([]byte("key")); string(again) != "other" {
		t.Fatalf("after modifying a GET result Read = %q", again)
	}
}

func TestEmptyValueIsPresent(t *testing.T) {
	for _, empty := range [][]byte{nil, {}} {
		kv := db.New()
		// Through Apply, so the value also survives proto encoding, where nil
		// and empty bytes are indistinguishable.
		if _, err := kv.Apply(1, encode(t, db.Put([]byte("k"), empty))); err != nil {
			t.Fatal(err)
		}
		v, ok := kv.Read([]byte("k"))
		if !ok || v == nil || len(v) != 0 {
			t.Fatalf("Put(k, %#v): Read = %#v, %v, want non-nil empty, true", empty, v, ok)
		}
		if kv.Len() != 1 {
			t.Fatalf("Len = %d, want 1", kv.Len())
		}
		res := mustExecute(t, kv, db.Get([]byte("k")))
		if !res.Results[0].Found || len(res.Results[0].Value) != 0 {
			t.Fatalf("Get = %v, want found empty", res)
		}
		if v, ok := kv.Read([]byte("absent")); ok || v != nil {
			t.Fatalf("Read(absent) = %#v, %v, want nil, false", v, ok)
		}
	}
}

func TestNewWithLimits(t *testing.T) {
	kv := db.NewWithLimits(db.Limits{MaxValueBytes: 3})
	want := db.Limits{MaxKeyBytes: db.DefaultMaxKeyBytes, MaxValueBytes: 3, MaxOps: db.DefaultMaxOps,
		MaxRangeKeys: db.DefaultMaxRangeKeys, MaxRangeBytes: db.DefaultMaxRangeBytes,
		MaxSessions: db.DefaultMaxSessions, MaxSessionResults: db.DefaultMaxSessionResults,
		WatchEvents: db.DefaultWatchEvents, WatchEventBytes: db.DefaultWatchEventBytes}
	if kv.Limits() != want {
		t.Fatalf("Limits = %+v, want %+v", kv.Limits(), want)
	}
	// The KV's own value limit is its door check only: Apply goes by
	// the group's (limits_test.go), which this log never set.
	if err := kv.Limits().Validate(db.Put([]byte("k"), []byte("four"))); !errors.Is(err, db.ErrValueTooLarge) {
		t.Fatalf("door check of a 4-byte value with limit 3: err = %v", err)
	}
	if _, err := kv.Apply(1, encode(t, db.Put([]byte("k"), []byte("four")))); err != nil {
		t.Fatalf("Apply of a 4-byte value, no group limit: err = %v", err)
	}
	if res := kv.Execute(db.Put([]byte("k"), []byte{})); !res.Succeeded || kv.Len() != 1 {
		t.Fatalf("Execute = %v, Len %d", res, kv.Len())
	}
	if res := kv.Execute(db.Put(nil, []byte("v"))); res.Succeeded {
		t.Fatalf("Execute of invalid op = %v; want rejected", res)
	}
}

func BenchmarkApplyPut(b *testing.B) {
	const keys = 1024
	payloads := make([][]byte, keys)
	value := bytes.Repeat([]byte("v"), 100)
	for i := range payloads {
		payloads[i] = encode(b, db.Put([]byte(fmt.Sprintf("key-%06d", i)), value))
	}
	kv := db.New()
	var instance uint64
	b.ReportAllocs()
	for b.Loop() {
		instance++
		if _, err := kv.Apply(instance, payloads[instance%keys]); err != nil {
			b.Fatal(err)
		}
	}
}
