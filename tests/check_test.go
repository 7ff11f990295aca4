package tests

import (
	"strings"
	"testing"
	"time"
)

// TestPaper6_2_MultiProcessConsistencyCheck: `livepaxos check` has every
// node checksum its database at one instance, under load, and all three
// agree.
func TestPaper6_2_MultiProcessConsistencyCheck(t *testing.T) {
	c := newCluster(t, 3)
	c.waitWritable(20 * time.Second)
	l := newLedger()
	load := startLoad(c.cl, l, "load", 8, 2*time.Second)
	writeKeys(c.cl, l, "a", 300, 8)
	r := runCLI(t, c.bin, nil, "check", "--endpoints", strings.Join(c.endpoints(), ","), "--timeout", "20s")
	load.stop()
	if r.code != 0 || strings.Count(r.stdout, "agrees with the majority") != 3 {
		t.Fatalf("livepaxos check: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("%s", r.stdout)
}
