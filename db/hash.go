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
// an empty value vs an absent key). The epoch is included (it is part of the
// replicated state: guards test it); LastApplied is not.
//
// Hash sorts every key, so it costs O(n log n); it is meant for tests and
// occasional consistency checks, not for every Apply.
func (kv *KV) Hash() [32]byte {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], kv.epoch)
	h.Write(n[:])
	write := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		io.WriteString(h, s)
	}
	view := kv.data
	if kv.delta != nil {
		view = kv.merged()
	}
	for _, k := range slices.Sorted(maps.Keys(view)) {
		write(k)
		write(view[k])
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}
