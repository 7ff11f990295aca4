package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/internal/testwait"
	"github.com/livepaxos/livepaxos/messages"
)

// TestMain removes the binary built by livepaxosBin, which outlives any one
// test because every test shares it.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtBinDir != "" {
		os.RemoveAll(builtBinDir)
	}
	os.Exit(code)
}

var (
	buildOnce   sync.Once
	builtBin    string
	builtBinDir string
	buildErr    error
)

// livepaxosBin returns the binary under test: $LIVEPAXOS_BIN, or one built
// once per test binary run. It is built into a directory of its own rather
// than a t.TempDir(), which would vanish when the first test using it ends.
func livepaxosBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LIVEPAXOS_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("LIVEPAXOS_BIN=%s: %v", p, err)
		}
		return p
	}
	buildOnce.Do(func() {
		// go test puts its own GOROOT/bin first on the test's PATH.
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("LIVEPAXOS_BIN is unset and there is no go command to build it: %v", err)
			return
		}
		dir, err := os.MkdirTemp("", "livepaxos-tests-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBinDir = dir
		out := filepath.Join(dir, "livepaxos")
		cmd := exec.Command(goTool, "build", "-o", out, "github.com/livepaxos/livepaxos/cmd/livepaxos")
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, b)
			return
		}
		builtBin = out
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// freePorts picks n distinct free loopback ports for nodes to bind, below
// the kernel's ephemeral range (32768 and up on Linux): a port the kernel
// hands out for ":0" listeners and outgoing connections, in this or another
// test process, could be taken between our check and the node's bind, or
// while a node is down between restarts. The listeners stay open until all
// n are chosen. A node keeps its port across restarts (its address is part
// of --peers), so ports are chosen once per cluster.
//
// The tests run in parallel, so a port is also never handed out twice in
// this process: a port one test chose is free until its node binds it, and
// another test's check would find it free too.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	const lo, hi = 25000, 32000 // peerbench uses 23791-23841
	handedOut.Lock()
	defer handedOut.Unlock()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			t.Fatalf("no free port in %d-%d", lo, hi)
		}
		port := lo + rand.IntN(hi-lo)
		if handedOut.ports[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken
		}
		defer l.Close()
		handedOut.ports[port] = true
		ports = append(ports, port)
	}
	return ports
}

// handedOut is every port freePorts chose in this test process.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// errNotYet is what a waitFor condition returns while nothing is wrong but
// the awaited event has not happened.
var errNotYet = errors.New("not yet")

// waitFor polls cond until it returns nil or within passes; then it fails
// the test with cond's last error. Tests wait on conditions, never on fixed
// sleeps, so a slow machine costs time rather than a false failure.
func waitFor(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	testwait.For(t, within, 25*time.Millisecond, what, cond)
}

// nodeProc is one node of a testCluster, across its restarts.
type nodeProc struct {
	id         int
	addr       string // peer address
	clientAddr string // client API address
	host       string // the lab host it runs on ("" on this machine)
	// metricsAddr, when set, is where the node serves its metrics.
	metricsAddr string
	dataDir     string
	logPath     string // every run appends here, after a banner

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current run has exited
	exitErr  error         // of the current run, once done is closed
	runStart int64         // offset in logPath where the current run begins
	runs     int
	join     bool     // started with --join: in no member list (see addJoiner)
	extra    []string // this node's own flags, after the cluster's
}

// testCluster is a set of node processes sharing one --peers list.
type testCluster struct {
	t     *testing.T
	bin   string
	dir   string
	peers string
	extra []string // appended to every node's flags
	nodes []*nodeProc
	cl    *client.Client
	// lab, when set, runs each node on its own lab host (a network
	// namespace; see newLabCluster).
	lab *netLab
	// certs, when set, puts both ports of every node under TLS.
	certs *testCerts
}

// newCluster picks ports and directories for n nodes and starts them all.
// Everything it starts is killed when the test ends, and on failure the tail
// of every node's log is printed.
func newCluster(t *testing.T, n int, extra ...string) *testCluster {
	t.Helper()
	return newClusterOpts(t, n, clusterOpts{}, extra...)
}

// newWritableCluster is newCluster, waited on (up to 20 s) until a master
// accepts commands; it returns the master's id too.
func newWritableCluster(t *testing.T, n int, extra ...string) (*testCluster, int) {
	t.Helper()
	c := newCluster(t, n, extra...)
	return c, c.waitWritable(20 * time.Second)
}

