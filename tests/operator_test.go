package tests

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The operator's commands and probes on real processes: check and status
// (§6.2, §6.3); members add, promote, remove and list (§5.4), with nodes
// up and down; health, /readyz and the status page; a restart by SIGTERM
// and members transfer-mastership.

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

// TestOperatorCommandsTellTheTruthWithNodesDown: members list, status and
// check ask every node at once, so a hung node (stopped, its port still
// open: the slowest kind of dead) listed first neither fails them nor
// hides the live ones; one endpoint is enough to see every member; they
// fail only when no node answers.
func TestOperatorCommandsTellTheTruthWithNodesDown(t *testing.T) {
	t.Parallel()
	c, _ := newWritableCluster(t, 3)
	all := strings.Join(c.endpoints(), ",")
	c.waitConverged(10 * time.Second) // every client address recorded

	c.pause(1)

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

// pause stops node id's process (SIGSTOP) without ending it: its ports stay
// open and answer nothing, as a hung or cut-off node's do. The test's end
// resumes it, so that it can be killed.
func (c *testCluster) pause(id int) {
	c.t.Helper()
	n := c.node(id)
	n.mu.Lock()
	p := n.cmd.Process
	n.mu.Unlock()
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { p.Signal(syscall.SIGCONT) })
}

// resume continues a paused node.
func (c *testCluster) resume(id int) {
	n := c.node(id)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cmd.Process.Signal(syscall.SIGCONT)
}

