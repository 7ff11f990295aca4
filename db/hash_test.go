package db_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/livepaxos/livepaxos/db"
)

type pair struct{ k, v string }

func build(t *testing.T, pairs []pair) *db.KV {
	t.Helper()
	kv := db.New()
	for _, p := range pairs {
		mustExecute(t, kv, db.Put([]byte(p.k), []byte(p.v)))
	}
	return kv
}

func TestHashIndependentOfInsertionOrder(t *testing.T) {
	var pairs []pair
	for i := range 500 {
		pairs = append(pairs, pair{fmt.Sprintf("key%d", i), fmt.Sprintf("value%d", i*7)})
	}
	want := build(t, pairs).Hash()
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 5 {
		shuffled := append([]pair(nil), pairs...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := build(t, shuffled).Hash(); got != want {
			t.Fatalf("round %d: hash differs after inserting in another order", round)
		}
	}

	// Reaching the same values through overwrites and deletes does not:
	// each key's version is part of the state (guards test it).
	kv := db.New()
	mustExecute(t, kv, db.Put([]byte("tmp"), []byte("x")))
	for i := len(pairs) - 1; i >= 0; i-- {
		mustExecute(t, kv, db.Put([]byte(pairs[i].k), []byte("stale")))
		mustExecute(t, kv, db.Put([]byte(pairs[i].k), []byte(pairs[i].v)))
	}
	mustExecute(t, kv, db.Delete([]byte("tmp")))
	if kv.Hash() == want {
		t.Fatal("hash ignores the keys' versions")
	}
}

func TestHashDistinguishesContents(t *testing.T) {
	cases := [][]pair{
		nil,
		{{"a", ""}},
		{{"a", "b"}},
		{{"ab", ""}},
		{{"ab", "c"}},
		{{"a", "bc"}},
		{{"a", ""}, {"b", ""}},
		{{"a", "b"}, {"c", "d"}},
		{{"a", "b"}, {"c", ""}},
		{{"a", "bc"}, {"d", ""}},
	}
	seen := map[[32]byte]int{}
	for i, c := range cases {
		h := build(t, c).Hash()
		if j, dup := seen[h]; dup {
			t.Errorf("contents %v and %v hash the same", cases[j], c)
		}
		seen[h] = i
	}
}

func TestHashEmpty(t *testing.T) {
	kv := db.New()
	empty := kv.Hash()
	mustExecute(t, kv, db.Put([]byte("k"), nil))
	if kv.Hash() == empty {
		t.Fatal("an empty-valued key must change the hash")
	}
	mustExecute(t, kv, db.Delete([]byte("k")))
	if kv.Hash() != empty {
		t.Fatal("deleting the only key must restore the empty hash")
	}
}
