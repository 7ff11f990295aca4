package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/tlsconf"
)

// Ports every lab node uses: each sits on a host (network namespace) of
// its own, so they need not differ.
const (
	labPeerPort   = "7001"
	labClientPort = "7101"
)

// newLabCluster starts n nodes, node i on lab host "n<i>" with its peer
// port on <ip>:7001 and its client port on <ip>:7101, and a lab host
// "client" with no node for the CLI. With withTLS, both ports of every
// node are under TLS (client certificates required on both). The test's
// own Go client runs on this machine, the lab's root host: a host that is
// no node's.
func newLabCluster(t *testing.T, n int, withTLS bool, extra ...string) *testCluster {
	t.Helper()
	return newLabClusterTagged(t, "", n, withTLS, extra...)
}

// newLabClusterTagged is newLabCluster on a lab whose names carry tag
// (newNetLabTagged).
func newLabClusterTagged(t *testing.T, tag string, n int, withTLS bool, extra ...string) *testCluster {
	t.Helper()
	hosts := []string{"client"}
	for i := 1; i <= n; i++ {
		hosts = append(hosts, "n"+strconv.Itoa(i))
	}
	lab := newNetLabTagged(t, tag, hosts...)
	c := &testCluster{t: t, bin: livepaxosBin(t), dir: t.TempDir(), extra: extra, lab: lab}
	var nodeIPs []string
	for i := 1; i <= n; i++ {
		host := "n" + strconv.Itoa(i)
		ip := lab.IP(host)
		nodeIPs = append(nodeIPs, ip)
		c.nodes = append(c.nodes, &nodeProc{
			id:         i,
			host:       host,
			addr:       net.JoinHostPort(ip, labPeerPort),
			clientAddr: net.JoinHostPort(ip, labClientPort),
			dataDir:    filepath.Join(c.dir, host),
			logPath:    filepath.Join(c.dir, host+".log"),
		})
	}
	if withTLS {
		c.certs = newTestCerts(t, nodeIPs)
	}
	c.startAll()
	return c
}

// cli runs the livepaxos CLI on lab host "client" with the cluster's TLS
// flags (if any) after args.
func (c *testCluster) cli(args ...string) cliResult {
	c.t.Helper()
	return c.cliWith(c.clientTLSArgs(), args...)
}

