package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// Issue 17: a cluster's state saved to a file and restored into a new
// cluster, from a live cluster (snapshot save) or, after a quorum loss,
// from the most caught-up survivor (members force-shrink).

// backupKeys is how many keys the backup test writes (issue 17's bar).
const backupKeys = 100_000

// `snapshot save` streams a consistent snapshot of a live cluster to a
// file; `restore` makes the data directories of a new 3-node cluster from
// it. The new cluster serves every key and value the backup holds, takes
// writes, and has a cluster id of its own.
func TestSnapshotSaveAndRestoreIntoANewCluster(t *testing.T) {
	t.Parallel()
	old, ctx := newClusterHolding(t, backupKeys)

	backup := filepath.Join(t.TempDir(), "backup.lps")
	r := runCLI(t, old.bin, nil, "snapshot", "save", backup, "--endpoints", strings.Join(old.endpoints(), ","))
	if r.code != 0 || !strings.Contains(r.stdout, "saved "+backup) {
		t.Fatalf("snapshot save: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if err := old.cl.Put(ctx, []byte("after-the-backup"), []byte("x")); err != nil {
		t.Fatal(err)
	}

	var clusterID string
	restored := newClusterOpts(t, 3, clusterOpts{beforeStart: func(c *testCluster) {
		for _, n := range c.nodes {
			r := runCLI(t, c.bin, nil, "restore", backup, "--data", n.dataDir, "--id", strconv.Itoa(n.id), "--peers", c.peers)
			m := regexp.MustCompile(`--cluster-id (\S+)`).FindStringSubmatch(r.stdout)
			if r.code != 0 || m == nil {
				t.Fatalf("restore node %d: exit %d\n%s%s", n.id, r.code, r.stdout, r.stderr)
			}
			if clusterID != "" && m[1] != clusterID {
				t.Fatalf("restores of one backup disagree on the cluster id: %s, %s", clusterID, m[1])
			}
			clusterID = m[1]
		}
		c.extra = append(c.extra, "--cluster-id", clusterID)
	}})
	restored.waitWritable(20 * time.Second)

	oldSt, err := old.status(1)
	if err != nil {
		t.Fatal(err)
	}
	newSt, err := restored.status(1)
	if err != nil {
		t.Fatal(err)
	}
	if oldSt.ClusterId == newSt.ClusterId || newSt.ClusterId != clusterID {
		t.Fatalf("restored cluster id %q (restore said %q); the old cluster's is %q: it must differ",
			newSt.ClusterId, clusterID, oldSt.ClusterId)
	}
	checkBackupKeys(ctx, t, restored.cl, backupKeys, "the restored cluster")
	if v, found, err := restored.cl.Get(ctx, []byte("after-the-backup")); err != nil || found {
		t.Fatalf("a write acknowledged after the backup, read from the restored cluster: %q, %v, %v", v, found, err)
	}
	if err := restored.cl.Put(ctx, []byte("restored/new"), []byte("y")); err != nil {
		t.Fatalf("put to the restored cluster: %v", err)
	}
	t.Logf("%d keys saved and restored into cluster %s", backupKeys, clusterID)
}

// forceShrinkKeys is how many keys the forced-shrink test carries over.
const forceShrinkKeys = 2000

// Issue 17, quorum loss: with two of three voters gone for good, `members
// force-shrink` (refused while a majority answers, and without its
// confirmation) saves the survivor's state and an audit record; `restore`
// makes a one-voter cluster of a new id from it, which serves every key,
// takes writes, and logs at start that a forced shrink made it.
func TestForceShrinkAfterQuorumLoss(t *testing.T) {
	t.Parallel()
	old, ctx := newClusterHolding(t, forceShrinkKeys)
	dir := t.TempDir()
	file := filepath.Join(dir, "shrink.lps")
	shrink := func(endpoints []string, peers string, more ...string) cliResult {
		args := append([]string{"members", "force-shrink", file, "--endpoints", strings.Join(endpoints, ","),
			"--peers", peers}, more...)
		return runCLI(t, old.bin, nil, args...)
	}
	confirmed := []string{"--reason", "hosts 2 and 3 destroyed", "--yes-lose-writes"}

	if r := shrink(old.endpoints(), "1="+old.node(1).addr, confirmed...); r.code == 0 || !strings.Contains(r.stderr, "members remove") {
		t.Fatalf("force-shrink with every voter up: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	old.kill(2)
	old.kill(3)
	waitFor(t, 10*time.Second, "node 1 to know no master", func() error {
		st, err := old.status(1)
		if err != nil {
			return err
		}
		if st.IsMaster || st.MasterId != 0 {
			return fmt.Errorf("master %d (itself: %v)", st.MasterId, st.IsMaster)
		}
		return nil
	})
	survivor := []string{old.node(1).clientAddr}
	if r := shrink(survivor, "1="+old.node(1).addr, "--reason", "x"); r.code == 0 || !strings.Contains(r.stderr, "--yes-lose-writes") {
		t.Fatalf("force-shrink without its confirmation: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("a refused force-shrink wrote its file")
	}
	oldSt, err := old.status(1)
	if err != nil {
		t.Fatal(err)
	}

	var clusterID string
	shrunk := newClusterOpts(t, 1, clusterOpts{beforeStart: func(c *testCluster) {
		r := shrink(survivor, c.peers, confirmed...)
		if r.code != 0 || !strings.Contains(r.stdout, "livepaxos restore "+file) {
			t.Fatalf("force-shrink after losing 2 of 3 voters: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		var rec struct {
			Reason  string   `json:"reason"`
			Missing []uint32 `json:"missing_voters"`
			Source  uint32   `json:"source_node"`
		}
		b, err := os.ReadFile(file + ".audit.json")
		if err != nil || json.Unmarshal(b, &rec) != nil || rec.Reason != confirmed[1] || !slices.Equal(rec.Missing, []uint32{2, 3}) || rec.Source != 1 {
			t.Fatalf("audit record %s: %+v, %v", b, rec, err)
		}
		old.kill(1) // the operator stops the old node before restoring
		n := c.node(1)
		r = runCLI(t, c.bin, nil, "restore", file, "--data", n.dataDir, "--id", "1", "--peers", c.peers)
		m := regexp.MustCompile(`--cluster-id (\S+)`).FindStringSubmatch(r.stdout)
		if r.code != 0 || m == nil || !strings.Contains(r.stdout, "forced shrink") {
			t.Fatalf("restore: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		clusterID = m[1]
		c.extra = append(c.extra, "--cluster-id", clusterID)
	}})
	shrunk.waitWritable(20 * time.Second)
	checkBackupKeys(ctx, t, shrunk.cl, forceShrinkKeys, "the shrunk cluster")
	if err := shrunk.cl.Put(ctx, []byte("after-the-shrink"), []byte("y")); err != nil {
		t.Fatalf("put to the shrunk cluster: %v", err)
	}
	st, err := shrunk.status(1)
	if err != nil {
		t.Fatal(err)
	}
	if st.ClusterId != clusterID || st.ClusterId == oldSt.ClusterId {
		t.Fatalf("shrunk cluster id %q (restore said %q), the old one %q", st.ClusterId, clusterID, oldSt.ClusterId)
	}
	if log := shrunk.runOutput(1); !strings.Contains(log, "forced shrink") {
		t.Fatalf("the node did not log that a forced shrink made its cluster:\n%s", lastLines(log, 20))
	}
}

func backupKey(i int) string   { return fmt.Sprintf("bk/%06d", i) }
func backupValue(i int) string { return fmt.Sprintf("value-%d", i) }

// newClusterHolding starts a writable 3-node cluster and puts the n keys
// of putBackupKeys in it; the context bounds the test's calls.
func newClusterHolding(t *testing.T, n int) (*testCluster, context.Context) {
	t.Helper()
	c, _ := newWritableCluster(t, 3)
	ctx := testContext(t, 2*time.Minute)
	putBackupKeys(ctx, t, c.cl, n)
	return c, ctx
}

// putBackupKeys puts n keys, many to a MultiOp, several MultiOps at once.
func putBackupKeys(ctx context.Context, t *testing.T, cl *client.Client, n int) {
	t.Helper()
	const perTxn, workers = 1000, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := w * perTxn; start < n; start += workers * perTxn {
				op := &messages.MultiOp{}
				for i := start; i < min(start+perTxn, n); i++ {
					op.TOp = append(op.TOp, &messages.Op{Kind: messages.Op_KIND_PUT, Key: []byte(backupKey(i)), Value: []byte(backupValue(i))})
				}
				if _, err := cl.Txn(ctx, op); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writing %d keys: %v", n, err)
	}
}

// checkBackupKeys fails the test unless cl holds the n keys putBackupKeys
// wrote, each with its value, and no other key under their prefix.
func checkBackupKeys(ctx context.Context, t *testing.T, cl *client.Client, n int, what string) {
	t.Helper()
	got := readAllKeys(ctx, t, cl, "bk/")
	if len(got) != n {
		t.Fatalf("%s holds %d keys under bk/, want %d", what, len(got), n)
	}
	for i := range n {
		if k := backupKey(i); got[k] != backupValue(i) {
			t.Fatalf("%s: %s = %q, want %q", what, k, got[k], backupValue(i))
		}
	}
}

// readAllKeys reads every key under prefix, page by page.
func readAllKeys(ctx context.Context, t *testing.T, cl *client.Client, prefix string) map[string]string {
	t.Helper()
	got := map[string]string{}
	from, end := []byte(prefix), db.PrefixEnd([]byte(prefix))
	for {
		page, err := cl.Range(ctx, from, client.RangeOptions{End: end})
		if err != nil {
			t.Fatalf("range from %q: %v", from, err)
		}
		for _, kv := range page.KVs {
			got[string(kv.Key)] = string(kv.Value)
		}
		if !page.More {
			return got
		}
		from = page.Next
	}
}
