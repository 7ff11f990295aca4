package db

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// Snapshots of the database (§5.5).
//
// A snapshot is taken without stopping the database: BeginSnapshot, called
// between two applied instances, freezes the current contents and returns a
// function that writes them; while it runs (on any goroutine), changes go to
// a side map and reads see both. When the write ends the side map is folded
// back in, which holds the lock only for as long as there were changes
// meanwhile.
//
// Stream format (the snapshot file around it carries the checksums):
//
//	magic "LPKV0003" | last applied u64 | epoch u64
//	entries: uvarint key length (> 0) | key | uvarint value length | value
//	         | uvarint create instance | uvarint mod instance | uvarint version
//	         | uvarint owner session
//	end: uvarint 0
//	uvarint length | LockServiceState (sessions and locks, the group's
//	               value and result limits), proto-encoded
//
// Restore also reads the first format, "LPKV0001", whose entries end at the
// value (and nothing follows their end): its keys take the snapshot's
// instance as their creation and last change, at version 1.
const (
	kvSnapshotMagic   = "LPKV0003"
	kvSnapshotMagicV1 = "LPKV0001"
)

// maxLockStateBytes bounds the sessions' and locks' part of a snapshot a
// replica will read: DefaultMaxSessions sessions with full result lists
// would be more, but not in any cluster this serves.
const maxLockStateBytes = 1 << 30

// ErrSnapshotInProgress is returned by BeginSnapshot while another snapshot
// of the same database is being written.
var ErrSnapshotInProgress = errors.New("db: a snapshot is already being written")

// get, put and del are the only accessors of the contents; callers hold
// kv.mu (for put and del, as writers).
func (kv *KV) get(key string) (entry, bool) {
	if kv.delta != nil {
		if e, ok := kv.delta[key]; ok {
			if e == nil {
				return entry{}, false
			}
			return *e, true
		}
	}
	e, ok := kv.data[key]
	return e, ok
}

// put sets key to value as a change made at the instance being applied,
// bound to session owner (0: none), and reports whether key existed.
func (kv *KV) put(key, value string, owner uint64) bool {
	old, ok := kv.get(key)
	e := entry{value: value, create: kv.lastApplied, mod: kv.lastApplied, version: 1, owner: owner}
	if ok {
		e.create, e.version = old.create, old.version+1
	} else {
		kv.index.ReplaceOrInsert(key)
	}
	kv.bind(key, old.owner, owner)
	if kv.delta != nil {
		kv.delta[key] = &e
	} else {
		kv.data[key] = e
	}
	kv.record(change{instance: kv.lastApplied, key: key, value: value, version: e.version})
	return ok
}

// del removes key and reports whether it existed.
func (kv *KV) del(key string) bool {
	old, ok := kv.get(key)
	if !ok {
		return false
	}
	kv.bind(key, old.owner, 0)
	kv.record(change{instance: kv.lastApplied, key: key, delete: true})
	kv.index.Delete(key)
	if kv.delta != nil {
		kv.delta[key] = nil
	} else {
		delete(kv.data, key)
	}
	return true
}

// merged returns the contents with the side map applied, as a new map.
func (kv *KV) merged() map[string]entry {
	m := maps.Clone(kv.data)
	for k, e := range kv.delta {
		if e == nil {
			delete(m, k)
		} else {
			m[k] = *e
		}
	}
	return m
}

// BeginSnapshot freezes the database as of the last applied instance and
// returns that instance and a function that writes the frozen contents to
// w. Call it on the goroutine that applies (between two instances); call
// write on any goroutine, exactly once: Apply and the readers go on
// meanwhile. write folds the changes made meanwhile back in when it ends,
// whether or not it succeeded.
func (kv *KV) BeginSnapshot() (instance uint64, write func(w io.Writer) error, err error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.delta != nil {
		return 0, nil, ErrSnapshotInProgress
	}
	kv.delta = make(map[string]*entry)
	frozen, last, epoch, locks := kv.data, kv.lastApplied, kv.epoch, kv.lockState()
	write = func(w io.Writer) error {
		defer kv.thaw()
		return writeKVSnapshot(w, frozen, last, epoch, locks)
	}
	return last, write, nil
}

// thaw folds the side map into the contents and ends the snapshot.
func (kv *KV) thaw() {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	for k, e := range kv.delta {
		if e == nil {
			delete(kv.data, k)
		} else {
			kv.data[k] = *e
		}
	}
	kv.delta = nil
}

