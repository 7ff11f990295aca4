package tests

// A network lab for tests across hosts: every lab host is a Linux network
// namespace with its own address, joined to one Ethernet segment, so a node
// started "on" a host shares neither loopback nor port space with the others,
// and faults are firewall rules inside one host's namespace.
//
// Layout of a lab with suffix s (4 random hex digits) on subnet 10.A.B.0/24:
//
//	namespace lp-s-sw        the switch: bridge lp-s-br, one port per host
//	namespace lp-s-<host>    one per host: lo, eth0 = 10.A.B.<i>/24
//	link lp-s-r (root ns)    10.A.B.254/24: the machine itself, host "root"
//
// Why the bridge lives in a namespace of its own: Docker sets the root
// namespace's FORWARD policy to DROP and loads br_netfilter with
// net.bridge.bridge-nf-call-iptables=1 (machine-wide), so frames bridged
// between two namespaces on a bridge in the root namespace go through the
// root FORWARD chain and are dropped (checked on this machine: a dial between
// two namespaces times out until `iptables -I FORWARD -i BR -o BR -j ACCEPT`).
// In a namespace of its own the bridge's frames meet that namespace's own,
// empty FORWARD chain (policy ACCEPT), so the lab adds no rule to the root
// namespace at all and changes no machine-wide setting. The root host reaches
// the segment through a plain veth (local traffic, not forwarded).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// netLabRoot names the machine's own root namespace as a lab host: it has an
// address on the lab's segment (IP), runs commands directly (Command), and
// can be cut from a namespace host (CutFrom), but it has no lab firewall of
// its own, so it cannot be isolated or healed.
const netLabRoot = "root"

// netLabSkipEnv, set to 1, turns "this machine cannot run the lab" into a
// skip; without it that is a test failure, so the multi-host tests never pass
// by not running.
const netLabSkipEnv = "LIVEPAXOS_SKIP_NETNS"

// The lab's chains in every host namespace. INPUT and OUTPUT jump to them;
// every fault rule goes into them, so Heal is a flush of these two chains.
const (
	netLabChainIn  = "LPLAB-IN"
	netLabChainOut = "LPLAB-OUT"
)

// netLabHostName is what a host name may be: it becomes part of interface
// names, which Linux limits to 15 bytes ("lp-" + 4 + "-" + 7).
var netLabHostName = regexp.MustCompile(`^[a-z][a-z0-9]{0,6}$`)

// netLabReserved are the names of the lab's own parts (lp-<suffix>-sw is the
// switch namespace, -br its bridge, -pr the root host's port on it, -r the
// root host's link), which a host of the same name would collide with.
var netLabReserved = map[string]bool{netLabRoot: true, "sw": true, "br": true, "pr": true, "r": true}

// netLab is one lab; see newNetLab. Its methods fail the test on error, so
// call them from the test's goroutine.
type netLab struct {
	// tag begins the suffix (newNetLabTagged).
	tag    string
	t      *testing.T
	ipTool string // path of ip (iproute2)
	iptRst string // path of iptables-restore
	suffix string // random, in every name the lab creates
	subnet netip.Prefix
	hosts  map[string]*netLabHost
	order  []string // host names as given, for HealAll

	// What the lab created and will delete, recorded right after each
	// creation succeeded. Nothing is ever deleted by name pattern.
	namespaces []string // host namespaces, then the switch last
	switchNS   string
	rootLinks  []string

	mu   sync.Mutex
	cmds []*exec.Cmd // everything Command handed out
}

type netLabHost struct {
	name string
	ns   string // "" for the root host
	ip   netip.Addr
}

// newNetLab builds a lab with one namespace per host name (plus the root
// host, named netLabRoot) and registers its removal with t.Cleanup, which
// also runs when the test fails or panics. Hosts get 10.A.B.1, .2, ... in
// the order given; the root host gets 10.A.B.254. The subnet and the name
// suffix are random and chosen under a machine-wide lock so that labs of
// parallel test processes never share either.
func newNetLab(t *testing.T, hosts ...string) *netLab {
	t.Helper()
	return newNetLabTagged(t, "", hosts...)
}

