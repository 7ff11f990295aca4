package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The self-test drives small TCP agents, one per namespace host: the test
// binary itself, re-executed through lab.Command in helper mode.
const (
	netLabAgentEnv  = "LIVEPAXOS_NETLAB_AGENT" // the agent's host name
	netLabAgentPort = "7070"                   // every namespace has its own ports
	// netLabCutWait is how long a dial or read that must fail waits; a cut
	// drops packets, so failing means timing out, never being refused.
	netLabCutWait = 300 * time.Millisecond
	netLabOKWait  = 3 * time.Second
)

// TestNetLab_CutIsolateHealCleanup checks the lab against real TCP traffic:
// hosts reach each other and the root host; CutFrom stops the connections
// one host opens to another, new and established, and nothing else; Isolate
// cuts a host off both ways; Heal restores everything, stalled connections
// included; processes started with lab.Command are the programs themselves
// (signals by PID reach them) and run in their host's namespace; and the
// lab's cleanup leaves no process, namespace, link, route or rule behind.
func TestNetLab_CutIsolateHealCleanup(t *testing.T) {
	t.Parallel()
	var (
		lab      *netLab
		agents   = map[string]*netLabAgent{}
		skipped  bool
		bodyDone time.Time
	)
	// The agents' stdin stays open until the lab's cleanup has killed them:
	// closed, it would end them by itself.
	defer func() {
		for _, a := range agents {
			a.stdin.Close()
		}
	}()
	ok := t.Run("lab", func(t *testing.T) {
		defer func() { skipped, bodyDone = t.Skipped(), time.Now() }()
		lab = newNetLab(t, "n1", "n2", "n3", "client")
		root := newNetLabRootListener(t, lab)

		for _, h := range []string{"n1", "n2", "n3", "client"} {
			agents[h] = startNetLabAgent(t, lab, h)
		}
		dial := func(from, to string, within time.Duration) string {
			port := netLabAgentPort
			if to == netLabRoot {
				port = root.port
			}
			addr := net.JoinHostPort(lab.IP(to), port)
			if from == netLabRoot {
				return netLabDial(addr, within)
			}
			return agents[from].do(t, "dial %s %d", addr, within.Milliseconds())
		}
		reach := func(from, to string) {
			t.Helper()
			if got, want := dial(from, to, netLabOKWait), "ok hello "+to; got != want {
				t.Errorf("%s -> %s: got %q, want %q", from, to, got, want)
			}
		}
		cut := func(from, to string) {
			t.Helper()
			if got := dial(from, to, netLabCutWait); !strings.HasPrefix(got, "err timeout") {
				t.Errorf("%s -> %s: got %q, want a dial that times out", from, to, got)
			}
		}
		expect := func(a *netLabAgent, want string, format string, args ...any) {
			t.Helper()
			if got := a.do(t, format, args...); got != want {
				t.Errorf("%s: %s: got %q, want %q", a.host, fmt.Sprintf(format, args...), got, want)
			}
		}
		n1, n2 := agents["n1"], agents["n2"]
		ms := func(d time.Duration) int64 { return d.Milliseconds() }

		start := time.Now()
		reach("n1", "n2")
		reach("client", "n1")
		reach("n3", "client")
		reach(netLabRoot, "n3")
		reach("n2", netLabRoot)

		// Connections opened before the cut: a from n1 to n2, b from n2 to n1.
		expect(n1, "ok hello n2", "open a %s:%s %d", lab.IP("n2"), netLabAgentPort, ms(netLabOKWait))
		expect(n2, "ok hello n1", "open b %s:%s %d", lab.IP("n1"), netLabAgentPort, ms(netLabOKWait))

		lab.CutFrom("n1", "n2")
		cut("n1", "n2")
		reach("n2", "n1")
		reach("n1", "n3")
		reach("n3", "n2")
		reach(netLabRoot, "n1")
		reach("n1", netLabRoot)
		// n1's own connection carries nothing any more...
		if got := n1.do(t, "echo a %d", ms(netLabCutWait)); !strings.HasPrefix(got, "err timeout") {
			t.Errorf("n1: echo on its connection to n2 during the cut: got %q, want a timeout", got)
		}
		// ...while n2's connection carries n1's data, even when n1 speaks
		// first after the cut (without tracking from the first packet, the
		// kernel would take n1 for this connection's opener and drop it).
		expect(n1, "ok", "push")
		expect(n2, "ok push", "recv b %d", ms(netLabOKWait))
		expect(n2, "ok ping", "echo b %d", ms(netLabOKWait))

		lab.Heal("n1")
		reach("n1", "n2")
		// The ping n1 sent during the cut is retransmitted and echoed.
		expect(n1, "ok ping", "recv a %d", ms(netLabOKWait))
		expect(n1, "ok ping", "echo a %d", ms(netLabOKWait))

		// The root host, which has no lab firewall, cut at the receiver.
		lab.CutFrom(netLabRoot, "n2")
		cut(netLabRoot, "n2")
		reach("n2", netLabRoot)
		reach(netLabRoot, "n1")
		lab.Heal("n2")
		reach(netLabRoot, "n2")

		lab.Isolate("n3")
		cut("n1", "n3")
		cut("n3", "n1")
		cut("client", "n3")
		cut(netLabRoot, "n3")
		cut("n3", netLabRoot)
		reach("n1", "n2")
		reach("client", "n1")
		lab.HealAll()
		reach("n1", "n3")
		reach("n3", "n1")
		reach(netLabRoot, "n3")
		t.Logf("traffic checks took %v", time.Since(start).Round(time.Millisecond))

		// A signal sent by PID reaches the program itself.
		c := agents["client"]
		if err := syscall.Kill(c.cmd.Process.Pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		c.waitSignaled(t, syscall.SIGTERM)
	})
	switch {
	case skipped:
		t.Skip("SKIPPED, NOT PASSED: the lab could not be built; see the subtest")
	case lab == nil || lab.suffix == "":
		return // the subtest failed before the lab made anything
	case !ok:
		t.Log("the subtest failed; checking its cleanup anyway")
	}
	t.Logf("lab cleanup took %v", time.Since(bodyDone).Round(time.Millisecond))

	// The lab's cleanup killed the agents still running, by PID.
	for _, h := range []string{"n1", "n2", "n3"} {
		agents[h].waitSignaled(t, syscall.SIGKILL)
	}
	ipTool, _ := lookSbin("ip")
	iptablesTool, _ := lookSbin("iptables")
	own := []string{"lp-" + lab.suffix + "-", strings.TrimSuffix(lab.subnet.Addr().String(), "0")}
	for _, check := range [][]string{
		{ipTool, "netns", "list"},
		{ipTool, "link"},
		{ipTool, "-4", "addr"},
		{ipTool, "-4", "route", "show", "table", "all"},
		{iptablesTool, "-S"},
		{iptablesTool, "-t", "nat", "-S"},
	} {
		out, err := exec.Command(check[0], check[1:]...).Output()
		if err != nil {
			t.Fatalf("%s: %v", strings.Join(check, " "), err)
		}
		for _, mark := range own {
			if strings.Contains(string(out), mark) {
				t.Errorf("after cleanup, %s still shows %q:\n%s", strings.Join(check, " "), mark, out)
			}
		}
	}
}

// TestNetLab_RefusesBadHostNames checks that host names which would collide
// with the lab's own parts or each other, or overflow interface names, are
// refused before anything is created.
func TestNetLab_RefusesBadHostNames(t *testing.T) {
	t.Parallel()
	for _, hosts := range [][]string{{netLabRoot}, {"sw"}, {"br"}, {"pr"}, {"r"}, {"n1", "n1"}, {"eightchr"}, {"N1"}, {"1n"}, {"n-1"}, {}} {
		if err := checkNetLabHosts(hosts); err == nil {
			t.Errorf("hosts %q accepted", hosts)
		}
	}
	if err := checkNetLabHosts([]string{"n1", "n2", "n3", "client", "sevench"}); err != nil {
		t.Errorf("good hosts refused: %v", err)
	}
}

// TestNetLabHelperProcess is the agent the self-test runs in every namespace
// host; as a test of its own it does nothing.
func TestNetLabHelperProcess(t *testing.T) {
	host := os.Getenv(netLabAgentEnv)
	if host == "" {
		t.Skip("helper process of TestNetLab_CutIsolateHealCleanup; runs only when that test starts it")
	}
	os.Exit(runNetLabAgent(host))
}

// runNetLabAgent listens on netLabAgentPort, greets every connection with
// "hello <host>" and echoes its lines, and runs one command per stdin line,
// answering each with one "netlab: " line on stdout:
//
//	dial ADDR MS        connect and read the greeting ("ok <greeting>")
//	open NAME ADDR MS   the same, keeping the connection as NAME
//	echo NAME MS        send "ping" on NAME and read the echo
//	recv NAME MS        read one line from NAME
//	push                send "push" on every connection accepted so far
//
// Errors answer "err ...", "err timeout ..." when a deadline passed.
func runNetLabAgent(host string) int {
	reply := func(format string, args ...any) { fmt.Printf("netlab: "+format+"\n", args...) }
	ln, err := net.Listen("tcp", ":"+netLabAgentPort)
	if err != nil {
		reply("err listen: %v", err)
		return 2
	}
	var mu sync.Mutex
	var accepted []*netLabServerConn
	go serveNetLab(ln, host, func(sc *netLabServerConn) {
		mu.Lock()
		accepted = append(accepted, sc)
		mu.Unlock()
	})
	reply("ready %d", os.Getpid())

	held := map[string]*netLabClientConn{}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		msArg := func(i int) time.Duration {
			if i >= len(f) {
				return 0
			}
			n, _ := strconv.Atoi(f[i])
			return time.Duration(n) * time.Millisecond
		}
		switch {
		case len(f) == 3 && f[0] == "dial":
			reply("%s", netLabDial(f[1], msArg(2)))
		case len(f) == 4 && f[0] == "open":
			cc, greeting, err := netLabOpen(f[2], msArg(3))
			if err != nil {
				reply("%s", netLabErr(err))
				continue
			}
			held[f[1]] = cc
			reply("ok %s", greeting)
		case len(f) == 3 && (f[0] == "echo" || f[0] == "recv") && held[f[1]] != nil:
			cc := held[f[1]]
			if f[0] == "echo" {
				if _, err := cc.c.Write([]byte("ping\n")); err != nil {
					reply("%s", netLabErr(err))
					continue
				}
			}
			line, err := cc.readLine(msArg(2))
			if err != nil {
				reply("%s", netLabErr(err))
				continue
			}
			reply("ok %s", line)
		case len(f) == 1 && f[0] == "push":
			mu.Lock()
			for _, sc := range accepted {
				sc.write("push") // to closed connections too: errors do not matter
			}
			mu.Unlock()
			reply("ok")
		default:
			reply("err bad command %q", in.Text())
		}
	}
	return 0
}

