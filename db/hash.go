package db

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"maps"
	"slices"
)

// Hash returns a SHA-256 digest of the whole contents, used to check that
// replicas which applied the same log hold the same data.
//
// It depends only on the set of key/value pairs, not on the order they were
// inserted or on map iteration order: keys are sorted, and each key and value
// is written with an 8-byte big-endian length prefix so that different
// contents cannot produce the same byte stream ({"ab":"c"} vs {"a":"bc"},
// an empty value vs an absent key). Each key's metadata (create and mod
// instance, version, owner session), the sessions and locks and the epoch
// are included (they are replicated
// state: guards test them); LastApplied is not.
//
// Hash sorts every key, so it costs O(n log n); it is meant for tests and
// occasional consistency checks, not for every Apply.
func (kv *KV) Hash() [32]byte {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	view := kv.data
	if kv.delta != nil {
		view = kv.merged()
	}
	return hashOf(view, kv.epoch, kv.lockState())
}

// BeginChecksum freezes the contents as they are now (call it between two
// instances, on the goroutine that applies) and returns a function that
// computes their Hash on any goroutine while Apply goes on (§6.2: runtime
// consistency checks pause no writes). Call sum exactly once. If a
// snapshot holds the contents frozen already, the hash is computed at once
// instead.
func (kv *KV) BeginChecksum() (sum func() []byte) {
	kv.mu.Lock()
	if kv.delta != nil {
		h := hashOf(kv.merged(), kv.epoch, kv.lockState())
		kv.mu.Unlock()
		return func() []byte { return h[:] }
	}
	kv.delta = make(map[string]*entry)
	frozen, epoch, locks := kv.data, kv.epoch, kv.lockState()
	kv.mu.Unlock()
	return func() []byte {
		defer kv.thaw()
		h := hashOf(frozen, epoch, locks)
		return h[:]
	}
}

func hashOf(view map[string]entry, epoch uint64, locks []byte) [32]byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], epoch)
	h.Write(n[:])
	write := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		io.WriteString(h, s)
	}
	for _, k := range slices.Sorted(maps.Keys(view)) {
		e := view[k]
		write(k)
		write(e.value)
		for _, m := range [...]uint64{e.create, e.mod, e.version, e.owner} {
			binary.BigEndian.PutUint64(n[:], m)
			h.Write(n[:])
		}
	}
	write(string(locks))
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}
