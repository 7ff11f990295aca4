package cluster

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/livepaxos/livepaxos/internal/rawpeer"
	"github.com/livepaxos/livepaxos/messages"
)

// TestLargeMessage sends a 5 MiB value, more than gRPC's default 4 MB
// receive limit, from one NewSystem node to another and back.
func TestLargeMessage(t *testing.T) {
	server, _ := startNode(t, Options{})
	client, _ := startNode(t, Options{})
	pid, _ := spawnProbe(t, server, "echo")
	payload := randomBytes(5 << 20)
	res, err := client.Root.RequestFuture(pid, &messages.ClientRequest{RequestId: 7, Command: payload}, 10*time.Second).Result()
	if err != nil {
		t.Fatalf("5 MiB round trip: %v", err)
	}
	resp := res.(*messages.ClientResponse)
	if resp.RequestId != 7 || !bytes.Equal(resp.Result, payload) {
		t.Fatalf("echo differs: request id %d, %d bytes", resp.RequestId, len(resp.Result))
	}
}

// TestMaxMessageBytesIsEnforced shows that MaxMessageBytes reaches the
// server: a message over the receiver's limit does not arrive, and the
// connection recovers for the next small one.
func TestMaxMessageBytesIsEnforced(t *testing.T) {
	server, _ := startNode(t, Options{MaxMessageBytes: 1 << 20})
	client, _ := startNode(t, Options{})
	pid, prepares := spawnProbe(t, server, "sizer")
	// The reply is small, so only the server's receive limit is in play.
	res, err := client.Root.RequestFuture(pid, &messages.Command{Payload: randomBytes(512 << 10)}, 5*time.Second).Result()
	if err != nil || res.(*messages.StatusResponse).LastApplied != 512<<10 {
		t.Fatalf("512 KiB message to a 1 MiB node: %v, %v", res, err)
	}
	_, err = client.Root.RequestFuture(pid, &messages.Command{Payload: randomBytes(2 << 20)}, time.Second).Result()
	if !errors.Is(err, actor.ErrTimeout) {
		t.Fatalf("2 MiB message to a 1 MiB node: got %v, want timeout", err)
	}
	// The writer that hit the limit is gone; the next send starts a new one.
	eventually(t, 5*time.Second, "small message after an oversized one", func() bool {
		client.Root.Send(pid, &messages.Prepare{})
		return prepares.Load() > 0
	})
}

func TestNewSystemPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, _, _, err = NewSystem(Options{Listen: l.Addr().String()})
	if !errors.Is(err, ErrPortInUse) {
		t.Fatalf("NewSystem on a busy port: got %v, want ErrPortInUse", err)
	}
	if !strings.Contains(err.Error(), l.Addr().String()) {
		t.Fatalf("error %q does not name the address", err)
	}

	// The race NewSystem's probe cannot close: the port is taken between
	// the probe and protoactor's own Listen, which panics.
	sys := actor.NewActorSystem(actor.WithLoggerFactory(loggerFactory(discardLogger())))
	port := l.Addr().(*net.TCPAddr).Port
	err = startRemote(remote.NewRemote(sys, remote.Configure("127.0.0.1", port)), l.Addr().String())
	if !errors.Is(err, ErrPortInUse) {
		t.Fatalf("startRemote on a busy port: got %v, want ErrPortInUse", err)
	}
}

func TestNewSystemRejectsBadOptions(t *testing.T) {
	for _, opts := range []Options{
		{Listen: ""},
		{Listen: "127.0.0.1"},
		{Listen: ":7001"},
		{Listen: "127.0.0.1:x"},
		{Listen: "127.0.0.1:70000"},
		{Listen: "0.0.0.0:0"},
		{Listen: "127.0.0.1:0", Advertise: "nohost"},
		{Listen: "127.0.0.1:0", MaxMessageBytes: -1},
		{Listen: "127.0.0.1:0", Keepalive: -time.Second},
	} {
		if _, _, _, err := NewSystem(opts); !errors.Is(err, ErrBadOptions) {
			t.Errorf("NewSystem(%+v): got %v, want ErrBadOptions", opts, err)
		}
	}
}

func TestNewSystemAddress(t *testing.T) {
	sys, addr := startNode(t, Options{})
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("address %q: want 127.0.0.1 and a chosen port", addr)
	}
	if sys.Address() != addr {
		t.Fatalf("system address %q, NewSystem returned %q", sys.Address(), addr)
	}

	// Advertise names the node as peers spell it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	want := net.JoinHostPort("localhost", free)
	adv, advAddr := startNode(t, Options{Listen: net.JoinHostPort("127.0.0.1", free), Advertise: want})
	if advAddr != want || adv.Address() != want {
		t.Fatalf("advertised node: returned %q, system %q, want %q", advAddr, adv.Address(), want)
	}
	if pid, _ := spawnProbe(t, adv, "adv"); pid.Address != want {
		t.Fatalf("PID on advertised node says %q, want %q", pid.Address, want)
	}
}

// TestProtoactorLogsRouted checks that protoactor's own lines reach
// Options.Logger, tagged lib=protoactor.
func TestProtoactorLogsRouted(t *testing.T) {
	logs := &lockedBuffer{}
	startNode(t, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if s := logs.String(); !strings.Contains(s, "lib=protoactor") || !strings.Contains(s, "Starting remote") {
		t.Fatalf("protoactor logs not routed:\n%s", s)
	}
}

// TestServerKeepaliveDropsSilentPeer opens a Receive stream through a proxy,
// then freezes the proxy: no FIN, no RST, no data, like a partition. The
// node's keepalive ping goes unanswered and the node closes the stream
// within about two Keepalive periods; without keepalive it would hold it
// forever.
func TestServerKeepaliveDropsSilentPeer(t *testing.T) {
	sys, addr := startNode(t, Options{Keepalive: time.Second})
	proxy := newFreezeProxy(t, addr)
	rawpeer.Dial(t, proxy.addr())
	eventually(t, 5*time.Second, "stream open through the proxy", func() bool { return StatsOf(sys).ActiveStreams == 1 })

	proxy.freeze()
	start := time.Now()
	eventually(t, 8*time.Second, "node closing the silent stream", func() bool { return StatsOf(sys).ActiveStreams == 0 })
	t.Logf("silent peer dropped after %v", time.Since(start).Round(100*time.Millisecond))
}

// freezeProxy forwards TCP connections until frozen, then stops moving
// bytes in both directions while keeping the sockets open.
type freezeProxy struct {
	ln     net.Listener
	frozen atomic.Bool
	done   chan struct{}
}

func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, done: make(chan struct{})}
	var conns sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			open = append(open, c, u)
			mu.Unlock()
			conns.Add(2)
			go func() { defer conns.Done(); p.pipe(u, c) }()
			go func() { defer conns.Done(); p.pipe(c, u) }()
		}
	}()
	t.Cleanup(func() {
		close(p.done)
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		conns.Wait()
	})
	return p
}

func (p *freezeProxy) addr() string { return p.ln.Addr().String() }
func (p *freezeProxy) freeze()      { p.frozen.Store(true) }

func (p *freezeProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if p.frozen.Load() {
			<-p.done
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
