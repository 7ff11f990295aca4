package db_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

func eventsOf(b db.WatchBatch) string {
	var s bytes.Buffer
	for _, e := range b.Events {
		if e.Delete {
			fmt.Fprintf(&s, "%d:del %s ", e.Instance, e.Key)
		} else {
			fmt.Fprintf(&s, "%d:%s=%s ", e.Instance, e.Key, e.Value)
		}
	}
	return s.String()
}

// Issue 16, item 4: changes of a range, whole instances, in log order,
// from any instance kept; resumed from the instance after the last seen.
func TestWatchWholeInstancesInOrder(t *testing.T) {
	kv := db.New()
	apply := func(instance uint64, ops ...*messages.MultiOp) {
		for _, op := range ops {
			if _, err := kv.Apply(instance, encode(t, op)); err != nil {
				t.Fatal(err)
			}
		}
	}
	pfx := db.WatchRange{Key: []byte("w/"), Prefix: true}
	apply(1, db.Put([]byte("w/a"), []byte("1")), db.Put([]byte("x"), []byte("no")))
	if b := kv.Watch(pfx, 1, 100); len(b.Events) != 0 || b.Reset {
		t.Fatalf("a half-applied instance was handed out: %+v", b)
	}
	apply(1, db.Put([]byte("w/b"), []byte("2")))
	kv.EndInstance(1)
	changed := kv.Changed()
	apply(2, db.Delete([]byte("w/a")))
	kv.EndInstance(2)
	select {
	case <-changed:
	default:
		t.Fatal("Changed not closed by EndInstance")
	}
	apply(3, db.Put([]byte("w/a"), []byte("3")))
	kv.EndInstance(3)
	b := kv.Watch(pfx, 1, 100)
	if got := eventsOf(b); got != "1:w/a=1 1:w/b=2 2:del w/a 3:w/a=3 " || b.Instance != 3 {
		t.Fatalf("from 1: %q up to %d", got, b.Instance)
	}
	// A small batch ends at an instance boundary; the next resumes after it.
	b = kv.Watch(pfx, 1, 1)
	if got := eventsOf(b); got != "1:w/a=1 1:w/b=2 " || b.Instance != 1 {
		t.Fatalf("batch of 1: %q up to %d", got, b.Instance)
	}
	if got := eventsOf(kv.Watch(pfx, b.Instance+1, 1)); got != "2:del w/a " {
		t.Fatalf("resumed: %q", got)
	}
	if got := eventsOf(kv.Watch(db.WatchRange{Key: []byte("x")}, 1, 100)); got != "1:x=no " {
		t.Fatalf("one key: %q", got)
	}
	if b := kv.Watch(pfx, 0, 100); len(b.Events) != 0 || b.Reset {
		t.Fatalf("from now: %+v", b)
	}
}

// Changes no longer kept (the bound, or a restored snapshot): the range's
// state at one instance, then the changes after it.
func TestWatchResetWhenChangesAreGone(t *testing.T) {
	kv := db.NewWithLimits(db.Limits{WatchEvents: 4})
	for i := uint64(1); i <= 10; i++ {
		if _, err := kv.Apply(i, encode(t, db.Put([]byte(fmt.Sprintf("w/%d", i%3)), []byte(fmt.Sprint(i))))); err != nil {
			t.Fatal(err)
		}
		kv.EndInstance(i)
	}
	pfx := db.WatchRange{Key: []byte("w/"), Prefix: true}
	b := kv.Watch(pfx, 2, 100)
	if !b.Reset || b.Instance != 10 || len(b.KVs) != 3 || string(b.KVs[0].Value) != "9" {
		t.Fatalf("from a dropped instance: %+v", b)
	}
	if got := eventsOf(kv.Watch(pfx, 7, 100)); got != "7:w/1=7 8:w/2=8 9:w/0=9 10:w/1=10 " {
		t.Fatalf("from a kept one: %q", got)
	}
	other := copyBySnapshot(t, kv, db.New())
	if b := other.Watch(pfx, 9, 100); !b.Reset || b.Instance != 10 || len(b.KVs) != 3 {
		t.Fatalf("restored, from before the snapshot: %+v", b)
	}
	if b := other.Watch(pfx, 11, 100); b.Reset || len(b.Events) != 0 {
		t.Fatalf("restored, from after it: %+v", b)
	}
}