// lockState encodes the sessions and locks, sorted, and the group's value
// and result limits, deterministically (callers hold kv.mu). A group whose
// log set no limit encodes as it did before limits were replicated (proto3
// leaves zero fields out), so its snapshots and checksums are unchanged.
func (kv *KV) lockState() []byte {
	st := &messages.LockServiceState{NextSession: kv.nextSession, NowMs: kv.nowMs,
		MaxValueBytes: uint64(kv.group.MaxValueBytes), LimitsInstance: kv.group.Instance,
		MaxResultBytes: uint64(kv.group.MaxResultBytes), ResultLimitInstance: kv.group.ResultInstance}
	for _, id := range slices.Sorted(maps.Keys(kv.sessions)) {
		st.Sessions = append(st.Sessions, kv.sessions[id].rec)
	}
	for _, name := range slices.Sorted(maps.Keys(kv.locks)) {
		st.Locks = append(st.Locks, kv.locks[name])
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(st)
	if err != nil {
		panic(fmt.Sprintf("db: encoding the lock state: %v", err))
	}
	return b
}

// restoreLockState decodes lockState's bytes into sessions and locks, and
// binds the ephemeral keys of data to their sessions.
func restoreLockState(b []byte, data map[string]entry) (map[uint64]*session, map[string]*messages.LockRecord, *messages.LockServiceState, error) {
	st := &messages.LockServiceState{}
	if err := proto.Unmarshal(b, st); err != nil {
		return nil, nil, nil, err
	}
	if st.MaxValueBytes > MaxValueBytesCeiling || (st.MaxValueBytes == 0) != (st.LimitsInstance == 0) {
		return nil, nil, nil, fmt.Errorf("value limit %d set at instance %d: out of bounds", st.MaxValueBytes, st.LimitsInstance)
	}
	if st.MaxResultBytes != 0 && (st.MaxResultBytes < MinResultBytes || st.MaxResultBytes > MaxResultBytesCeiling) ||
		(st.MaxResultBytes == 0) != (st.ResultLimitInstance == 0) {
		return nil, nil, nil, fmt.Errorf("result limit %d set at instance %d: out of bounds", st.MaxResultBytes, st.ResultLimitInstance)
	}
	sessions := make(map[uint64]*session, len(st.Sessions))
	for _, rec := range st.Sessions {
		if rec.Id == 0 || rec.Id > st.NextSession || sessions[rec.Id] != nil {
			return nil, nil, nil, fmt.Errorf("session %d: bad or repeated id", rec.Id)
		}
		if !slices.IsSortedFunc(rec.Results, func(a, b *messages.SeqResult) int { return cmpUint(a.Seq, b.Seq) }) {
			return nil, nil, nil, fmt.Errorf("session %d: results out of order", rec.Id)
		}
		sessions[rec.Id] = &session{rec: rec, ephemeral: map[string]struct{}{}, locks: map[string]struct{}{}}
	}
	locks := make(map[string]*messages.LockRecord, len(st.Locks))
	for _, l := range st.Locks {
		name := string(l.Name)
		if name == "" || locks[name] != nil {
			return nil, nil, nil, fmt.Errorf("lock %q: empty or repeated", name)
		}
		locks[name] = l
		for _, h := range append(slices.Clone(l.Holders), l.Waiters...) {
			s, ok := sessions[h.GetSession()]
			if !ok {
				return nil, nil, nil, fmt.Errorf("lock %q: held or awaited by no session %d", name, h.GetSession())
			}
			s.locks[name] = struct{}{}
		}
	}
	for k, e := range data {
		if e.owner == 0 {
			continue
		}
		s, ok := sessions[e.owner]
		if !ok {
			return nil, nil, nil, fmt.Errorf("key %s: bound to no session %d", quoteKey([]byte(k)), e.owner)
		}
		s.ephemeral[k] = struct{}{}
	}
	return sessions, locks, st, nil
}

func writeKVSnapshot(w io.Writer, data map[string]entry, last, epoch uint64, locks []byte) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var hdr [len(kvSnapshotMagic) + 16]byte
	copy(hdr[:], kvSnapshotMagic)
	binary.BigEndian.PutUint64(hdr[len(kvSnapshotMagic):], last)
	binary.BigEndian.PutUint64(hdr[len(kvSnapshotMagic)+8:], epoch)
	if _, err := bw.Write(hdr[:]); err != nil {
		return err
	}
	var n [binary.MaxVarintLen64]byte
	uvarint := func(x uint64) { bw.Write(n[:binary.PutUvarint(n[:], x)]) }
	for k, e := range data {
		uvarint(uint64(len(k)))
		bw.WriteString(k)
		uvarint(uint64(len(e.value)))
		bw.WriteString(e.value)
		uvarint(e.create)
		uvarint(e.mod)
		uvarint(e.version)
		uvarint(e.owner)
		// A write error sticks in bufio (an empty Write returns it): stop
		// at the first.
		if _, err := bw.Write(nil); err != nil {
			return err
		}
	}
	uvarint(0)
	uvarint(uint64(len(locks)))
	bw.Write(locks)
	return bw.Flush()
}