// netLabServerConn is a connection the agent accepted.
type netLabServerConn struct {
	mu sync.Mutex // serializes echoes and pushes
	c  net.Conn
}

func (s *netLabServerConn) write(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.c.Write([]byte(line + "\n"))
}

func (s *netLabServerConn) serve(host string) {
	defer s.c.Close()
	s.write("hello " + host)
	lines := bufio.NewScanner(s.c)
	for lines.Scan() {
		s.write(lines.Text())
	}
}

// netLabClientConn is a connection the agent (or the test, on the root
// host) opened.
type netLabClientConn struct {
	c net.Conn
	r *bufio.Reader
}

func (cc *netLabClientConn) readLine(within time.Duration) (string, error) {
	_ = cc.c.SetReadDeadline(time.Now().Add(within))
	line, err := cc.r.ReadString('\n')
	return strings.TrimSuffix(line, "\n"), err
}

// netLabOpen connects to addr and reads its greeting, all within a time.
func netLabOpen(addr string, within time.Duration) (*netLabClientConn, string, error) {
	c, err := net.DialTimeout("tcp", addr, within)
	if err != nil {
		return nil, "", err
	}
	cc := &netLabClientConn{c: c, r: bufio.NewReader(c)}
	greeting, err := cc.readLine(within)
	if err != nil {
		c.Close()
		return nil, "", err
	}
	return cc, greeting, nil
}

