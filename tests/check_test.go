package tests

import (
	"strings"
	"testing"
	"time"
)

// TestPaper6_2_MultiProcessConsistencyCheck: `livepaxos check` has every
// node checksum its database at one instance, under load, and all three
// agree; then status shows a lost node and the tolerance lost with it
// (§6.3).
func TestPaper6_2_MultiProcessConsistencyCheck(t *testing.T) {
	t.Parallel()
	c, _ := newWritableCluster(t, 3)
	l := newLedger()
	load := startLoad(c.cl, l, "load", 8, 2*time.Second)
	writeKeys(c.cl, l, "a", 300, 8)
	r := runCLI(t, c.bin, nil, "check", "--endpoints", strings.Join(c.endpoints(), ","), "--timeout", "20s")
	load.stop()
	if r.code != 0 || strings.Count(r.stdout, "agrees with the majority") != 3 {
		t.Fatalf("livepaxos check: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("%s", r.stdout)

	// §6.3: a replica that is gone (or was misspelled in --peers) is not
	// silent: status names it unreachable and counts the lost tolerance.
	r = runCLI(t, c.bin, nil, "status", "--endpoints", strings.Join(c.endpoints(), ","))
	if r.code != 0 || !strings.Contains(r.stdout, "survives 1 more failure") {
		t.Fatalf("status of a healthy group: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	c.kill(3)
	r = runCLI(t, c.bin, nil, "status", "--endpoints", strings.Join(c.endpoints(), ","))
	if !strings.Contains(r.stdout, "unreachable") || !strings.Contains(r.stdout, "survives NO further failure") {
		t.Fatalf("status with node 3 gone: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("%s", r.stdout)
}
