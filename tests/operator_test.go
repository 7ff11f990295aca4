package tests

import (
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOperatorCommandsTellTheTruthWithNodesDown: members list, status and
// check ask every node at once, so a hung node (stopped, its port still
// open: the slowest kind of dead) listed first neither fails them nor
// hides the live ones; one endpoint is enough to see every member; they
// fail only when no node answers.
func TestOperatorCommandsTellTheTruthWithNodesDown(t *testing.T) {
	c := newCluster(t, 3)
	c.waitWritable(20 * time.Second)
	all := strings.Join(c.endpoints(), ",")
	c.waitConverged(10 * time.Second) // every client address recorded

	hung := c.node(1).cmd.Process
	if err := hung.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hung.Signal(syscall.SIGCONT) })

	state := func(out string, id string) string {
		m := regexp.MustCompile(`(?m)^` + id + `\s+\S+\s+\S+\s+\S+\s+(\S+)`).FindStringSubmatch(out)
		if m == nil {
			return ""
		}
		return m[1]
	}
	for _, eps := range []string{all, c.node(2).clientAddr} {
		r := runCLI(t, c.bin, nil, "members", "list", "--endpoints", eps)
		if r.code != 0 || state(r.stdout, "1") != "unreachable" ||
			state(r.stdout, "2") == "unreachable" || state(r.stdout, "3") == "unreachable" {
			t.Fatalf("members list --endpoints %s with node 1 hung: exit %d\n%s%s", eps, r.code, r.stdout, r.stderr)
		}
		t.Logf("members list --endpoints %s:\n%s", eps, r.stdout)
	}
	r := runCLI(t, c.bin, nil, "status", "--endpoints", c.node(3).clientAddr)
	if r.code != 0 || strings.Count(r.stdout, "127.0.0.1:") < 3 || strings.Count(r.stdout, "unreachable") < 1 {
		t.Fatalf("status through node 3 alone does not show the whole group: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, c.bin, nil, "check", "--endpoints", all, "--timeout", "15s")
	if r.code != 0 || strings.Count(r.stdout, "agrees with the majority") != 2 {
		t.Fatalf("check with node 1 hung: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	c.kill(2)
	c.kill(3)
	for _, args := range [][]string{{"members", "list"}, {"status"}} {
		r := runCLI(t, c.bin, nil, append(args, "--endpoints", strings.Join(c.endpoints()[1:], ","))...)
		if r.code != 1 || !strings.Contains(r.stderr, "no node reachable") {
			t.Fatalf("%v with every node down: exit %d, want 1 and no node reachable\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
}