// cliWith runs the CLI on lab host "client" with tlsArgs after args.
func (c *testCluster) cliWith(tlsArgs []string, args ...string) cliResult {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.lab.Command(ctx, "client", c.bin, append(args, tlsArgs...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := cliResult{stdout: out.String(), stderr: errb.String()}
	var ee interface{ ExitCode() int }
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("livepaxos %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// mustCLI runs the CLI from the client host and fails the test unless it
// exits 0; it returns the standard output.
func (c *testCluster) mustCLI(args ...string) string {
	c.t.Helper()
	r := c.cli(args...)
	if r.code != 0 {
		c.t.Fatalf("livepaxos %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func TestMultiHostPlaintext(t *testing.T) { testMultiHost(t, false) }
func TestMultiHostTLS(t *testing.T)       { testMultiHost(t, true) }

// testMultiHost: three nodes on three hosts, clients on two others. Every
// client command works through every node as the only endpoint (a node
// that is not master forwards); the master killed with SIGKILL, the group
// goes on; the master cut off by a firewall inside its host, another is
// elected and the old one serves no lease read once the new one serves
// any; healed, it catches up.
func testMultiHost(t *testing.T, withTLS bool) {
	c := newLabCluster(t, 3, withTLS)
	c.waitWritable(30 * time.Second)

	for _, n := range c.nodes {
		ep := []string{"--endpoints", n.clientAddr}
		key, val := fmt.Sprintf("via/%d", n.id), fmt.Sprintf("v%d", n.id)
		if out := c.mustCLI(append([]string{"put", key, val}, ep...)...); strings.TrimSpace(out) != "OK" {
			t.Fatalf("put through node %d: %q", n.id, out)
		}
		for _, cons := range []string{"lease", "quorum"} {
			if out := c.mustCLI(append([]string{"get", "--consistency", cons, key}, ep...)...); strings.TrimSpace(out) != val {
				t.Fatalf("%s get through node %d: %q, want %q", cons, n.id, out, val)
			}
		}
		waitFor(t, 10*time.Second, "a stale read to see the write", func() error {
			r := c.cli(append([]string{"get", "--consistency", "stale", key}, ep...)...)
			if r.code != 0 || strings.TrimSpace(r.stdout) != val {
				return fmt.Errorf("stale get through node %d: exit %d %q %s", n.id, r.code, r.stdout, r.stderr)
			}
			return nil
		})
		if out := c.mustCLI(append([]string{"cas", key, val, val + "'"}, ep...)...); strings.TrimSpace(out) != "OK" {
			t.Fatalf("cas through node %d: %q", n.id, out)
		}
		out := c.mustCLI(append([]string{"txn", "--guard", "equals:" + key + "=" + val + "'", "--then", "del:" + key}, ep...)...)
		if !strings.Contains(out, `"succeeded":true`) {
			t.Fatalf("txn through node %d: %q", n.id, out)
		}
		if r := c.cli(append([]string{"get", key}, ep...)...); r.code == 0 {
			t.Fatalf("key %s still there after the txn deleted it: %q", key, r.stdout)
		}
	}
	c.jsonAndReflection()
	status := c.mustCLI("status", "--endpoints", strings.Join(c.endpoints(), ","))
	if !strings.Contains(status, "survives 1 more failure") {
		t.Fatalf("status from the client host:\n%s", status)
	}
	// Each node records its client address once it knows a master.
	waitFor(t, 10*time.Second, "members list to show every node's two addresses, up", func() error {
		members := c.mustCLI("members", "list", "--endpoints", c.nodes[1].clientAddr)
		for _, n := range c.nodes {
			if !strings.Contains(members, n.addr+"  "+n.clientAddr) {
				return fmt.Errorf("no line for node %d with %s and %s:\n%s", n.id, n.addr, n.clientAddr, members)
			}
		}
		if strings.Contains(members, "unreachable") {
			return fmt.Errorf("a member is unreachable:\n%s", members)
		}
		return nil
	})

	// The master killed: the group goes on through the other endpoints.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	old := c.waitMaster(10 * time.Second)
	c.kill(old)
	waitFor(t, 20*time.Second, "a write after the master was killed", func() error {
		return c.cl.Put(ctx, []byte("after/kill"), []byte("1"))
	})
	c.rejoin(old, 20*time.Second)
	c.waitConverged(20 * time.Second)

	c.partitionMaster(ctx)
	if withTLS {
		c.tlsRefusals()
	}
}

// partitionMaster cuts the master off from every other host with a
// firewall inside its own host, and checks that another is elected and
// that the old master served its last lease read before the new one served
// its first (a probe on the old master's own host keeps asking it); then
// heals, and checks the old master catches up.
func (c *testCluster) partitionMaster(ctx context.Context) {
	t := c.t
	old := c.waitMaster(20 * time.Second)
	oldNode := c.node(old)
	probe := c.startLeaseProbe(oldNode)
	waitFor(t, 10*time.Second, "the probe's first lease read on the old master", func() error {
		if len(probe.successes()) == 0 {
			return errNotYet
		}
		return nil
	})
	c.lab.Isolate(oldNode.host)
	cut := time.Now()

	var others []string
	for _, n := range c.nodes {
		if n.id != old {
			others = append(others, n.clientAddr)
		}
	}
	// One unary call is one request, and a short deadline keeps the node
	// from holding it (forwarding, retrying) for long: a read it gets
	// answered was served within readWindow after the call began. The
	// client package would retry inside one call, hiding when the
	// answering attempt began. The old master's lease ends at least
	// --clock-drift-max (100 ms) before the acceptors let another be
	// elected, so the check below has room: old's last answer must come
	// before new's first call began.
	const readWindow = 30 * time.Millisecond
	var firstNewSent time.Time
	waitFor(t, 20*time.Second, "a lease read served by a new master", func() error {
		for _, ep := range others {
			sent := time.Now()
			rctx, cancel := context.WithTimeout(ctx, readWindow)
			resp, err := c.rawKV(ep).Get(rctx, &messages.GetRequest{Key: []byte("k"), Consistency: messages.Consistency_CONSISTENCY_LEASE})
			cancel()
			if err == nil {
				t.Logf("first lease read after the cut: sent %v after it, through node %d, epoch %d",
					sent.Sub(cut), resp.Header.GetNodeId(), resp.Header.GetEpoch())
				firstNewSent = sent
				return nil
			}
		}
		return errNotYet
	})
	reader, err := client.New(client.Config{Endpoints: others, AttemptTimeout: 300 * time.Millisecond, TLS: c.clientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if _, err := reader.Txn(ctx, &messages.MultiOp{}); err != nil {
		t.Fatalf("a write after the master was cut off: %v", err)
	}
	newMaster := 0
	for _, n := range c.nodes {
		if st, err := c.status(n.id); err == nil && st.IsMaster && n.id != old {
			newMaster = n.id
		}
	}
	if newMaster == 0 {
		t.Fatal("lease reads are served again, but no connected node says it is master")
	}
	oldLast := probe.stop()
	if b, err := os.ReadFile(probe.out); err == nil {
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		t.Logf("probe's last lines: %q", lines[max(0, len(lines)-3):])
	}
	t.Logf("cut at %s; old master's last lease read answered %v after the cut, new master %d's first sent %v after it",
		cut.Format(time.StampMilli), oldLast.Sub(cut).Round(time.Millisecond), newMaster, firstNewSent.Sub(cut).Round(time.Millisecond))
	if !oldLast.Before(firstNewSent) {
		t.Fatalf("the old master answered a lease read at %v, after the new master served one sent at %v",
			oldLast.Format(time.StampMicro), firstNewSent.Format(time.StampMicro))
	}

	c.lab.Heal(oldNode.host)
	c.waitMaster(20 * time.Second)
	c.waitConverged(30 * time.Second)
}

// leaseProbe is a process on a node's own host that asks that node for
// lease reads over and over and records when each answer came.
type leaseProbe struct {
	t        *testing.T
	out      string
	stopProc func()
}

// leaseProbeEnv tells the test binary to run as a lease probe (see
// TestHelperLeaseProbe): the endpoint, then the output file.
const leaseProbeEnv = "LIVEPAXOS_LEASE_PROBE"

func (c *testCluster) startLeaseProbe(n *nodeProc) *leaseProbe {
	c.t.Helper()
	out := filepath.Join(c.dir, "probe-"+n.host)
	cmd := c.lab.Command(context.Background(), n.host, os.Args[0], "-test.run=^TestHelperLeaseProbe$")
	env := []string{leaseProbeEnv + "=" + n.clientAddr + "," + out}
	if c.certs != nil {
		env = append(env, "LIVEPAXOS_LEASE_PROBE_CERTS="+c.certs.dir)
	}
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p := &leaseProbe{t: c.t, out: out}
	p.stopProc = func() {
		cmd.Process.Kill()
		<-done
	}
	c.t.Cleanup(p.stopProc)
	return p
}

// successes are the times the probe's lease reads were answered.
func (p *leaseProbe) successes() []time.Time {
	f, err := os.Open(p.out)
	if err != nil {
		return nil
	}
	defer f.Close()
	var ts []time.Time
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if ns, err := strconv.ParseInt(strings.Fields(sc.Text() + " x")[0], 10, 64); err == nil {
			ts = append(ts, time.Unix(0, ns))
		}
	}
	return ts
}

// stop ends the probe and returns when its last lease read was answered.
func (p *leaseProbe) stop() time.Time {
	p.stopProc()
	ts := p.successes()
	if len(ts) == 0 {
		p.t.Fatal("the lease probe recorded no read at all")
	}
	return ts[len(ts)-1]
}

// TestHelperLeaseProbe is the lease probe, when the test binary runs as
// one on a node's host: it asks the node for lease reads, one at a time,
// and appends the time of each answer (Unix nanoseconds) to its file,
// until it is killed.
func TestHelperLeaseProbe(t *testing.T) {
	spec := os.Getenv(leaseProbeEnv)
	if spec == "" {
		t.Skip("run by the multi-host tests as a probe")
	}
	endpoint, out, _ := strings.Cut(spec, ",")
	cfg := client.Config{Endpoints: []string{endpoint}, AttemptTimeout: 200 * time.Millisecond}
	if dir := os.Getenv("LIVEPAXOS_LEASE_PROBE_CERTS"); dir != "" {
		tlsCfg, err := tlsconf.ClientConfig(tlsconf.ClientFiles{CA: filepath.Join(dir, "ca.crt"),
			Cert: filepath.Join(dir, "client.crt"), Key: filepath.Join(dir, "client.key")})
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS = tlsCfg
	}
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		res, err := cl.Read(ctx, &messages.MultiOp{}, client.Lease)
		cancel()
		if err == nil {
			fmt.Fprintln(f, time.Now().UnixNano(), res.Epoch, res.Applied, res.NodeID)
		}
	}
}

// tlsRefusals: a client without TLS, with the wrong CA, or with an expired
// certificate gets one line that says which; a connection to the peer port
// without a node certificate is refused in the handshake.
func (c *testCluster) tlsRefusals() {
	t := c.t
	ep := []string{"--endpoints", c.nodes[0].clientAddr, "--timeout", "2s"}
	other := newTestCerts(t, nil) // another CA altogether
	c.certs.issue(t, "expired", nil, tlsconf.Client, time.Now().Add(-time.Hour))
	cases := []struct {
		name string
		tls  []string
		want string
	}{
		{"plaintext client", nil, "requires TLS"},
		{"wrong CA", []string{"--tls-ca", other.path("ca.crt"), "--tls-cert", c.certs.path("client.crt"), "--tls-key", c.certs.path("client.key")}, "not signed by a CA this client trusts"},
		{"expired client certificate", []string{"--tls-ca", c.certs.path("ca.crt"), "--tls-cert", c.certs.path("expired.crt"), "--tls-key", c.certs.path("expired.key")}, "expired"},
		{"no client certificate", []string{"--tls-ca", c.certs.path("ca.crt")}, "client certificate"},
	}
	for _, tc := range cases {
		r := c.cliWith(tc.tls, append([]string{"get", "k"}, ep...)...)
		msg := strings.TrimSpace(r.stderr)
		if r.code != 1 || !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") > 0 {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 and one line saying %q", tc.name, r.code, msg, tc.want)
		}
	}
	// The peer port: a TLS client without a node certificate is refused in
	// the handshake, before the node reads any message.
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	conn, err := tls.DialWithDialer(dialer, "tcp", c.nodes[0].addr, &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("peer port without a certificate: %v, want a handshake refusal (certificate required)", err)
	}
	// A plaintext connection to it gets no gRPC answer either.
	plain, err := net.DialTimeout("tcp", c.nodes[0].addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	plain.SetReadDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 64)
	n, _ := plain.Read(b)
	if n > 0 && bytes.Contains(b[:n], []byte{0x00, 0x00, 0x00, 0x04}) { // an HTTP/2 SETTINGS frame header
		t.Errorf("the peer port answered a plaintext HTTP/2 preface with %x", b[:n])
	}
}

// rawKV is a bare gRPC client of one node's client port, with the
// cluster's TLS: each call is exactly one request to that node.
func (c *testCluster) rawKV(endpoint string) messages.KVClient {
	c.t.Helper()
	creds := insecure.NewCredentials()
	if cfg := c.clientTLS(); cfg != nil {
		creds = tlsconf.ClientCredentials(cfg)
	}
	cc, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(creds))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cc.Close() })
	return messages.NewKVClient(cc)
}

// jsonAndReflection: the client port answers JSON over HTTP (a put through
// one node, a get through another) and lists its services by gRPC server
// reflection, as curl and grpcurl would use them.
func (c *testCluster) jsonAndReflection() {
	t := c.t
	scheme, hc := "http", &http.Client{Timeout: 10 * time.Second}
	if cfg := c.clientTLS(); cfg != nil {
		scheme, hc.Transport = "https", &http.Transport{TLSClientConfig: cfg}
	}
	post := func(ep, method, body string) string {
		t.Helper()
		resp, err := hc.Post(scheme+"://"+ep+"/livepaxos.v1.KV/"+method, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("JSON %s at %s: %v", method, ep, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("JSON %s at %s: %s %s", method, ep, resp.Status, b)
		}
		return string(b)
	}
	// "json/key" and "from curl", base64 as protobuf's JSON has bytes.
	post(c.nodes[1].clientAddr, "Put", `{"key":"anNvbi9rZXk=","value":"ZnJvbSBjdXJs"}`)
	if got := post(c.nodes[2].clientAddr, "Get", `{"key":"anNvbi9rZXk=","consistency":"CONSISTENCY_QUORUM"}`); !strings.Contains(got, `"value":"ZnJvbSBjdXJs"`) {
		t.Fatalf("JSON get: %s", got)
	}
	creds := insecure.NewCredentials()
	if cfg := c.clientTLS(); cfg != nil {
		creds = tlsconf.ClientCredentials(cfg)
	}
	cc, err := grpc.NewClient(c.nodes[0].clientAddr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := rc.Recv()
	if err != nil {
		t.Fatalf("server reflection: %v", err)
	}
	var names []string
	for _, svc := range resp.GetListServicesResponse().GetService() {
		names = append(names, svc.Name)
	}
	if !slices.Contains(names, "livepaxos.v1.KV") || !slices.Contains(names, "grpc.health.v1.Health") {
		t.Fatalf("services listed by reflection: %v", names)
	}
}