// testContext bounds a test's calls to d in all; it ends with the test.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// clusterOpts are what some tests need of a cluster beyond flags.
type clusterOpts struct {
	// metrics: every node serves its Prometheus metrics (see metric).
	metrics bool
	// tls: both ports of every node under TLS, client certificates
	// required (newTestCerts), the test's client with client.crt.
	tls bool
	// dataRoot, if set, holds the nodes' data directories (default: the
	// test's temporary directory).
	dataRoot string
	// beforeStart, if set, runs once the nodes' ports and directories are
	// picked, before any starts (c.peers names them all).
	beforeStart func(c *testCluster)
	// nodeFlags, if set, are node id's own flags (ids from 1).
	nodeFlags map[int][]string
}

func newClusterOpts(t *testing.T, n int, opts clusterOpts, extra ...string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, bin: livepaxosBin(t), dir: t.TempDir(), extra: extra}
	if opts.tls {
		hosts := make([]string, n)
		for i := range hosts {
			hosts[i] = "127.0.0.1"
		}
		c.certs = newTestCerts(t, hosts)
	}
	dataRoot := c.dir
	if opts.dataRoot != "" {
		dataRoot = opts.dataRoot
	}
	ports := freePorts(t, 3*n)
	for i := 1; i <= n; i++ {
		np := &nodeProc{
			id:         i,
			addr:       net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[3*i-3])),
			clientAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[3*i-2])),
			dataDir:    filepath.Join(dataRoot, fmt.Sprintf("n%d", i)),
			logPath:    filepath.Join(c.dir, fmt.Sprintf("n%d.log", i)),
			extra:      opts.nodeFlags[i],
		}
		if opts.metrics {
			np.metricsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[3*i-1]))
		}
		c.nodes = append(c.nodes, np)
	}
	c.peers = c.peerList()
	if opts.beforeStart != nil {
		opts.beforeStart(c)
	}
	c.startAll()
	return c
}

// peerList is the --peers value naming every node.
func (c *testCluster) peerList() string {
	var peers []string
	for _, n := range c.nodes {
		peers = append(peers, fmt.Sprintf("%d=%s", n.id, n.addr))
	}
	return strings.Join(peers, ",")
}

// startAll starts every node and makes the test's client.
func (c *testCluster) startAll() {
	t := c.t
	c.peers = c.peerList()
	t.Cleanup(c.stopAll)
	for _, n := range c.nodes {
		c.start(n.id)
	}
	// A request that reached a node which then died, or that a node
	// forwarded to a master which died, gets no answer: only the attempt
	// timeout ends it. 2 s instead of the default 5 s keeps the tests that
	// kill nodes quick; it is still far above a write's latency here.
	cl, err := client.New(client.Config{Endpoints: c.endpoints(), AttemptTimeout: 2 * time.Second, TLS: c.clientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	c.cl = cl
}

// stopAll is the cleanup: SIGKILL whatever still runs (by PID), close the
// client, and show the logs if the test failed.
func (c *testCluster) stopAll() {
	for _, n := range c.nodes {
		n.mu.Lock()
		cmd, done := n.cmd, n.done
		n.mu.Unlock()
		if cmd == nil {
			continue
		}
		select {
		case <-done:
		default:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
		}
	}
	if c.cl != nil {
		c.cl.Close()
	}
	if c.t.Failed() {
		for _, n := range c.nodes {
			c.t.Logf("---- tail of node %d log (%s) ----\n%s", n.id, n.logPath, tail(n.logPath, 40))
		}
	}
}

func (c *testCluster) node(id int) *nodeProc { return c.nodes[id-1] }

// addJoiner starts one more node, in no member list (node --join), and
// returns its id: it follows the log once `members add` adds it.
func (c *testCluster) addJoiner() int {
	c.t.Helper()
	id := len(c.nodes) + 1
	ports := freePorts(c.t, 2)
	c.nodes = append(c.nodes, &nodeProc{
		id: id, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), join: true,
		clientAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		dataDir:    filepath.Join(c.dir, fmt.Sprintf("n%d", id)),
		logPath:    filepath.Join(c.dir, fmt.Sprintf("n%d.log", id)),
	})
	c.start(id)
	return id
}

// endpoints are the nodes' client addresses.
func (c *testCluster) endpoints() []string {
	var eps []string
	for _, n := range c.nodes {
		eps = append(eps, n.clientAddr)
	}
	return eps
}

// nodeArgs are the flags of node id; a restart uses the same ones.
func (c *testCluster) nodeArgs(id int) []string {
	n := c.node(id)
	args := []string{"node", "--id", strconv.Itoa(id), "--peers", c.peers, "--data", n.dataDir, "--log-level", "info",
		"--client-listen", n.clientAddr}
	if n.join {
		args = append(args, "--join", "--listen", n.addr)
	}
	args = append(args, c.tlsArgs(n)...)
	if n.metricsAddr != "" {
		args = append(args, "--metrics", n.metricsAddr)
	}
	return append(append(args, c.extra...), n.extra...)
}

// start runs node id (again), appending its output to its log. It does not
// wait for the node to serve: see waitServing.
func (c *testCluster) start(id int) {
	c.t.Helper()
	n := c.node(id)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		select {
		case <-n.done:
		default:
			c.t.Fatalf("node %d is already running (pid %d)", id, n.cmd.Process.Pid)
		}
	}
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	n.runs++
	fmt.Fprintf(f, "==== run %d of node %d: %s %s ====\n", n.runs, id, c.bin, strings.Join(c.nodeArgs(id), " "))
	off, _ := f.Seek(0, io.SeekEnd)
	cmd := exec.Command(c.bin, c.nodeArgs(id)...)
	if c.lab != nil {
		cmd = c.lab.Command(context.Background(), n.host, c.bin, c.nodeArgs(id)...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		c.t.Fatalf("start node %d: %v", id, err)
	}
	done := make(chan struct{})
	n.cmd, n.done, n.exitErr, n.runStart = cmd, done, nil, off
	go func() {
		err := cmd.Wait()
		f.Close()
		n.mu.Lock()
		n.exitErr = err
		n.mu.Unlock()
		close(done)
	}()
}

// signal sends sig to node id's process, by PID, and waits for it to exit.
func (c *testCluster) signal(id int, sig syscall.Signal) {
	c.t.Helper()
	n := c.node(id)
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		c.t.Fatalf("node %d was never started", id)
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		c.t.Fatalf("signal node %d: %v", id, err)
	}
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		c.t.Fatalf("node %d (pid %d) did not exit within 15s of %v", id, cmd.Process.Pid, sig)
	}
}

