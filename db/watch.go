package db

import (
	"github.com/livepaxos/livepaxos/messages"
)

// Watches (issue 16, item 4). The database keeps the changes of its last
// instances in order, each with its instance, so that a watcher gets every
// change of its range once and in log order, resuming from the instance
// after the last one it saw, at this replica or any other (they apply the
// same log). Only whole instances are handed out: the replica tells the
// database when an instance's last command applied (EndInstance). A
// watcher from before the oldest change kept gets the range's state at
// one instance instead, then the changes after it: never a dead end.

// Bounds of the changes kept. Values are the database's own strings
// (Go strings are immutable and shared), so a change costs little until
// its key is written again.
const (
	DefaultWatchEvents     = 100000
	DefaultWatchEventBytes = 64 << 20
)

// change is one put or delete, at an instance.
type change struct {
	instance uint64
	key      string
	value    string
	version  uint64
	delete   bool
}

// record keeps one change (callers hold kv.mu as writers).
func (kv *KV) record(c change) {
	kv.changes = append(kv.changes, c)
	kv.changeBytes += len(c.key) + len(c.value)
	if len(kv.changes) <= kv.limits.WatchEvents && kv.changeBytes <= kv.limits.WatchEventBytes {
		return
	}
	// Drop the oldest instances whole, so the kept changes start at an
	// instance boundary (changesFrom).
	cut := 0
	for cut < len(kv.changes)-1 && (len(kv.changes)-cut > kv.limits.WatchEvents || kv.changeBytes > kv.limits.WatchEventBytes) {
		kv.changeBytes -= len(kv.changes[cut].key) + len(kv.changes[cut].value)
		cut++
	}
	for cut < len(kv.changes) && kv.changes[cut].instance == kv.changes[cut-1].instance {
		kv.changeBytes -= len(kv.changes[cut].key) + len(kv.changes[cut].value)
		cut++
	}
	if cut > 0 {
		kv.changesFrom = kv.changes[cut-1].instance + 1
	}
	clear(kv.changes[:cut])
	kv.changes = kv.changes[cut:]
	if cap(kv.changes) > 2*len(kv.changes)+1024 {
		kv.changes = append([]change(nil), kv.changes...)
	}
}

// EndInstance records that every command of instance applied: watchers
// may have its changes. The replica calls it after each applied entry
// (core.InstanceObserver).
func (kv *KV) EndInstance(instance uint64) {
	kv.mu.Lock()
	if instance > kv.complete {
		kv.complete = instance
	}
	ch := kv.notify
	kv.notify = nil
	kv.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// Changed returns a channel closed at the next EndInstance.
func (kv *KV) Changed() <-chan struct{} {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.notify == nil {
		kv.notify = make(chan struct{})
	}
	return kv.notify
}

// WatchRange is what a watch matches: one key, a prefix, or [Key, End).
type WatchRange struct {
	Key    []byte
	Prefix bool
}

func (w WatchRange) matches(key string) bool {
	if w.Prefix {
		return len(key) >= len(w.Key) && key[:len(w.Key)] == string(w.Key)
	}
	return key == string(w.Key)
}

// WatchBatch is what a watcher gets next.
type WatchBatch struct {
	Events []*messages.WatchEvent
	// Reset: the changes from the instance asked for are no longer kept;
	// KVs is the range's state at Instance instead.
	Reset bool
	KVs   []*messages.KeyValue
	// Instance: the batch covers everything up to it; ask from
	// Instance+1 next. 0 with no events: nothing new (wait on Changed).
	Instance uint64
}

// Watch returns the changes of r from instance from on (0: from the next
// instance), whole instances, at most about max events; or, when they
// are no longer kept, a reset. It never blocks.
func (kv *KV) Watch(r WatchRange, from uint64, max int) WatchBatch {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	if from == 0 {
		from = kv.complete + 1
	}
	if from < kv.changesFrom {
		if kv.lastApplied != kv.complete {
			return WatchBatch{} // an instance half applied: its state is no one instance's
		}
		return WatchBatch{Reset: true, KVs: kv.stateOf(r), Instance: kv.complete}
	}
	if from > kv.complete {
		return WatchBatch{}
	}
	// The kept changes are in instance order: find the first at from.
	lo, hi := 0, len(kv.changes)
	for lo < hi {
		mid := (lo + hi) / 2
		if kv.changes[mid].instance < from {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	b := WatchBatch{Instance: kv.complete}
	for i := lo; i < len(kv.changes); i++ {
		c := kv.changes[i]
		if c.instance > kv.complete {
			break
		}
		if len(b.Events) >= max && c.instance != kv.changes[i-1].instance {
			b.Instance = kv.changes[i-1].instance
			break
		}
		if !r.matches(c.key) {
			continue
		}
		e := &messages.WatchEvent{Instance: c.instance, Key: []byte(c.key), Delete: c.delete}
		if !c.delete {
			e.Value, e.Version = []byte(c.value), c.version
		}
		b.Events = append(b.Events, e)
	}
	return b
}

// stateOf is the range's keys and values now (callers hold kv.mu).
func (kv *KV) stateOf(r WatchRange) []*messages.KeyValue {
	var out []*messages.KeyValue
	add := func(k string) bool {
		e, _ := kv.get(k)
		out = append(out, &messages.KeyValue{Key: []byte(k), Value: []byte(e.value), CreateInstance: e.create,
			ModInstance: e.mod, Version: e.version, Owner: e.owner})
		return true
	}
	if !r.Prefix {
		if _, ok := kv.get(string(r.Key)); ok {
			add(string(r.Key))
		}
		return out
	}
	end := PrefixEnd(r.Key)
	kv.index.AscendGreaterOrEqual(string(r.Key), func(k string) bool {
		if end != nil && k >= string(end) {
			return false
		}
		return add(k)
	})
	return out
}

// Complete returns the last instance whose every command applied.
func (kv *KV) Complete() uint64 {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	return kv.complete
}

// WatchCursor is a watcher's side of a watch: where to resume, and which
// changes of an answer are new. The Go client and the simulator's
// watchers both keep one, so the resume rule is written once.
type WatchCursor struct {
	next uint64 // the first instance not yet delivered (0: from now)
	// PlantResumeLate is a planted bug (tests only): a reconnect resumes
	// one instance late, losing that instance's changes.
	PlantResumeLate bool
}

// NewWatchCursor starts at instance from (0: from now).
func NewWatchCursor(from uint64) *WatchCursor { return &WatchCursor{next: from} }

// From is the instance to ask a node for next.
func (c *WatchCursor) From() uint64 { return c.next }

// Take returns the changes of an answer covering up to instance that were
// not delivered yet (an answer may overlap what an earlier node sent),
// and moves past it. A reset's state is always new.
func (c *WatchCursor) Take(events []*messages.WatchEvent, instance uint64) []*messages.WatchEvent {
	n := 0
	for _, e := range events {
		if e.Instance >= c.next {
			events[n] = e
			n++
		}
	}
	if instance+1 > c.next {
		c.next = instance + 1
	}
	return events[:n]
}

// Reconnect: the stream broke; the next node is asked from From.
func (c *WatchCursor) Reconnect() {
	if c.PlantResumeLate && c.next > 0 {
		c.next++
	}
}