// newNetLabTagged is newNetLab with a suffix that begins with tag (at most
// 3 letters; the rest stays random hex), so that whoever lists the
// machine's namespaces can tell which test built them: "lp-lpl3-n1".
func newNetLabTagged(t *testing.T, tag string, hosts ...string) *netLab {
	t.Helper()
	if len(tag) > 3 {
		t.Fatalf("netlab: tag %q: at most 3 letters", tag)
	}
	l := &netLab{t: t, hosts: map[string]*netLabHost{}, tag: tag}
	l.ipTool, l.iptRst = netLabTools(t)
	if err := checkNetLabHosts(hosts); err != nil {
		t.Fatalf("netlab: %v", err)
	}
	for _, h := range hosts {
		l.hosts[h] = &netLabHost{name: h}
		l.order = append(l.order, h)
	}
	t.Cleanup(l.cleanup)

	start := time.Now()
	l.createSegment()
	base := l.subnet.Addr().As4()
	for i, h := range hosts {
		addr := base
		addr[3] = byte(i + 1)
		l.addHost(l.hosts[h], netip.AddrFrom4(addr))
	}
	var desc []string
	for _, h := range append(append([]string{}, hosts...), netLabRoot) {
		desc = append(desc, h+"="+l.IP(h))
	}
	t.Logf("netlab lp-%s on %v (built in %v): %s", l.suffix, l.subnet,
		time.Since(start).Round(time.Millisecond), strings.Join(desc, " "))
	return l
}

// checkNetLabHosts refuses host lists the lab cannot build: names that
// would collide with each other or with the lab's own parts, or overflow
// interface names.
func checkNetLabHosts(hosts []string) error {
	if len(hosts) == 0 || len(hosts) > 200 {
		return fmt.Errorf("want 1 to 200 hosts, got %d", len(hosts))
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		if !netLabHostName.MatchString(h) || netLabReserved[h] {
			return fmt.Errorf("host name %q: want 1-7 of [a-z0-9] starting with a letter, "+
				"and not root, sw, br, pr or r (the lab's own parts)", h)
		}
		if seen[h] {
			return fmt.Errorf("host %q given twice", h)
		}
		seen[h] = true
	}
	return nil
}

// netLabTools checks that this process can build a lab and returns the
// paths of ip and iptables-restore; if it cannot, the test fails, or skips
// loudly when LIVEPAXOS_SKIP_NETNS=1.
func netLabTools(t *testing.T) (ipTool, iptRst string) {
	t.Helper()
	var missing []string
	if euid := os.Geteuid(); euid != 0 {
		missing = append(missing, fmt.Sprintf("not running as root (euid %d)", euid))
	}
	ipTool, err := lookSbin("ip")
	if err != nil {
		missing = append(missing, "no ip command (Debian package iproute2)")
	}
	iptRst, err = lookSbin("iptables-restore")
	if err != nil {
		missing = append(missing, "no iptables-restore command (Debian package iptables)")
	}
	if len(missing) > 0 {
		netLabUnavailable(t, "%s", strings.Join(missing, "; "))
	}
	return ipTool, iptRst
}

// lookSbin finds a system tool even when PATH lacks the sbin directories.
func lookSbin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// netLabUnavailable reports that the machine cannot run the lab: a failure,
// or a loud skip when LIVEPAXOS_SKIP_NETNS=1.
func netLabUnavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if os.Getenv(netLabSkipEnv) == "1" {
		t.Skipf("SKIPPED, NOT PASSED: this multi-host test needs root, iproute2 (ip netns) and iptables, "+
			"and %s=1 asked to skip it when they are missing: %s", netLabSkipEnv, why)
	}
	t.Fatalf("multi-host tests need root, iproute2 (ip netns) and iptables: %s "+
		"(run as root, or set %s=1 to skip them explicitly)", why, netLabSkipEnv)
}