func (c *testCluster) kill(id int) { c.signal(id, syscall.SIGKILL) }
func (c *testCluster) stop(id int) { c.signal(id, syscall.SIGTERM) }

// running reports whether node id's current run has not exited.
func (c *testCluster) running(id int) bool {
	n := c.node(id)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// waitExit waits for node id's current run to exit on its own and returns
// its exit code and what it printed.
func (c *testCluster) waitExit(id int, within time.Duration) (int, string) {
	c.t.Helper()
	n := c.node(id)
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	select {
	case <-done:
	case <-time.After(within):
		c.t.Fatalf("node %d still running after %v; log:\n%s", id, within, c.runOutput(id))
	}
	n.mu.Lock()
	err := n.exitErr
	n.mu.Unlock()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("node %d: wait: %v", id, err)
	}
	return code, c.runOutput(id)
}

// runOutput is what node id's current run has printed so far.
func (c *testCluster) runOutput(id int) string {
	n := c.node(id)
	n.mu.Lock()
	off := n.runStart
	n.mu.Unlock()
	b, err := os.ReadFile(n.logPath)
	if err != nil || int64(len(b)) < off {
		return ""
	}
	return string(b[off:])
}

// status asks node id for its status, briefly.
func (c *testCluster) status(id int) (*messages.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.cl.Status(ctx, c.node(id).clientAddr)
}

// waitServing waits until node id answers status requests.
func (c *testCluster) waitServing(id int, within time.Duration) {
	c.t.Helper()
	waitFor(c.t, within, fmt.Sprintf("node %d to answer status", id), func() error {
		if !c.running(id) {
			c.t.Fatalf("node %d exited; log:\n%s", id, c.runOutput(id))
		}
		_, err := c.status(id)
		return err
	})
}

// rejoin restarts node id and waits until it serves and agrees with the
// others on a master. A master that sent to the node while it was down
// retries its connection only every 2 s (protoactor's endpoint writer), so
// the restarted node often hears no heartbeat before its election timeout;
// its pre-vote is then refused by the others, who hear the master, but
// tests that need a stable master still wait for agreement before writing.
func (c *testCluster) rejoin(id int, within time.Duration) (master int) {
	c.t.Helper()
	c.start(id)
	c.waitServing(id, within)
	return c.waitMaster(within)
}

// followers returns the two nodes of a 3-node cluster that are not master.
func (c *testCluster) followers(master int) (a, b int) {
	for id := 1; id <= 3; id++ {
		switch {
		case id == master:
		case a == 0:
			a = id
		default:
			b = id
		}
	}
	return a, b
}

// victimFollower waits until every node has applied the same log, then
// picks the follower a test damages (victim, with its data directory) and
// the other follower, which the test stops later to show that the victim
// votes again. Damaging a follower costs no election.
func (c *testCluster) victimFollower(master int) (victim, other int, dir string) {
	c.t.Helper()
	c.waitConverged(10 * time.Second)
	victim, other = c.followers(master)
	return victim, other, c.node(victim).dataDir
}

