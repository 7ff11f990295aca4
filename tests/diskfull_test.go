package tests

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/client"
)

// A full disk does not take the group down: three nodes whose data
// directories share a small file system (a tmpfs of this test's) refuse
// writes with "no space" once it runs under --min-free-bytes, go on serving
// reads and status (which shows the alarm), and take writes again once
// space is freed. (Before, all three exited at once when the next log
// segment could not be preallocated.)
func TestDiskFullRefusesWritesAndRecovers(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	root := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=600m", "lpdisk", root).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	// Registered first, so it runs after the cluster's own cleanup.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", root).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", root, err, out)
		}
	})
	const minFree = 350 << 20
	c := newClusterOpts(t, 3, clusterOpts{dataRoot: root}, "--min-free-bytes", fmt.Sprint(minFree))
	c.waitWritable(30 * time.Second)
	ctx := context.Background()
	if err := c.cl.Put(ctx, []byte("before"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	// Take the file system under the bound: the three segments (3 x 64
	// MiB) and this filler leave about 308 MiB of 600.
	filler := filepath.Join(root, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, 100<<20); err != nil {
		t.Fatalf("fallocate filler: %v", err)
	}
	f.Close()
	waitFor(t, 20*time.Second, "writes refused for want of space", func() error {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err := c.cl.Put(wctx, []byte("while-full"), []byte("x"))
		if !errors.Is(err, client.ErrNoSpace) {
			return fmt.Errorf("put: %v", err)
		}
		return nil
	})
	master := c.waitMaster(10 * time.Second)
	if st, err := c.status(master); err != nil || !st.DiskLow || st.DiskFreeBytes >= minFree {
		t.Fatalf("status of the master with a full disk: %v %v", st, err)
	}
	if v, _, err := c.cl.Get(ctx, []byte("before")); err != nil || string(v) != "1" {
		t.Fatalf("a read with a full disk: %q, %v", v, err)
	}
	for _, n := range c.nodes {
		if !c.running(n.id) {
			t.Fatalf("node %d exited with a full disk; log:\n%s", n.id, tail(n.logPath, 20))
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "writes taken again once space was freed", func() error {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return c.cl.Put(wctx, []byte("after"), []byte("2"))
	})
}