// createSegment picks the suffix and subnet, and creates the switch
// namespace with its bridge and the root host's link. Everything visible
// machine-wide (namespace names, the root link and its route) is chosen and
// created under one lock, so two labs cannot pick the same.
func (l *netLab) createSegment() {
	t := l.t
	t.Helper()
	unlock, err := lockNetLabs()
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	defer unlock()

	taken, err := l.rootPrefixes()
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	for tries := 0; ; tries++ {
		if tries == 100 {
			t.Fatalf("netlab: no free suffix and subnet in 100 tries")
		}
		suffix := (l.tag + fmt.Sprintf("%04x", rand.IntN(1<<16)))[:4]
		r := rand.IntN(8 << 8) // a /24 in 10.200.0.0/13
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + r>>8), byte(r), 0}), 24)
		if netLabSuffixUsed(suffix) || overlapsAny(subnet, taken) {
			continue
		}
		l.suffix, l.subnet = suffix, subnet
		break
	}

	// The first namespace tells whether this machine allows namespaces at
	// all; later failures are plain errors.
	sw := l.name("sw")
	if err := l.run("", l.ipTool, "netns", "add", sw); err != nil {
		netLabUnavailable(t, "cannot create a network namespace: %v", err)
	}
	l.switchNS = sw
	l.namespaces = append(l.namespaces, sw)
	br := l.name("br")
	l.must(l.ipTool, "-n", sw, "link", "add", br, "type", "bridge")
	l.must(l.ipTool, "-n", sw, "link", "set", br, "up")
	l.must(l.ipTool, "-n", sw, "link", "set", "lo", "up")

	// The root host: a veth created inside the switch with its peer moved to
	// this process's namespace, named by our PID.
	rootLink, port := l.name("r"), l.name("pr")
	l.must(l.ipTool, "-n", sw, "link", "add", port, "type", "veth", "peer", "name", rootLink, "netns", strconv.Itoa(os.Getpid()))
	l.rootLinks = append(l.rootLinks, rootLink)
	l.must(l.ipTool, "-n", sw, "link", "set", port, "master", br, "up")
	rootIP := l.subnet.Addr().As4()
	rootIP[3] = 254
	root := &netLabHost{name: netLabRoot, ip: netip.AddrFrom4(rootIP)}
	l.must(l.ipTool, "addr", "add", netip.PrefixFrom(root.ip, 24).String(), "dev", rootLink)
	l.must(l.ipTool, "link", "set", rootLink, "up")
	l.hosts[netLabRoot] = root
}

