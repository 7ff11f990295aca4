package db_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
	"google.golang.org/protobuf/proto"
)

// FuzzApply feeds arbitrary payloads to two replicas in the same state and
// checks the state machine's contract: identical results and states (no
// nondeterminism), a well-formed result, one result per op of the list that
// ran, and no change at all when the command is rejected.
func FuzzApply(f *testing.F) {
	for _, op := range []*messages.MultiOp{
		db.Put([]byte("a"), []byte("x")),
		db.Put([]byte("new"), nil),
		db.Get([]byte("a")),
		db.Delete([]byte("b")),
		db.CompareAndSwap([]byte("a"), []byte("1"), []byte("2")),
		db.CompareAndSwap([]byte("e"), []byte{}, []byte("2")),
		db.CompareAndSwap([]byte("z"), nil, []byte("2")),
		{
			Guard: []*messages.Test{present("a"), absent("z")},
			TOp:   []*messages.Op{put("z", "1"), get("z"), del("a"), get("a")},
			FOp:   []*messages.Op{get("a")},
		},
		{TOp: []*messages.Op{{Kind: 5, Key: []byte("k")}}},
		{Guard: []*messages.Test{{Kind: 9, Key: []byte("k")}}},
		{TOp: []*messages.Op{put("a", "changed"), del("")}},
		db.Prefix(nil, 0),
		db.OpenSession(time.Second),
		db.Lock(1, []byte("l"), false, true),
		db.ExpireSession(1),
		{Session: 1, Seq: 3, Acked: 1, TOp: []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: []byte("e"), Ephemeral: true}}},
		db.Range([]byte("a"), []byte("c"), 1),
		{Guard: []*messages.Test{db.VersionIs([]byte("a"), 1), db.ModInstanceIs([]byte("b"), 0)}, TOp: []*messages.Op{put("c", "3")}},
		{TOp: []*messages.Op{{Kind: messages.Op_KIND_RANGE, Key: []byte("a"), LimitBytes: 1}, {Kind: messages.Op_KIND_RANGE, Prefix: true}}},
	} {
		b, err := proto.Marshal(op)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff})
	f.Add([]byte{0x0a, 0x80})
	f.Add([]byte("garbage"))

	f.Fuzz(func(t *testing.T, payload []byte) {
		replica := func() *db.KV {
			kv := db.New()
			kv.Execute(db.Put([]byte("a"), []byte("1")))
			kv.Execute(db.Put([]byte("b"), []byte("2")))
			kv.Execute(db.Put([]byte("e"), nil))
			return kv
		}
		a, b := replica(), replica()
		before := a.Hash()
		input := bytes.Clone(payload)

		ra, ea := a.Apply(1, payload)
		rb, eb := b.Apply(1, payload)
		if !bytes.Equal(payload, input) {
			t.Fatal("Apply modified its payload")
		}
		if !bytes.Equal(ra, rb) || (ea == nil) != (eb == nil) || (ea != nil && ea.Error() != eb.Error()) {
			t.Fatalf("nondeterministic: %x/%v vs %x/%v", ra, ea, rb, eb)
		}
		if a.Hash() != b.Hash() {
			t.Fatal("nondeterministic state")
		}
		// ApplyQuiet, for commands nobody waits for, changes the state
		// exactly as Apply does and refuses exactly what it refuses.
		q := replica()
		if eq := q.ApplyQuiet(1, payload); (eq == nil) != (ea == nil) || (eq != nil && eq.Error() != ea.Error()) || q.Hash() != a.Hash() {
			t.Fatalf("ApplyQuiet: %v and state equal %v; Apply: %v", eq, q.Hash() == a.Hash(), ea)
		}
		res := new(messages.MultiOpResult)
		if err := proto.Unmarshal(ra, res); err != nil {
			t.Fatalf("result does not decode: %v", err)
		}
		if a.LastApplied() != 1 {
			t.Fatalf("LastApplied = %d", a.LastApplied())
		}

		if ea != nil {
			known := []error{db.ErrMalformed, db.ErrEmptyKey, db.ErrKeyTooLarge, db.ErrValueTooLarge, db.ErrTooManyOps, db.ErrInvalidOp,
				db.ErrNoSession, db.ErrStaleSequence, db.ErrTooManyInFlight, db.ErrTooManySessions}
			ok := false
			for _, k := range known {
				ok = ok || errors.Is(ea, k)
			}
			if !ok {
				t.Fatalf("error %v wraps no sentinel", ea)
			}
			if res.Succeeded || len(res.Results) != 0 || a.Hash() != before {
				t.Fatalf("rejected command had an effect: %v", res)
			}
			return
		}

		op := new(messages.MultiOp)
		if err := proto.Unmarshal(payload, op); err != nil {
			t.Fatalf("Apply accepted a payload that does not decode: %v", err)
		}
		ran := op.FOp
		if res.Succeeded {
			ran = op.TOp
		}
		if len(res.Results) != len(ran) {
			t.Fatalf("%d results for %d ops", len(res.Results), len(ran))
		}
		// Replaying the decoded op on a fresh replica via Execute agrees.
		c := replica()
		c.Apply(1, nil) // an empty MultiOp: at the same instance as a
		if got := c.Execute(op); !proto.Equal(got, res) || c.Hash() != a.Hash() {
			t.Fatalf("Execute %v disagrees with Apply %v", got, res)
		}
	})
}

// FuzzValidateEncoded holds ValidateEncoded to what decoding and Validate
// say, for any bytes: the same verdict and the same error.
func FuzzValidateEncoded(f *testing.F) {
	for _, op := range []*messages.MultiOp{
		db.Put([]byte("a"), []byte("x")),
		db.Get([]byte("a")),
		db.Delete([]byte("b")),
		db.CompareAndSwap([]byte("a"), []byte("1"), []byte("2")),
		{Guard: []*messages.Test{db.EpochIs(7), present("a"), absent("z")}, TOp: []*messages.Op{put("z", "1")}, FOp: []*messages.Op{get("a")}},
		{TOp: []*messages.Op{{Kind: 5, Key: []byte("k")}}},
		{Guard: []*messages.Test{{Kind: 9, Key: []byte("k")}}},
		{TOp: []*messages.Op{put("a", "changed"), del("")}},
		{TOp: []*messages.Op{{Kind: messages.Op_KIND_GET, Key: []byte("k"), Value: []byte("v")}}},
	} {
		b, err := proto.Marshal(op)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x12, 0x04, 0x08, 0x01, 0x08, 0x01}) // a repeated kind
	f.Add([]byte("garbage"))
	limits := db.Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxOps: 4}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := limits.ValidateEncoded(b)
		op := new(messages.MultiOp)
		var want error
		if err := proto.Unmarshal(b, op); err != nil {
			want = db.ErrMalformed
		} else {
			want = limits.Validate(op)
		}
		if (got == nil) != (want == nil) {
			t.Fatalf("ValidateEncoded says %v, decoding and Validate say %v", got, want)
		}
		if got != nil && want != db.ErrMalformed && got.Error() != want.Error() {
			t.Fatalf("ValidateEncoded says %q, Validate %q", got, want)
		}
	})
}
