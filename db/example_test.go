package db_test

import (
	"fmt"

	"github.com/livepaxos/livepaxos/db"
)

func ExampleCompareAndSwap() {
	kv := db.New()
	kv.Execute(db.Put([]byte("leader"), []byte("node-1")))

	// Succeeds: the current value is the expected one.
	res := kv.Execute(db.CompareAndSwap([]byte("leader"), []byte("node-1"), []byte("node-2")))
	fmt.Println(res.Succeeded)

	// Fails: f_op reads the key, so the result carries the current value.
	res = kv.Execute(db.CompareAndSwap([]byte("leader"), []byte("node-1"), []byte("node-3")))
	fmt.Println(res.Succeeded, string(res.Results[0].Value))

	// old == nil means "only if absent".
	res = kv.Execute(db.CompareAndSwap([]byte("lock"), nil, []byte("mine")))
	fmt.Println(res.Succeeded)
	// Output:
	// true
	// false node-2
	// true
}

func ExampleKV_Apply() {
	kv := db.New()
	_, err := kv.Apply(1, []byte("not a MultiOp"))
	fmt.Println(err != nil, kv.Len(), kv.LastApplied())
	// Output:
	// true 0 1
}