// netLabDial is the dial command: "ok <greeting>" or an error.
func netLabDial(addr string, within time.Duration) string {
	cc, greeting, err := netLabOpen(addr, within)
	if err != nil {
		return netLabErr(err)
	}
	cc.c.Close()
	return "ok " + greeting
}

func netLabErr(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "err timeout: " + err.Error()
	}
	return "err " + err.Error()
}

// serveNetLab accepts connections on ln until it is closed and serves
// each, as host, on a goroutine of its own; accepted (when not nil) is told
// of each first.
func serveNetLab(ln net.Listener, host string, accepted func(*netLabServerConn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		sc := &netLabServerConn{c: c}
		if accepted != nil {
			accepted(sc)
		}
		go sc.serve(host)
	}
}

// netLabRootListener greets connections on the root host's lab address.
type netLabRootListener struct{ port string }

func newNetLabRootListener(t *testing.T, lab *netLab) *netLabRootListener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(lab.IP(netLabRoot), "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serveNetLab(ln, netLabRoot, nil)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return &netLabRootListener{port: port}
}

// netLabAgent is the test's handle on one running agent.
type netLabAgent struct {
	host   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // the agent's "netlab: " lines, without the prefix
	done   chan struct{}
	stderr bytes.Buffer // read only after done
}

