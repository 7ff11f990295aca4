package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"
)

// portMux splits one client port between the gRPC server and the JSON
// gateway: cmux on a plaintext port, alpnMux on a TLS one.
type portMux interface {
	Serve() error
	Close()
}

// maxHandshakes bounds the TLS handshakes under way at once; a connection
// beyond it is closed at once, so that a flood of idle connections cannot
// pile up goroutines.
const maxHandshakes = 1024

// handshakeTimeout bounds one TLS handshake.
const handshakeTimeout = 10 * time.Second

// alpnConfig serves gRPC clients HTTP/2 and everyone else HTTP/1.1 on
// one TLS port. gRPC requires h2 by ALPN and its clients offer nothing
// else; a client that also offers http/1.1 (curl, a browser) gets
// http/1.1, and its JSON goes to the gateway.
func alpnConfig(base *tls.Config) *tls.Config {
	cfg := base.Clone()
	cfg.NextProtos = []string{"h2", "http/1.1"}
	http1 := cfg.Clone()
	http1.NextProtos = []string{"http/1.1"}
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if slices.Contains(hello.SupportedProtos, "http/1.1") {
			return http1, nil
		}
		return nil, nil
	}
	return cfg
}

// alpnMux completes each connection's TLS handshake and hands it, by the
// protocol ALPN settled on, to the gRPC server (h2) or the gateway
// (http/1.1). Unlike cmux it reads nothing before routing: a gRPC server
// speaks first on a connection (its SETTINGS), which a client may wait
// for before it sends anything (tlsconf.ClientCredentials does, to see a
// refused client certificate as such).
type alpnMux struct {
	lis         net.Listener
	cfg         *tls.Config
	grpc, http1 *connListener
	handshakes  chan struct{}
	log         *slog.Logger
}

func newALPNMux(lis net.Listener, cfg *tls.Config, log *slog.Logger) *alpnMux {
	return &alpnMux{lis: lis, cfg: cfg, grpc: newConnListener(lis.Addr()), http1: newConnListener(lis.Addr()),
		handshakes: make(chan struct{}, maxHandshakes), log: log}
}

func (m *alpnMux) Serve() error {
	defer m.grpc.Close()
	defer m.http1.Close()
	for {
		c, err := m.lis.Accept()
		if err != nil {
			return err
		}
		select {
		case m.handshakes <- struct{}{}:
			go m.route(c)
		default:
			c.Close()
		}
	}
}

func (m *alpnMux) route(c net.Conn) {
	defer func() { <-m.handshakes }()
	tc := tls.Server(c, m.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		m.log.Debug("client port: TLS handshake failed", "remote", c.RemoteAddr(), "err", err)
		c.Close()
		return
	}
	to := m.http1
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		to = m.grpc
	}
	to.put(tc)
}

func (m *alpnMux) Close() {
	m.lis.Close()
	m.grpc.Close()
	m.http1.Close()
}

// connListener is a net.Listener fed with connections by a mux.
type connListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) put(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }
