package tests

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// backupKeys is how many keys the backup test writes (issue 17's bar).
const backupKeys = 100_000

// `snapshot save` streams a consistent snapshot of a live cluster to a
// file; `restore` makes the data directories of a new 3-node cluster from
// it. The new cluster serves every key and value the backup holds, takes
// writes, and has a cluster id of its own.
func TestSnapshotSaveAndRestoreIntoANewCluster(t *testing.T) {
	t.Parallel()
	old, _ := newWritableCluster(t, 3)
	ctx := testContext(t, 2*time.Minute)
	putBackupKeys(ctx, t, old.cl, backupKeys)

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
	got := readAllKeys(ctx, t, restored.cl, "bk/")
	if len(got) != backupKeys {
		t.Fatalf("restored cluster holds %d keys under bk/, want %d", len(got), backupKeys)
	}
	for i := range backupKeys {
		k := backupKey(i)
		if got[k] != backupValue(i) {
			t.Fatalf("restored %s = %q, want %q", k, got[k], backupValue(i))
		}
	}
	if v, found, err := restored.cl.Get(ctx, []byte("after-the-backup")); err != nil || found {
		t.Fatalf("a write acknowledged after the backup, read from the restored cluster: %q, %v, %v", v, found, err)
	}
	if err := restored.cl.Put(ctx, []byte("restored/new"), []byte("y")); err != nil {
		t.Fatalf("put to the restored cluster: %v", err)
	}
	t.Logf("%d keys saved and restored into cluster %s", backupKeys, clusterID)
}

func backupKey(i int) string   { return fmt.Sprintf("bk/%06d", i) }
func backupValue(i int) string { return fmt.Sprintf("value-%d", i) }

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