// addHost creates h's namespace, its port on the bridge and its firewall
// skeleton.
func (l *netLab) addHost(h *netLabHost, ip netip.Addr) {
	l.t.Helper()
	h.ns, h.ip = l.name(h.name), ip
	l.must(l.ipTool, "netns", "add", h.ns)
	l.namespaces = append([]string{h.ns}, l.namespaces...) // the switch stays last
	port := l.name(h.name)                                 // lives in the switch namespace
	l.must(l.ipTool, "-n", l.switchNS, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
	l.must(l.ipTool, "-n", l.switchNS, "link", "set", port, "master", l.name("br"), "up")
	l.must(l.ipTool, "-n", h.ns, "addr", "add", netip.PrefixFrom(ip, 24).String(), "dev", "eth0")
	l.must(l.ipTool, "-n", h.ns, "link", "set", "eth0", "up")
	l.must(l.ipTool, "-n", h.ns, "link", "set", "lo", "up")
	// The counting rule (no target) only exists to make the kernel track
	// connections in this namespace from their first packet. Tracking that
	// started only with the first fault would pick established connections
	// up mid-stream and guess their direction from whichever packet came
	// first, so a one-way cut could miss a connection or cut the wrong one.
	l.iptables(h, fmt.Sprintf(`*filter
:%[1]s - [0:0]
:%[2]s - [0:0]
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "livepaxos netlab: track connections from their first packet"
-A INPUT -j %[1]s
-A OUTPUT -j %[2]s
COMMIT
`, netLabChainIn, netLabChainOut))
}

// IP is host's address on the lab's segment.
func (l *netLab) IP(host string) string {
	l.t.Helper()
	return l.host(host).ip.String()
}

// Command returns a command that runs name with args on host: inside its
// namespace through `ip netns exec`, which execs the program, so the
// command's PID is the program's own and signals sent by PID reach it (the
// lab's self-test checks this). On the root host it runs the program
// directly. The caller starts and waits for it as for exec.Command; if it
// still runs when the test ends, the lab's cleanup kills it (SIGKILL, by
// PID) but does not Wait for it (an exec.Cmd allows one Wait: the caller's).
func (l *netLab) Command(ctx context.Context, host, name string, args ...string) *exec.Cmd {
	l.t.Helper()
	h := l.host(host)
	var cmd *exec.Cmd
	if h.ns == "" {
		cmd = exec.CommandContext(ctx, name, args...)
	} else {
		cmd = exec.CommandContext(ctx, l.ipTool, append([]string{"netns", "exec", h.ns, name}, args...)...)
	}
	l.mu.Lock()
	l.cmds = append(l.cmds, cmd)
	l.mu.Unlock()
	return cmd
}

// CutFrom cuts host off from toHost in one direction, at the level of
// connections, since every TCP connection needs packets both ways:
//
//   - every packet of every connection that host opens to toHost is dropped,
//     both ways, including the SYN (a new dial times out) and connections
//     opened before the cut (they stall; TCP retransmits after Heal);
//   - connections toHost opens to host are untouched, including host's
//     replies on them, so toHost can still send to host.
//
// "Connection" is the kernel's connection tracking (TCP, UDP flows, ICMP
// echo). For protoactor remoting, where each node sends over streams it
// dialed itself (one direction per stream), this is exactly "host's messages
// to toHost are lost, toHost's messages to host arrive". For a cut both ways
// call CutFrom twice, or Isolate. The rules live in host's namespace (in
// toHost's when host is the root host, which has no lab firewall); Heal of
// that namespace's host removes them.
func (l *netLab) CutFrom(host, toHost string) {
	l.t.Helper()
	from, to := l.host(host), l.host(toHost)
	if from == to {
		l.t.Fatalf("netlab: CutFrom(%q, %q): a host cannot be cut from itself", host, toHost)
	}
	switch {
	case from.ns != "":
		// At the sender: its packets of its own connections leave in the
		// ORIGINAL direction, the peer's answers on them arrive as REPLY.
		l.iptables(from, fmt.Sprintf("*filter\n-A %s -d %s -m conntrack --ctdir ORIGINAL -j DROP\n-A %s -s %s -m conntrack --ctdir REPLY -j DROP\nCOMMIT\n",
			netLabChainOut, to.ip, netLabChainIn, to.ip))
	case to.ns != "":
		// At the receiver: the root host's connections arrive in the
		// ORIGINAL direction, the receiver's answers on them leave as REPLY.
		l.iptables(to, fmt.Sprintf("*filter\n-A %s -s %s -m conntrack --ctdir ORIGINAL -j DROP\n-A %s -d %s -m conntrack --ctdir REPLY -j DROP\nCOMMIT\n",
			netLabChainIn, from.ip, netLabChainOut, from.ip))
	}
}

// Isolate cuts host off from every other lab host, the root host included,
// both ways: every packet in or out of its eth0 is dropped. Its loopback
// keeps working.
func (l *netLab) Isolate(host string) {
	l.t.Helper()
	h := l.firewalled(host, "Isolate")
	l.iptables(h, fmt.Sprintf("*filter\n-A %s -i eth0 -j DROP\n-A %s -o eth0 -j DROP\nCOMMIT\n", netLabChainIn, netLabChainOut))
}

// Heal removes every fault rule the lab put in host's namespace (those of
// CutFrom(host, ...), CutFrom(netLabRoot, host) and Isolate(host)); the
// connection tracking skeleton stays until cleanup. Connections stalled by
// the faults resume when TCP retransmits.
func (l *netLab) Heal(host string) {
	l.t.Helper()
	h := l.firewalled(host, "Heal")
	l.iptables(h, fmt.Sprintf("*filter\n-F %s\n-F %s\nCOMMIT\n", netLabChainIn, netLabChainOut))
}

// HealAll heals every host.
func (l *netLab) HealAll() {
	l.t.Helper()
	for _, h := range l.order {
		l.Heal(h)
	}
}

func (l *netLab) host(name string) *netLabHost {
	l.t.Helper()
	h := l.hosts[name]
	if h == nil {
		l.t.Fatalf("netlab: no host %q in lab lp-%s", name, l.suffix)
	}
	return h
}

// firewalled returns host, which must have a namespace (and so a firewall).
func (l *netLab) firewalled(host, op string) *netLabHost {
	l.t.Helper()
	h := l.host(host)
	if h.ns == "" {
		l.t.Fatalf("netlab: %s(%q): the root host has no lab firewall (the lab never changes the root "+
			"namespace's rules); cut or heal the namespace hosts instead", op, host)
	}
	return h
}

// name is the name of something the lab creates: "lp-<suffix>-<what>".
func (l *netLab) name(what string) string { return "lp-" + l.suffix + "-" + what }

// iptables applies rules (iptables-restore syntax, without flushing) in h's
// namespace, in one transaction.
func (l *netLab) iptables(h *netLabHost, rules string) {
	l.t.Helper()
	if err := l.run(rules, l.ipTool, "netns", "exec", h.ns, l.iptRst, "--noflush"); err != nil {
		l.t.Fatalf("netlab: firewall of %s: %v\nrules:\n%s", h.name, err, rules)
	}
}

func (l *netLab) must(name string, args ...string) {
	l.t.Helper()
	if err := l.run("", name, args...); err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
}

// run runs one setup command, with stdin if not empty, and returns an error
// carrying its output if it fails.
func (l *netLab) run(stdin, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// cleanup removes what the lab made, in an order that leaves nothing behind
// even if a step fails: processes first (a process inside a namespace keeps
// it alive after its name is deleted), then the root link (deleting one end
// of a veth deletes both, synchronously), then the namespaces; deleting the
// switch namespace deletes the bridge and every host's veth pair with it.
// Errors are reported and cleanup goes on.
func (l *netLab) cleanup() {
	t := l.t
	l.mu.Lock()
	cmds := l.cmds
	l.mu.Unlock()
	own := map[int]bool{}
	for _, cmd := range cmds {
		if cmd.Process == nil {
			continue // never started
		}
		own[cmd.Process.Pid] = true
		if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("netlab cleanup: kill pid %d (%s): %v", cmd.Process.Pid, cmd.Path, err)
		}
	}
	for _, ns := range l.namespaces {
		if ns != l.switchNS {
			l.emptyNamespace(ns, own)
		}
	}
	for _, link := range l.rootLinks {
		if err := l.run("", l.ipTool, "link", "del", link); err != nil {
			t.Errorf("netlab cleanup: %v", err)
		}
	}
	for _, ns := range l.namespaces {
		if err := l.run("", l.ipTool, "netns", "del", ns); err != nil {
			t.Errorf("netlab cleanup: %v", err)
		}
	}
}

// emptyNamespace waits until no process is left in ns. Only the test's own
// processes can be there (the namespace is the lab's, entered only through
// Command): the commands the lab just killed (own), which may need a moment
// to exit, and their children, which are killed by PID too.
func (l *netLab) emptyNamespace(ns string, own map[int]bool) {
	deadline := time.Now().Add(5 * time.Second)
	killed := map[int]bool{}
	for {
		out, err := exec.Command(l.ipTool, "netns", "pids", ns).Output()
		if err != nil {
			l.t.Errorf("netlab cleanup: ip netns pids %s: %v", ns, err)
			return
		}
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			l.t.Errorf("netlab cleanup: processes %v still run in %s after SIGKILL", pids, ns)
			return
		}
		for _, p := range pids {
			pid, err := strconv.Atoi(p)
			if err != nil || own[pid] || killed[pid] {
				continue
			}
			killed[pid] = true
			l.t.Logf("netlab cleanup: killing pid %d, left in %s by a command the lab started", pid, ns)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lockNetLabs takes the machine-wide lock under which labs pick and create
// their names and subnets.
func lockNetLabs() (unlock func(), err error) {
	const dir = "/run/lock"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "livepaxos-netlab.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// netLabSuffixUsed reports whether anything already carries the suffix: a
// namespace or a root link named lp-<suffix>-..., of another lab or left
// over by a killed test. Such things are avoided, never deleted.
func netLabSuffixUsed(suffix string) bool {
	prefix := "lp-" + suffix + "-"
	for _, dir := range []string{"/run/netns", "/sys/class/net"} {
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return true
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) {
				return true
			}
		}
	}
	return false
}

// rootPrefixes lists the destinations of every IPv4 route in the root
// namespace, of all tables (the local table holds every address).
func (l *netLab) rootPrefixes() ([]netip.Prefix, error) {
	out, err := exec.Command(l.ipTool, "-j", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		return nil, fmt.Errorf("ip -j -4 route show table all: %v", err)
	}
	var routes []struct {
		Dst string `json:"dst"`
	}
	if err := json.Unmarshal(out, &routes); err != nil {
		return nil, fmt.Errorf("ip -j -4 route show table all: %v", err)
	}
	var prefixes []netip.Prefix
	for _, r := range routes {
		if r.Dst == "default" || r.Dst == "" {
			continue
		}
		if p, err := netip.ParsePrefix(r.Dst); err == nil {
			prefixes = append(prefixes, p)
		} else if a, err := netip.ParseAddr(r.Dst); err == nil {
			prefixes = append(prefixes, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return prefixes, nil
}

func overlapsAny(p netip.Prefix, others []netip.Prefix) bool {
	for _, o := range others {
		if p.Overlaps(o) {
			return true
		}
	}
	return false
}