// Restore replaces the whole database with a snapshot written by
// BeginSnapshot's write. On any error the database is unchanged.
func (kv *KV) Restore(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr [len(kvSnapshotMagic) + 16]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return fmt.Errorf("%w: not a database snapshot", ErrMalformed)
	}
	withMeta := false
	switch string(hdr[:len(kvSnapshotMagic)]) {
	case kvSnapshotMagic:
		withMeta = true
	case kvSnapshotMagicV1:
	default:
		return fmt.Errorf("%w: not a database snapshot", ErrMalformed)
	}
	last := binary.BigEndian.Uint64(hdr[len(kvSnapshotMagic):])
	epoch := binary.BigEndian.Uint64(hdr[len(kvSnapshotMagic)+8:])
	data := make(map[string]entry)
	index := newIndex()
	readBytes := func(limit int) (string, error) {
		l, err := binary.ReadUvarint(br)
		if err != nil {
			return "", err
		}
		if l > uint64(limit) {
			return "", fmt.Errorf("length %d over the limit %d", l, limit)
		}
		b := make([]byte, l)
		if _, err := io.ReadFull(br, b); err != nil {
			return "", err
		}
		return string(b), nil
	}
	for {
		k, err := readBytes(kv.limits.MaxKeyBytes)
		if err != nil {
			return fmt.Errorf("%w: snapshot entry %d: %v", ErrMalformed, len(data), err)
		}
		if k == "" {
			break
		}
		// Not the group's limit: a value stored before the limit was
		// lowered stays.
		v, err := readBytes(MaxValueBytesCeiling)
		if err != nil {
			return fmt.Errorf("%w: snapshot value of entry %d: %v", ErrMalformed, len(data), err)
		}
		e := entry{value: v, create: last, mod: last, version: 1}
		if withMeta {
			var meta [4]uint64
			for i := range meta {
				if meta[i], err = binary.ReadUvarint(br); err != nil {
					return fmt.Errorf("%w: snapshot metadata of entry %d: %v", ErrMalformed, len(data), err)
				}
			}
			e.create, e.mod, e.version, e.owner = meta[0], meta[1], meta[2], meta[3]
			if e.create > e.mod || e.mod > last || e.version == 0 {
				return fmt.Errorf("%w: snapshot entry %d: metadata %v inconsistent at instance %d",
					ErrMalformed, len(data), meta, last)
			}
		}
		if _, dup := data[k]; dup {
			return fmt.Errorf("%w: snapshot entry %d: key %s twice", ErrMalformed, len(data), quoteKey([]byte(k)))
		}
		data[k] = e
		index.ReplaceOrInsert(k)
	}
	var lockBytes []byte
	if withMeta {
		l, err := binary.ReadUvarint(br)
		if err == nil && l > maxLockStateBytes {
			err = fmt.Errorf("length %d over the limit %d", l, maxLockStateBytes)
		}
		if err == nil {
			lockBytes = make([]byte, l)
			_, err = io.ReadFull(br, lockBytes)
		}
		if err != nil {
			return fmt.Errorf("%w: snapshot sessions and locks: %v", ErrMalformed, err)
		}
	}
	sessions, locks, st, err := restoreLockState(lockBytes, data)
	if err == nil && max(st.LimitsInstance, st.ResultLimitInstance) > last {
		err = fmt.Errorf("limits set at instance %d, after the snapshot's %d", max(st.LimitsInstance, st.ResultLimitInstance), last)
	}
	if err != nil {
		return fmt.Errorf("%w: snapshot sessions and locks: %v", ErrMalformed, err)
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.delta != nil {
		return ErrSnapshotInProgress
	}
	kv.data, kv.index, kv.lastApplied, kv.epoch = data, index, last, epoch
	kv.sessions, kv.locks, kv.nextSession, kv.nowMs = sessions, locks, st.NextSession, st.NowMs
	kv.setGroup(GroupLimits{MaxValueBytes: int(st.MaxValueBytes), Instance: st.LimitsInstance,
		MaxResultBytes: int(st.MaxResultBytes), ResultInstance: st.ResultLimitInstance})
	kv.events = nil
	// The changes before the snapshot are gone: a watcher from before it
	// gets the state at its instance.
	clear(kv.changes)
	kv.changes, kv.changeBytes, kv.changesFrom, kv.complete = nil, 0, last+1, last
	return nil
}