// startNetLabAgent runs an agent on host through lab.Command and checks
// that the process the test holds is the agent itself (same PID: `ip netns
// exec` execs it) and that it runs in host's namespace.
func startNetLabAgent(t *testing.T, lab *netLab, host string) *netLabAgent {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	a := &netLabAgent{host: host, lines: make(chan string, 16), done: make(chan struct{})}
	a.cmd = lab.Command(context.Background(), host, self, "-test.run=^TestNetLabHelperProcess$")
	a.cmd.Env = append(os.Environ(), netLabAgentEnv+"="+host)
	a.cmd.Stderr = &a.stderr
	if a.stdin, err = a.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := a.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start agent on %s: %v", host, err)
	}
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if line, ok := strings.CutPrefix(lines.Text(), "netlab: "); ok {
				a.lines <- line
			}
		}
		_ = a.cmd.Wait()
		close(a.done)
	}()

	ready := a.next(t, "ready")
	if want := fmt.Sprintf("ready %d", a.cmd.Process.Pid); ready != want {
		t.Fatalf("agent on %s: got %q, want %q: the PID the test holds is not the program's", host, ready, want)
	}
	inNS, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", a.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	labNS, err := os.Stat("/run/netns/" + lab.host(host).ns)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(inNS, labNS) {
		t.Fatalf("agent on %s (pid %d) is not in namespace %s", host, a.cmd.Process.Pid, lab.host(host).ns)
	}
	return a
}

// do sends one command and returns the agent's answer.
func (a *netLabAgent) do(t *testing.T, format string, args ...any) string {
	t.Helper()
	cmd := fmt.Sprintf(format, args...)
	if _, err := fmt.Fprintln(a.stdin, cmd); err != nil {
		t.Fatalf("agent on %s: %s: %v", a.host, cmd, err)
	}
	return a.next(t, cmd)
}

func (a *netLabAgent) next(t *testing.T, what string) string {
	t.Helper()
	select {
	case line := <-a.lines:
		return line
	case <-a.done:
		t.Fatalf("agent on %s exited during %q: %v\n%s", a.host, what, a.cmd.ProcessState, a.stderr.String())
	case <-time.After(netLabOKWait + 5*time.Second):
		t.Fatalf("agent on %s: no answer to %q", a.host, what)
	}
	return ""
}

// waitSignaled waits for the agent to be ended by sig.
func (a *netLabAgent) waitSignaled(t *testing.T, sig syscall.Signal) {
	t.Helper()
	waitFor(t, 5*time.Second, fmt.Sprintf("agent on %s to end by %v", a.host, sig), func() error {
		select {
		case <-a.done:
			return nil
		default:
			return errNotYet
		}
	})
	ws, ok := a.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != sig {
		t.Errorf("agent on %s ended with %v, want %v", a.host, a.cmd.ProcessState, sig)
	}
}
