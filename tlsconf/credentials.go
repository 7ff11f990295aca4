package tlsconf

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc/credentials"
)

// ClientCredentials are gRPC transport credentials for a client using cfg
// (from ClientConfig or PeerConfigs). Use them instead of
// credentials.NewTLS(cfg): they make a server's refusal of the client's
// certificate arrive as that refusal.
//
// Why: in TLS 1.3 the client's handshake is over before the server has
// checked the client's certificate. grpc-go then writes its preface at
// once; a server that refuses the certificate sends an alert and closes a
// socket holding that unread preface, so the kernel resets the connection
// and the alert ("certificate required", "unknown certificate authority",
// "expired certificate") is usually lost: the client sees "write: broken
// pipe" or "connection reset by peer". These credentials wait, as part of
// the handshake, for the server's first bytes; a gRPC server sends its
// SETTINGS frame first, right after accepting the handshake, so this costs
// no round trip and turns the refusal into a handshake error Explain can
// classify. They are for gRPC servers only: a server that waits for the
// client to speak first would stall the handshake until ctx ends.
func ClientCredentials(cfg *tls.Config) credentials.TransportCredentials {
	return &clientCreds{TransportCredentials: credentials.NewTLS(cfg)}
}

type clientCreds struct {
	credentials.TransportCredentials
}

func (c *clientCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err != nil {
		return nil, nil, err
	}
	if ti, ok := info.(credentials.TLSInfo); !ok || ti.State.Version < tls.VersionTLS13 {
		return conn, info, nil // before 1.3 the server's verdict is part of the handshake
	}
	first, err := awaitServer(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("tls: waiting for the server to accept the handshake: %w", err)
	}
	return &prefixConn{Conn: conn, pending: first}, info, nil
}

func (c *clientCreds) Clone() credentials.TransportCredentials {
	return &clientCreds{TransportCredentials: c.TransportCredentials.Clone()}
}

// awaitServer reads the server's first bytes, or its alert, within ctx.
func awaitServer(ctx context.Context, conn net.Conn) ([]byte, error) {
	if d, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 1024)
	n, err := conn.Read(buf)
	if n > 0 {
		err = nil // bytes arrived: the server accepted us; a later error is the transport's to see
	}
	if err != nil {
		return nil, err
	}
	if !stop() { // ctx ended meanwhile and may have set the deadline
		return nil, ctx.Err()
	}
	conn.SetReadDeadline(time.Time{})
	return buf[:n], nil
}

// prefixConn returns bytes already read before reading on.
type prefixConn struct {
	net.Conn
	pending []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
