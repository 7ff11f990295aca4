package db

import (
	"bytes"
	"math"

	"github.com/google/btree"

	"github.com/livepaxos/livepaxos/messages"
)

// Range reads (issue 16, item 5): the keys of a range or a prefix in byte
// order, with their metadata, bounded by a count and a byte limit, all as
// of one state because a RANGE op runs inside one MultiOp like any other.
// A page cut by a limit names the next key; asking again from it
// continues where the page stopped (as of the newer state).

// Default range limits. A page must fit in one gRPC message (4 MiB by
// default) beside a value at the 1 MiB limit, and a reply this size keeps
// one read from holding the database's read lock for long.
const (
	DefaultMaxRangeKeys  = 10000
	DefaultMaxRangeBytes = 2 << 20
)

// indexDegree is the B-tree's degree: google/btree's own suggestion for an
// in-memory tree of small items.
const indexDegree = 32

func newIndex() *btree.BTreeG[string] {
	return btree.NewG(indexDegree, func(a, b string) bool { return a < b })
}

// Range returns a MultiOp that reads the keys in [key, end) (end nil: to
// the last key), at most limit of them (0: the database's maximum).
func Range(key, end []byte, limit int) *messages.MultiOp {
	return &messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_RANGE, Key: key, RangeEnd: end, Limit: clampLimit(limit)}}}
}

// Prefix returns a MultiOp that reads the keys starting with prefix (empty:
// every key), at most limit of them (0: the database's maximum).
func Prefix(prefix []byte, limit int) *messages.MultiOp {
	return &messages.MultiOp{TOp: []*messages.Op{{Kind: messages.Op_KIND_RANGE, Key: prefix, Prefix: true, Limit: clampLimit(limit)}}}
}

func clampLimit(limit int) uint32 {
	if limit <= 0 {
		return 0
	}
	if limit > 1<<31 {
		return 1 << 31
	}
	return uint32(limit)
}

// PrefixEnd returns the first key after every key that starts with prefix,
// or nil when there is none (prefix empty or all 0xff bytes).
func PrefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// rangeBudget is what the RANGE ops of one MultiOp may still return
// together: a MultiOp of many ranges gets one page's worth, not one each.
//
// hard is what is left of the result limit (result.go) for the ranges:
// unlike bytes, not even a MultiOp's first key goes past it.
type rangeBudget struct {
	keys, bytes, hard int
	given             bool // a key was returned already: later ranges may return none
}

func (kv *KV) newRangeBudget() rangeBudget {
	return rangeBudget{keys: kv.limits.MaxRangeKeys, bytes: kv.limits.MaxRangeBytes, hard: math.MaxInt}
}

// limit leaves the ranges at most left result bytes.
func (b *rangeBudget) limit(left int) {
	b.hard = left
	b.bytes = min(b.bytes, left)
}

// rangeOf runs one validated RANGE op. The first key of a MultiOp's ranges
// is returned whatever its size, so that paging always makes progress,
// save past the result limit (a range alone always has room for one key:
// MinResultBytes).
func (kv *KV) rangeOf(o *messages.Op, budget *rangeBudget) *messages.OpResult {
	start := string(o.Key)
	end, bounded := string(o.RangeEnd), len(o.RangeEnd) > 0
	if o.Prefix {
		e := PrefixEnd(o.Key)
		end, bounded = string(e), e != nil
	}
	maxKeys, maxBytes := budget.keys, budget.bytes
	if o.Limit > 0 && int(o.Limit) < maxKeys {
		maxKeys = int(o.Limit)
	}
	if o.LimitBytes > 0 && o.LimitBytes < uint64(maxBytes) {
		maxBytes = int(o.LimitBytes)
	}
	res := &messages.OpResult{}
	used := 0
	kv.index.AscendGreaterOrEqual(start, func(k string) bool {
		if bounded && k >= end {
			return false
		}
		e, _ := kv.get(k)
		size := len(k) + len(e.value)
		if len(res.Kvs) >= maxKeys || (used+size > maxBytes && (budget.given || len(res.Kvs) > 0)) || used+size > budget.hard {
			res.More, res.NextKey = true, []byte(k)
			return false
		}
		used += size
		res.Kvs = append(res.Kvs, &messages.KeyValue{Key: []byte(k), Value: []byte(e.value),
			CreateInstance: e.create, ModInstance: e.mod, Version: e.version, Owner: e.owner})
		return true
	})
	budget.keys -= len(res.Kvs)
	budget.bytes -= min(used, budget.bytes)
	budget.hard -= used
	budget.given = budget.given || len(res.Kvs) > 0
	res.Found = len(res.Kvs) > 0
	return res
}
