package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// Issue 16, item 5, with real processes: a prefix read in order under each
// read consistency, paged by the CLI's get --prefix (--limit), and a
// compare-and-swap on a key's last-change instance refused once the key
// changed, even back to the same value (no ABA).
func TestRangeAndPrefixReads(t *testing.T) {
	t.Parallel()
	c, _ := newWritableCluster(t, 3)
	ctx := testContext(t, 30*time.Second)
	for i := 9; i >= 0; i-- {
		if err := c.cl.Put(ctx, []byte(fmt.Sprintf("lpk/%d", i)), []byte(fmt.Sprint(i*i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.cl.Put(ctx, []byte("lpl"), []byte("outside")); err != nil {
		t.Fatal(err)
	}
	c.waitConverged(10 * time.Second)
	for _, cons := range []client.Consistency{client.Lease, client.Quorum, client.Stale} {
		page, err := c.cl.Range(ctx, []byte("lpk/"), client.RangeOptions{Prefix: true, Consistency: cons})
		if err != nil {
			t.Fatalf("%v: %v", cons, err)
		}
		if len(page.KVs) != 10 || page.More || page.Applied == 0 {
			t.Fatalf("%v: %d keys, more %v, applied %d", cons, len(page.KVs), page.More, page.Applied)
		}
		for i, kv := range page.KVs {
			if string(kv.Key) != fmt.Sprintf("lpk/%d", i) || kv.Version != 1 || kv.CreateInstance != kv.ModInstance || kv.ModInstance > page.Applied {
				t.Fatalf("%v: key %d = %v", cons, i, kv)
			}
		}
	}
	eps := strings.Join(c.endpoints(), ",")
	r := runCLI(t, c.bin, nil, "get", "--endpoints", eps, "--prefix", "lpk/", "--limit", "3")
	if r.code != 0 || r.stdout != "lpk/0\t0\nlpk/1\t1\nlpk/2\t4\n" {
		t.Fatalf("get --prefix --limit 3: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, c.bin, nil, "get", "--endpoints", eps, "--prefix", "lp"); r.code != 0 || strings.Count(r.stdout, "\n") != 11 {
		t.Fatalf("get --prefix lp: %d %q %q", r.code, r.stdout, r.stderr)
	}

	// No ABA: the key is changed and changed back; a swap guarded by the
	// instance read before is refused, one guarded by the new one applies.
	key := []byte("lpk/3")
	page, err := c.cl.Range(ctx, key, client.RangeOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	seen := page.KVs[0].ModInstance
	for _, v := range []string{"x", "9"} {
		if err := c.cl.Put(ctx, key, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	swap := func(mod uint64) bool {
		res, err := c.cl.Txn(ctx, &messages.MultiOp{Guard: []*messages.Test{db.ModInstanceIs(key, mod)},
			TOp: []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: key, Value: []byte("swapped")}},
			FOp: []*messages.Op{{Kind: messages.Op_KIND_GET, Key: key}}})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Succeeded {
			if g := res.Results[0]; g.Version != 3 || string(g.Value) != "9" {
				t.Fatalf("the failed swap read %v", g)
			}
		}
		return res.Succeeded
	}
	if swap(seen) {
		t.Fatal("a swap guarded by a stale mod instance applied (ABA)")
	}
	_, found, err := c.cl.Get(ctx, key)
	if err != nil || !found {
		t.Fatal(err)
	}
	page, err = c.cl.Range(ctx, key, client.RangeOptions{Limit: 1})
	if err != nil || !swap(page.KVs[0].ModInstance) {
		t.Fatalf("a swap guarded by the current mod instance did not apply (%v)", err)
	}
}
