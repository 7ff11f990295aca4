package db_test

import (
	"testing"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

func absent(key string) *messages.Test {
	return &messages.Test{Kind: messages.Test_KIND_ABSENT, Key: []byte(key)}
}

func present(key string) *messages.Test {
	return &messages.Test{Kind: messages.Test_KIND_PRESENT, Key: []byte(key)}
}

func equals(key string, value []byte) *messages.Test {
	return &messages.Test{Kind: messages.Test_KIND_EQUALS, Key: []byte(key), Value: value}
}

func get(key string) *messages.Op { return &messages.Op{Kind: messages.Op_KIND_GET, Key: []byte(key)} }
func del(key string) *messages.Op {
	return &messages.Op{Kind: messages.Op_KIND_DELETE, Key: []byte(key)}
}
func put(key, value string) *messages.Op {
	return &messages.Op{Kind: messages.Op_KIND_PUT, Key: []byte(key), Value: []byte(value)}
}

// seeded returns a KV holding a="1" and e="" (present, empty).
func seeded(t *testing.T) *db.KV {
	t.Helper()
	kv := db.New()
	mustExecute(t, kv, db.Put([]byte("a"), []byte("1")))
	mustExecute(t, kv, db.Put([]byte("e"), nil))
	return kv
}

func TestGuard(t *testing.T) {
	tests := []struct {
		name  string
		guard []*messages.Test
		want  bool
	}{
		{"empty guard holds", nil, true},
		{"absent on absent key", []*messages.Test{absent("x")}, true},
		{"absent on present key", []*messages.Test{absent("a")}, false},
		{"absent on empty-valued key", []*messages.Test{absent("e")}, false},
		{"present on present key", []*messages.Test{present("a")}, true},
		{"present on empty-valued key", []*messages.Test{present("e")}, true},
		{"present on absent key", []*messages.Test{present("x")}, false},
		{"equals matching", []*messages.Test{equals("a", []byte("1"))}, true},
		{"equals different", []*messages.Test{equals("a", []byte("2"))}, false},
		{"equals prefix", []*messages.Test{equals("a", []byte("1x"))}, false},
		{"equals empty on nonempty", []*messages.Test{equals("a", nil)}, false},
		{"equals empty on empty-valued key", []*messages.Test{equals("e", []byte{})}, true},
		{"equals nil on empty-valued key", []*messages.Test{equals("e", nil)}, true},
		{"equals empty on absent key", []*messages.Test{equals("x", []byte{})}, false},
		{"equals nil on absent key", []*messages.Test{equals("x", nil)}, false},
		{"all hold", []*messages.Test{present("a"), absent("x"), equals("e", nil)}, true},
		{"last fails", []*messages.Test{present("a"), absent("x"), absent("e")}, false},
		{"first fails", []*messages.Test{absent("a"), present("a")}, false},
		{"same key twice", []*messages.Test{present("a"), equals("a", []byte("1"))}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := seeded(t)
			res := mustExecute(t, kv, &messages.MultiOp{
				Guard: tt.guard,
				TOp:   []*messages.Op{put("ran", "t")},
				FOp:   []*messages.Op{put("ran", "f"), get("ran")},
			})
			if res.Succeeded != tt.want {
				t.Fatalf("Succeeded = %v, want %v", res.Succeeded, tt.want)
			}
			wantList, wantResults := "f", 2
			if tt.want {
				wantList, wantResults = "t", 1
			}
			if v, _ := kv.Read([]byte("ran")); string(v) != wantList {
				t.Errorf("%s_op should have run; ran = %q", wantList, v)
			}
			if len(res.Results) != wantResults {
				t.Errorf("got %d results, want %d (one per op of the list that ran)", len(res.Results), wantResults)
			}
		})
	}
}

// result is a compact expectation for one OpResult.
type result struct {
	found bool
	value string
}

func TestOpsRunInOrder(t *testing.T) {
	tests := []struct {
		name     string
		ops      []*messages.Op
		want     []result
		wantRead map[string]*string // key -> value, nil = absent
	}{
		{
			name:     "get sees earlier put",
			ops:      []*messages.Op{put("k", "v"), get("k")},
			want:     []result{{false, ""}, {true, "v"}},
			wantRead: map[string]*string{"k": ptr("v")},
		},
		{
			name:     "get before put sees old state",
			ops:      []*messages.Op{get("k"), put("k", "v")},
			want:     []result{{false, ""}, {false, ""}},
			wantRead: map[string]*string{"k": ptr("v")},
		},
		{
			name:     "delete removes earlier put",
			ops:      []*messages.Op{put("k", "v"), del("k"), get("k")},
			want:     []result{{false, ""}, {true, ""}, {false, ""}},
			wantRead: map[string]*string{"k": nil},
		},
		{
			name:     "second put reports found and overwrites",
			ops:      []*messages.Op{put("k", "1"), put("k", "2"), get("k")},
			want:     []result{{false, ""}, {true, ""}, {true, "2"}},
			wantRead: map[string]*string{"k": ptr("2")},
		},
		{
			name:     "put over existing key reports found",
			ops:      []*messages.Op{put("a", "new")},
			want:     []result{{true, ""}},
			wantRead: map[string]*string{"a": ptr("new")},
		},
		{
			name:     "delete of absent key",
			ops:      []*messages.Op{del("x")},
			want:     []result{{false, ""}},
			wantRead: map[string]*string{"x": nil},
		},
		{
			name:     "delete then put",
			ops:      []*messages.Op{del("a"), get("a"), put("a", "again")},
			want:     []result{{true, ""}, {false, ""}, {false, ""}},
			wantRead: map[string]*string{"a": ptr("again")},
		},
		{
			name:     "get of empty value",
			ops:      []*messages.Op{get("e")},
			want:     []result{{true, ""}},
			wantRead: map[string]*string{"e": ptr("")},
		},
		{
			name:     "no ops",
			ops:      nil,
			want:     nil,
			wantRead: map[string]*string{"a": ptr("1")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := seeded(t)
			res := mustExecute(t, kv, &messages.MultiOp{TOp: tt.ops})
			if !res.Succeeded {
				t.Fatal("empty guard did not hold")
			}
			checkResults(t, res, tt.want)
			for k, want := range tt.wantRead {
				v, ok := kv.Read([]byte(k))
				switch {
				case want == nil && ok:
					t.Errorf("Read(%q) = %q, want absent", k, v)
				case want != nil && (!ok || string(v) != *want):
					t.Errorf("Read(%q) = %q, %v, want %q", k, v, ok, *want)
				}
			}
		})
	}
}

