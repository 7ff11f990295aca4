package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestPaper5_4_MultiProcessGrowAndShrinkWithTheCLI changes the membership
// of three node processes with the CLI while writes go on: a fourth node
// started with --join is added as a learner and catches up, is promoted to
// voter, and then the master is removed (it hands mastership over first);
// the group goes on with the other three voters and no acknowledged write
// is lost.
func TestPaper5_4_MultiProcessGrowAndShrinkWithTheCLI(t *testing.T) {
	t.Parallel()
	c, _ := newWritableCluster(t, 3)
	l := c.written("a", 100, 8)
	members := func(args ...string) string {
		t.Helper()
		args = append([]string{"members"}, append(args, "--endpoints", strings.Join(c.endpoints(), ","), "--timeout", "20s")...)
		r := runCLI(t, c.bin, nil, args...)
		if r.code != 0 {
			t.Fatalf("livepaxos %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	role := func(id int, want string) {
		t.Helper()
		waitFor(t, 20*time.Second, fmt.Sprintf("node %d to be a %s", id, want), func() error {
			st, err := c.status(id)
			if err != nil {
				return err
			}
			if st.Role != want {
				return fmt.Errorf("role %q", st.Role)
			}
			return nil
		})
	}

	joiner := c.addJoiner()
	c.waitServing(joiner, 20*time.Second)
	members("add", fmt.Sprintf("%d=%s", joiner, c.node(joiner).addr))
	role(joiner, "learner")
	writeKeys(c.cl, l, "b", 100, 8)
	c.waitConverged(20 * time.Second)

	members("promote", fmt.Sprint(joiner))
	role(joiner, "voter")
	writeKeys(c.cl, l, "c", 100, 8)

	master := c.waitMaster(20 * time.Second)
	members("remove", fmt.Sprint(master))
	role(master, "removed")
	c.stop(master) // it is sent nothing any more
	writeKeys(c.cl, l, "d", 100, 8)
	if m := c.waitMaster(20 * time.Second); m == master {
		t.Fatalf("node %d is master after its removal", master)
	}
	list := members("list")
	if !strings.Contains(list, fmt.Sprint(joiner)) || strings.Count(list, "voter") != 3 {
		t.Errorf("members list after the changes:\n%s", list)
	}
	c.waitConverged(20 * time.Second)
	if acked, unknown, failed := l.counts(); failed > 0 || acked+unknown != 400 {
		t.Fatalf("%d acknowledged, %d unknown, %d failed of 400 writes (errors %s)", acked, unknown, failed, l.topErrors())
	}
	if lost := verifyAcked(t, c.cl, l.ackedSnapshot()); lost != 0 {
		t.Fatalf("%d acknowledged writes lost", lost)
	}
}