// readyz returns node id's /readyz status code and body.
func (c *testCluster) readyz(id int) (int, string) {
	resp, err := http.Get("http://" + c.node(id).metricsAddr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReadyzHealthAndStatusPage: /readyz on the metrics port is 200 on
// every node of a healthy group; the metrics a dashboard needs are fed; the
// status page, rendered by headless Chromium, names the master and every
// member, and the new master once the old one is killed; a node then cut
// off from the others (the master dead, the third hung) answers 503 on
// /readyz and NOT_SERVING on the gRPC health service (livepaxos health),
// while /livez and health --live still pass; healed, it is ready again.
func TestReadyzHealthAndStatusPage(t *testing.T) {
	t.Parallel()
	c := newClusterOpts(t, 3, clusterOpts{metrics: true})
	c.waitWritable(20 * time.Second)
	for id := 1; id <= 3; id++ {
		waitFor(t, 10*time.Second, fmt.Sprintf("node %d ready", id), func() error {
			if code, body := c.readyz(id); code != http.StatusOK {
				return fmt.Errorf("readyz %d:\n%s", code, body)
			}
			return nil
		})
	}
	if r := runCLI(t, c.bin, nil, "health", "--endpoints", strings.Join(c.endpoints(), ",")); r.code != 0 {
		t.Fatalf("health of a healthy group: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The histograms a dashboard needs are fed.
	master := c.waitMaster(5 * time.Second)
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := c.cl.Put(ctx, []byte(fmt.Sprintf("m/%d", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	for _, name := range []string{"livepaxos_commit_duration_seconds_count", "livepaxos_wal_fsync_duration_seconds_count",
		"livepaxos_apply_duration_seconds_count", "livepaxos_wal_batch_records_count", "livepaxos_client_request_duration_seconds_count",
		"livepaxos_ready", "livepaxos_disk_free_bytes"} {
		if v, ok := c.metric(master, name); !ok || v == 0 {
			t.Errorf("master %d: %s = %v (served: %v)", master, name, v, ok)
		}
	}
	// The status page, in a real browser, on a node that is not master:
	// it names the master and every member; once the master is killed it
	// shows the new one and the old one unreachable.
	x, y := c.followers(master)
	chromium := browser(t)
	page := "http://" + c.node(x).metricsAddr + "/status"
	shown := func(dom string) (int, []string) {
		m := regexp.MustCompile(`id="master">node (\d+)</b>`).FindStringSubmatch(dom)
		if m == nil {
			return 0, nil
		}
		id, _ := strconv.Atoi(m[1])
		return id, regexp.MustCompile(`data-node="(\d+)"`).FindAllString(dom, -1)
	}
	if chromium != "" {
		dom := renderedDOM(t, chromium, page)
		if id, cards := shown(dom); id != master || len(cards) != 3 {
			t.Fatalf("status page of node %d names master %d and %d members, want %d and 3:\n%s", x, id, len(cards), master, lastLines(dom, 40))
		}
	}
	c.kill(master)
	if chromium != "" {
		waitFor(t, 20*time.Second, "the status page showing the new master", func() error {
			dom := renderedDOM(t, chromium, page)
			id, cards := shown(dom)
			old := strings.Contains(dom, fmt.Sprintf(`data-node="%d"><h2>node %d</h2><dl><dt>state</dt><dd><span class="bad">unreachable`, master, master))
			if id == 0 || id == master || len(cards) != 3 || !old {
				return fmt.Errorf("page names master %d, %d members, old master %d unreachable: %v", id, len(cards), master, old)
			}
			return nil
		})
	}

	// Node x cut off: the master is dead and y hangs.
	c.pause(y)
	waitFor(t, 10*time.Second, "node x not ready once cut off", func() error {
		if code, body := c.readyz(x); code != http.StatusServiceUnavailable || !strings.Contains(body, "[-]master") {
			return fmt.Errorf("readyz %d:\n%s", code, body)
		}
		return nil
	})
	resp, err := http.Get("http://" + c.node(x).metricsAddr + "/livez")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("livez of a live node cut off: %v %v", resp, err)
	}
	resp.Body.Close()
	waitFor(t, 5*time.Second, "gRPC health NOT_SERVING", func() error {
		if r := runCLI(t, c.bin, nil, "health", "--endpoints", c.node(x).clientAddr); r.code != 1 || !strings.Contains(r.stdout, "NOT ready") {
			return fmt.Errorf("health: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		return nil
	})
	if r := runCLI(t, c.bin, nil, "health", "--live", "--endpoints", c.node(x).clientAddr); r.code != 0 {
		t.Fatalf("health --live of a live node cut off: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	c.resume(y)
	waitFor(t, 15*time.Second, "node x ready again", func() error {
		if code, body := c.readyz(x); code != http.StatusOK {
			return fmt.Errorf("readyz %d:\n%s", code, body)
		}
		return nil
	})
}

// TestRestartHandsMastershipOver: SIGTERM to the master (a restart, a
// deploy) hands mastership to another voter before the node stops, so
// writes under load stall for a few message rounds instead of a
// fail-over's election timeout and the rest of the lease, and none fails; `members transfer-mastership` does the
// same on demand. The node restarts (replaying a consistency check's
// value) and catches up.
func TestRestartHandsMastershipOver(t *testing.T) {
	// Not in parallel with the other multi-process tests: under their load
	// a follower's connection to the new master was seen refused for a
	// moment right after the handover (cause not found yet), and the one
	// write forwarded over it ended outcome unknown.
	c, old := newWritableCluster(t, 3)
	// A checksum value in the log: the restart below replays it before the
	// node's actors run (once a crash on every restart after a check).
	if r := runCLI(t, c.bin, nil, "check", "--endpoints", strings.Join(c.endpoints(), ",")); r.code != 0 {
		t.Fatalf("check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	c.waitConverged(10 * time.Second)

	var mu sync.Mutex
	var last time.Time
	var gap time.Duration
	var failed []error
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := c.cl.Put(ctx, []byte(fmt.Sprintf("restart/%d", i%100)), []byte("v"))
			cancel()
			mu.Lock()
			now := time.Now()
			if err != nil {
				failed = append(failed, err)
			} else {
				if !last.IsZero() {
					gap = max(gap, now.Sub(last))
				}
				last = now
			}
			mu.Unlock()
		}
	}()
	waitFor(t, 5*time.Second, "writes under way", func() error {
		mu.Lock()
		defer mu.Unlock()
		if last.IsZero() {
			return fmt.Errorf("no write yet")
		}
		return nil
	})
	c.stop(old)
	waitFor(t, 5*time.Second, "writes after the stop", func() error {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) > 100*time.Millisecond {
			return fmt.Errorf("last write %v ago", time.Since(last))
		}
		return nil
	})
	close(stop)
	<-done
	out := c.runOutput(old)
	if !strings.Contains(out, "handed mastership over before stopping") {
		t.Fatalf("node %d stopped without handing mastership over:\n%s", old, lastLines(out, 20))
	}
	// A handover stalls writes a few message rounds; the bound leaves room
	// for a loaded machine. (A fail-over, about 0.83 s with the default
	// 800 ms lease, fits in it too: what tells the two apart here is the
	// log line above and that no write failed.)
	if len(failed) > 0 || gap > time.Second {
		t.Fatalf("SIGTERM to the master: longest write stall %v, %d writes failed (first: %v)", gap, len(failed), failed)
	}
	t.Logf("SIGTERM to master %d: longest write stall %v, no write failed", old, gap)

	c.start(old)
	c.waitServing(old, 10*time.Second)
	next := c.waitMaster(10 * time.Second)
	r := runCLI(t, c.bin, nil, "members", "transfer-mastership", strconv.Itoa(old), "--endpoints", strings.Join(c.endpoints(), ","))
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("node %d is master", old)) {
		t.Fatalf("members transfer-mastership %d (master %d): exit %d\n%s%s", old, next, r.code, r.stdout, r.stderr)
	}
	if got := c.waitMaster(5 * time.Second); got != old {
		t.Fatalf("master %d after a transfer to %d", got, old)
	}
}