func ptr(s string) *string { return &s }

func checkResults(t *testing.T, res *messages.MultiOpResult, want []result) {
	t.Helper()
	if len(res.Results) != len(want) {
		t.Fatalf("got %d results %v, want %d", len(res.Results), res.Results, len(want))
	}
	for i, r := range res.Results {
		if r.Found != want[i].found || string(r.Value) != want[i].value {
			t.Errorf("result[%d] = {found %v, value %q}, want {found %v, value %q}",
				i, r.Found, r.Value, want[i].found, want[i].value)
		}
	}
}

// TestGuardSeesStateBeforeOps checks the guard is evaluated once, up front:
// t_op changing a guarded key does not re-evaluate it mid-list.
func TestGuardSeesStateBeforeOps(t *testing.T) {
	kv := seeded(t)
	res := mustExecute(t, kv, &messages.MultiOp{
		Guard: []*messages.Test{absent("k")},
		TOp:   []*messages.Op{put("k", "1"), put("k", "2")},
	})
	if !res.Succeeded {
		t.Fatal("guard absent(k) should hold before t_op runs")
	}
	if v, _ := kv.Read([]byte("k")); string(v) != "2" {
		t.Fatalf("k = %q, want \"2\"", v)
	}
}

func TestConstructors(t *testing.T) {
	kv := seeded(t)
	checkResults(t, mustExecute(t, kv, db.Get([]byte("a"))), []result{{true, "1"}})
	checkResults(t, mustExecute(t, kv, db.Get([]byte("x"))), []result{{false, ""}})
	checkResults(t, mustExecute(t, kv, db.Put([]byte("x"), []byte("9"))), []result{{false, ""}})
	checkResults(t, mustExecute(t, kv, db.Put([]byte("x"), []byte("10"))), []result{{true, ""}})
	checkResults(t, mustExecute(t, kv, db.Delete([]byte("x"))), []result{{true, ""}})
	checkResults(t, mustExecute(t, kv, db.Delete([]byte("x"))), []result{{false, ""}})
	if kv.Len() != 2 {
		t.Fatalf("Len = %d, want 2", kv.Len())
	}
}

func TestCompareAndSwap(t *testing.T) {
	tests := []struct {
		name     string
		key      string
		old      []byte
		newValue string
		wantOK   bool
		want     []result // on failure: the current value, read by f_op
		wantRead *string
	}{
		{"absent expected absent", "x", nil, "n", true, []result{{false, ""}}, ptr("n")},
		{"present expected absent", "a", nil, "n", false, []result{{true, "1"}}, ptr("1")},
		{"empty-valued expected absent", "e", nil, "n", false, []result{{true, ""}}, ptr("")},
		{"matching old", "a", []byte("1"), "n", true, []result{{true, ""}}, ptr("n")},
		{"different old", "a", []byte("2"), "n", false, []result{{true, "1"}}, ptr("1")},
		{"old given, key absent", "x", []byte("1"), "n", false, []result{{false, ""}}, nil},
		{"empty old, key absent", "x", []byte{}, "n", false, []result{{false, ""}}, nil},
		{"empty old, empty-valued key", "e", []byte{}, "n", true, []result{{true, ""}}, ptr("n")},
		{"swap to empty value", "a", []byte("1"), "", true, []result{{true, ""}}, ptr("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := seeded(t)
			op := db.CompareAndSwap([]byte(tt.key), tt.old, []byte(tt.newValue))
			// Through Apply: old == []byte{} must keep meaning "present and
			// empty" after encoding.
			out, err := kv.Apply(1, encode(t, op))
			if err != nil {
				t.Fatal(err)
			}
			res := decodeResult(t, out)
			if res.Succeeded != tt.wantOK {
				t.Fatalf("Succeeded = %v, want %v", res.Succeeded, tt.wantOK)
			}
			checkResults(t, res, tt.want)
			v, ok := kv.Read([]byte(tt.key))
			switch {
			case tt.wantRead == nil && ok:
				t.Errorf("Read = %q, want absent", v)
			case tt.wantRead != nil && (!ok || string(v) != *tt.wantRead):
				t.Errorf("Read = %q, %v, want %q", v, ok, *tt.wantRead)
			}
		})
	}
}

func TestExecuteInvalidIsAtomic(t *testing.T) {
	kv := seeded(t)
	before := kv.Hash()
	res := kv.Execute(&messages.MultiOp{TOp: []*messages.Op{put("a", "changed"), del("e"), {Kind: 42, Key: []byte("k")}}})
	if res.Succeeded || len(res.Results) != 0 {
		t.Fatalf("result = %v, want empty", res)
	}
	if kv.Hash() != before {
		t.Fatal("invalid MultiOp changed state")
	}
	if res := kv.Execute(nil); res == nil || res.Succeeded {
		t.Fatalf("Execute(nil) = %v, want empty result", res)
	}
}
