package tests

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// Issue 15 item 5: the value limit is the group's, chosen through the
// log. Nodes started with different --max-value-bytes agree on it once
// 'limits set' chose one: each reports it set at the same instance, each
// takes in values up to it whatever its own flag, and a larger one is
// refused as too large; a node restarted from a snapshot still has it.
func TestGroupValueLimitIsChosenThroughTheLog(t *testing.T) {
	t.Parallel()
	c := newClusterOpts(t, 3, clusterOpts{nodeFlags: map[int][]string{
		1: {"--max-value-bytes", "100"}, 3: {"--max-value-bytes", "1000"}}})
	c.waitWritable(30 * time.Second)
	cli := func(node int, args ...string) cliResult {
		return runCLI(t, c.bin, nil, append(args, "--endpoints", c.node(node).clientAddr, "--timeout", "20s")...)
	}
	value := func(n int) string { return strings.Repeat("v", n) }

	// No group limit yet: each node's own flag is its door check (which
	// node's refuses depends on where a request goes; Apply takes none).
	if r := cli(1, "limits", "get"); r.code != 0 || !strings.Contains(r.stdout, "max-value-bytes 100 (node 1's own") {
		t.Fatalf("limits get at node 1: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r := cli(2, "limits", "set", "--max-value-bytes", "500")
	m := regexp.MustCompile(`max-value-bytes 500 \(the group's, set at instance (\d+);`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("limits set: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	want := func(id int) string {
		return fmt.Sprintf("max-value-bytes 500 (the group's, set at instance %s; node %d)", m[1], id)
	}
	waitFor(t, 20*time.Second, "every node to apply the limit", func() error {
		for id := 1; id <= 3; id++ {
			if r := cli(id, "limits", "get"); !strings.Contains(r.stdout, want(id)) {
				return fmt.Errorf("node %d: exit %d: %s%s", id, r.code, r.stdout, r.stderr)
			}
		}
		return nil
	})
	for id := 1; id <= 3; id++ {
		if r := cli(id, "put", fmt.Sprint("k", id), value(500)); r.code != 0 {
			t.Fatalf("a 500-byte put at node %d: exit %d\n%s", id, r.code, r.stderr)
		}
		if r := cli(id, "put", "k", value(501)); r.code != 1 || !strings.Contains(r.stderr, "too large") {
			t.Fatalf("a 501-byte put at node %d: exit %d, want 1 (too large)\n%s", id, r.code, r.stderr)
		}
	}

	// Node 3 snapshots, restarts from its snapshot, and still has it.
	if r := cli(3, "snapshot"); r.code != 0 {
		t.Fatalf("snapshot: exit %d\n%s", r.code, r.stderr)
	}
	c.stop(3)
	c.start(3)
	c.waitServing(3, 30*time.Second)
	if r := cli(3, "limits", "get"); !strings.Contains(r.stdout, want(3)) {
		t.Fatalf("node 3 after a restart from its snapshot: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := cli(3, "check"); r.code != 0 {
		t.Fatalf("consistency check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// Issue 15 item 4: a transaction's result is bounded. While the group has
// set no result limit, a node refuses at its door a transaction, and a
// read, whose gets would answer more than db.DefaultMaxResultBytes, as a
// whole (its put is not applied); once 'limits set --max-result-bytes'
// chose one through the log, that one counts at every node. The client
// sees client.ErrResultTooLarge.
func TestResultLimit(t *testing.T) {
	t.Parallel()
	c, _ := newWritableCluster(t, 3)
	ctx := testContext(t, 60*time.Second)
	big := bytes.Repeat([]byte("v"), db.MaxValueBytesCeiling)
	keys := make([]string, db.DefaultMaxResultBytes/db.MaxValueBytesCeiling+1)
	for i := range keys {
		keys[i] = fmt.Sprint("big", i)
		if err := c.cl.Put(ctx, []byte(keys[i]), big); err != nil {
			t.Fatal(err)
		}
	}
	gets := func(keys []string, ops ...*messages.Op) *messages.MultiOp {
		for _, k := range keys {
			ops = append(ops, &messages.Op{Kind: messages.Op_KIND_GET, Key: []byte(k)})
		}
		return &messages.MultiOp{TOp: ops}
	}
	put := &messages.Op{Kind: messages.Op_KIND_PUT, Key: []byte("w"), Value: []byte("x")}
	if _, err := c.cl.Txn(ctx, gets(keys, put)); !errors.Is(err, client.ErrResultTooLarge) {
		t.Fatalf("a txn of %d gets of 1 MiB: %v, want ErrResultTooLarge", len(keys), err)
	}
	if _, found, err := c.cl.Get(ctx, []byte("w")); err != nil || found {
		t.Fatalf("the refused txn's put: found %v, err %v; want not applied", found, err)
	}
	if _, err := c.cl.Read(ctx, gets(keys), client.Lease); !errors.Is(err, client.ErrResultTooLarge) {
		t.Fatalf("a read of %d gets of 1 MiB: %v, want ErrResultTooLarge", len(keys), err)
	}
	if res, err := c.cl.Txn(ctx, gets(keys[1:])); err != nil || len(res.Results) != len(keys)-1 {
		t.Fatalf("a txn of %d gets of 1 MiB, at the default: %v", len(keys)-1, err)
	}

	cli := func(node int, args ...string) cliResult {
		return runCLI(t, c.bin, nil, append(args, "--endpoints", c.node(node).clientAddr, "--timeout", "20s")...)
	}
	r := cli(1, "limits", "set", "--max-result-bytes", fmt.Sprint(db.MinResultBytes))
	m := regexp.MustCompile(fmt.Sprintf(`max-result-bytes %d \(the group's, set at instance (\d+);`, db.MinResultBytes)).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("limits set: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, 20*time.Second, "every node to apply the result limit", func() error {
		for id := 1; id <= 3; id++ {
			want := fmt.Sprintf("max-result-bytes %d (the group's, set at instance %s; node %d)", db.MinResultBytes, m[1], id)
			if r := cli(id, "limits", "get"); !strings.Contains(r.stdout, want) {
				return fmt.Errorf("node %d: exit %d: %s%s", id, r.code, r.stdout, r.stderr)
			}
		}
		return nil
	})
	if _, err := c.cl.Txn(ctx, gets(keys[:2], put)); !errors.Is(err, client.ErrResultTooLarge) {
		t.Fatalf("a txn of 2 gets of 1 MiB over the group's limit: %v, want ErrResultTooLarge", err)
	}
	if res, err := c.cl.Txn(ctx, gets(keys[:1], put)); err != nil || !bytes.Equal(res.GetResults()[1].GetValue(), big) {
		t.Fatalf("a txn of one get of 1 MiB under the group's limit: %v", err)
	}
}