// waitWritable waits until a master accepts a command through the log (a
// Get goes through the log, so it proves the same as a write, and is safe
// to retry) and returns the master's id.
func (c *testCluster) waitWritable(within time.Duration) int {
	c.t.Helper()
	waitFor(c.t, within, "a master that accepts commands", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _, err := c.cl.Get(ctx, []byte("tests/ready-probe"))
		return err
	})
	return c.waitMaster(within)
}

// eachRunningStatus asks every running node for its status, in order, and
// hands it to fn; it stops at the first error (a node that does not answer,
// or fn's).
func (c *testCluster) eachRunningStatus(fn func(id int, st *messages.StatusResponse) error) error {
	for _, n := range c.nodes {
		if !c.running(n.id) {
			continue
		}
		st, err := c.status(n.id)
		if err != nil {
			return err
		}
		if err := fn(n.id, st); err != nil {
			return err
		}
	}
	return nil
}

// waitMaster waits until exactly one running node says it is master and
// every running node agrees who it is.
func (c *testCluster) waitMaster(within time.Duration) int {
	c.t.Helper()
	master := 0
	waitFor(c.t, within, "one master all running nodes agree on", func() error {
		master = 0
		agreed := uint32(0)
		err := c.eachRunningStatus(func(id int, st *messages.StatusResponse) error {
			if st.IsMaster {
				if master != 0 {
					return fmt.Errorf("nodes %d and %d both say they are master", master, id)
				}
				master = id
			}
			if agreed == 0 {
				agreed = st.MasterId
			}
			if st.MasterId == 0 || st.MasterId != agreed {
				return fmt.Errorf("node %d believes the master is %d, another node %d", id, st.MasterId, agreed)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if master == 0 || uint32(master) != agreed {
			return fmt.Errorf("no node says it is master (agreed master id %d)", agreed)
		}
		return nil
	})
	return master
}

// waitConverged waits until every running node reports the same, non-zero
// LastApplied and LastChosen, with every member's client address recorded
// (the nodes record theirs through the log after they start, which moves
// the log), and returns it.
func (c *testCluster) waitConverged(within time.Duration) uint64 {
	c.t.Helper()
	var applied uint64
	waitFor(c.t, within, "every running node to apply the same log prefix", func() error {
		var seen []string
		applied = 0
		same := true
		err := c.eachRunningStatus(func(id int, st *messages.StatusResponse) error {
			seen = append(seen, fmt.Sprintf("n%d chosen=%d applied=%d", id, st.LastChosen, st.LastApplied))
			if st.LastApplied != st.LastChosen {
				same = false
			}
			for _, m := range st.Members {
				if m.ClientAddress == "" {
					same = false
					seen = append(seen, fmt.Sprintf("n%d's client address not recorded yet", m.Id))
				}
			}
			if applied == 0 {
				applied = st.LastApplied
			} else if st.LastApplied != applied {
				same = false
			}
			return nil
		})
		if err != nil {
			return err
		}
		if !same || applied == 0 {
			return fmt.Errorf("not converged: %s", strings.Join(seen, ", "))
		}
		return nil
	})
	return applied
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return lastLines(string(b), n)
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cliResult is the outcome of one short-lived CLI run.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs the livepaxos binary with args (and stdin, if not nil) and
// returns its exit status and output.
func runCLI(t *testing.T, bin string, stdin []byte, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	res := cliResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("livepaxos %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// snapshotDir returns the bytes of every regular file under dir, by relative
// path, to show that a refused start touched nothing.
func snapshotDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[rel] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// diffSnapshots describes how two snapshots differ ("" if they do not).
func diffSnapshots(before, after map[string][]byte) string {
	var d []string
	for name, b := range before {
		a, ok := after[name]
		switch {
		case !ok:
			d = append(d, name+" removed")
		case !bytes.Equal(a, b):
			d = append(d, fmt.Sprintf("%s changed (%d -> %d bytes)", name, len(b), len(a)))
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			d = append(d, name+" created")
		}
	}
	return strings.Join(d, "; ")
}

// metric returns the sum of the samples of metric name (every label set)
// that node id serves, and whether it serves any.
func (c *testCluster) metric(id int, name string) (float64, bool) {
	c.t.Helper()
	addr := c.node(id).metricsAddr
	if addr == "" {
		c.t.Fatalf("node %d serves no metrics (newClusterOpts with metrics)", id)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sum, found := 0.0, false
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		fields := strings.Fields(line)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
			sum, found = sum+v, true
		}
	}
	return sum, found
}
