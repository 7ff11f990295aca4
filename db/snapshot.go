package db

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
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
//	magic "LPKV0001" | last applied u64 | epoch u64
//	entries: uvarint key length (> 0) | key | uvarint value length | value
//	end: uvarint 0
const kvSnapshotMagic = "LPKV0001"

// ErrSnapshotInProgress is returned by BeginSnapshot while another snapshot
// of the same database is being written.
var ErrSnapshotInProgress = errors.New("db: a snapshot is already being written")

// get, set and del are the only accessors of the contents; callers hold
// kv.mu (for set and del, as writers).
func (kv *KV) get(key string) (string, bool) {
	if kv.delta != nil {
		if v, ok := kv.delta[key]; ok {
			if v == nil {
				return "", false
			}
			return *v, true
		}
	}
	v, ok := kv.data[key]
	return v, ok
}

func (kv *KV) set(key, value string) {
	if kv.delta != nil {
		kv.delta[key] = &value
		return
	}
	kv.data[key] = value
}

func (kv *KV) del(key string) {
	if kv.delta != nil {
		kv.delta[key] = nil
		return
	}
	delete(kv.data, key)
}

// merged returns the contents with the side map applied, as a new map.
func (kv *KV) merged() map[string]string {
	m := maps.Clone(kv.data)
	for k, v := range kv.delta {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = *v
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
	kv.delta = make(map[string]*string)
	frozen, last, epoch := kv.data, kv.lastApplied, kv.epoch
	write = func(w io.Writer) error {
		defer kv.thaw()
		return writeKVSnapshot(w, frozen, last, epoch)
	}
	return last, write, nil
}

// thaw folds the side map into the contents and ends the snapshot.
func (kv *KV) thaw() {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	for k, v := range kv.delta {
		if v == nil {
			delete(kv.data, k)
		} else {
			kv.data[k] = *v
		}
	}
	kv.delta = nil
}

func writeKVSnapshot(w io.Writer, data map[string]string, last, epoch uint64) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var hdr [len(kvSnapshotMagic) + 16]byte
	copy(hdr[:], kvSnapshotMagic)
	binary.BigEndian.PutUint64(hdr[len(kvSnapshotMagic):], last)
	binary.BigEndian.PutUint64(hdr[len(kvSnapshotMagic)+8:], epoch)
	if _, err := bw.Write(hdr[:]); err != nil {
		return err
	}
	var n [binary.MaxVarintLen64]byte
	for k, v := range data {
		bw.Write(n[:binary.PutUvarint(n[:], uint64(len(k)))])
		bw.WriteString(k)
		bw.Write(n[:binary.PutUvarint(n[:], uint64(len(v)))])
		if _, err := bw.WriteString(v); err != nil {
			return err
		}
	}
	bw.Write(n[:binary.PutUvarint(n[:], 0)])
	return bw.Flush()
}

// Restore replaces the whole database with a snapshot written by
// BeginSnapshot's write. On any error the database is unchanged.
func (kv *KV) Restore(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr [len(kvSnapshotMagic) + 16]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil || string(hdr[:len(kvSnapshotMagic)]) != kvSnapshotMagic {
		return fmt.Errorf("%w: not a database snapshot", ErrMalformed)
	}
	last := binary.BigEndian.Uint64(hdr[len(kvSnapshotMagic):])
	epoch := binary.BigEndian.Uint64(hdr[len(kvSnapshotMagic)+8:])
	data := make(map[string]string)
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
		v, err := readBytes(kv.limits.MaxValueBytes)
		if err != nil {
			return fmt.Errorf("%w: snapshot value of entry %d: %v", ErrMalformed, len(data), err)
		}
		data[k] = v
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.delta != nil {
		return ErrSnapshotInProgress
	}
	kv.data, kv.lastApplied, kv.epoch = data, last, epoch
	return nil
}
