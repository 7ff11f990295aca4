package tlsconf

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// pki is a CA, a second CA nobody trusts, and files issued by them.
type pki struct {
	t     *testing.T
	dir   string
	ca    *CA
	other *CA
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	now := time.Now()
	ca, err := NewCA("test CA", now.Add(-72*time.Hour), now.Add(72*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA("untrusted CA", now.Add(-72*time.Hour), now.Add(72*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{t: t, dir: t.TempDir(), ca: ca, other: other}
	p.write("ca.crt", mustPEM(ca.PEM()))
	p.write("other-ca.crt", mustPEM(other.PEM()))
	return p
}

func mustPEM(cert, _ []byte) []byte { return cert }

func (p *pki) write(name string, data []byte) string {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// issue writes NAME.crt and NAME.key, valid from notBefore to notAfter
// relative to now, and returns their paths.
func (p *pki) issue(ca *CA, name string, hosts []string, u Usage, notBefore, notAfter time.Duration) (cert, key string) {
	p.t.Helper()
	now := time.Now()
	c, k, err := ca.Issue(name, hosts, u, now.Add(notBefore), now.Add(notAfter))
	if err != nil {
		p.t.Fatal(err)
	}
	return p.write(name+".crt", c), p.write(name+".key", k)
}

func (p *pki) valid(ca *CA, name string, hosts []string, u Usage) (cert, key string) {
	return p.issue(ca, name, hosts, u, -time.Hour, 24*time.Hour)
}

// serve runs a gRPC health server on 127.0.0.1:0, with TLS if cfg is set.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if cfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	s := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// check makes one health check against addr, with TLS if cfg is set.
func check(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	creds := insecure.NewCredentials()
	if cfg != nil {
		creds = ClientCredentials(cfg)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// fixture is a server and client configuration for every case.
type fixture struct {
	ca, otherCA                     string
	tlsServer, mtlsServer           *tls.Config
	expiredServer, notYetServer     *tls.Config
	client, mtlsClient              *tls.Config
	expiredClient, notYetClient     *tls.Config
	strangerClient, wrongCAClient   *tls.Config
	wrongNameClient, serverAsClient *tls.Config
}

func newFixture(t *testing.T) *fixture {
	p := newPKI(t)
	local := []string{"localhost", "127.0.0.1"}
	f := &fixture{ca: filepath.Join(p.dir, "ca.crt"), otherCA: filepath.Join(p.dir, "other-ca.crt")}
	must := func(cfg *tls.Config, err error) *tls.Config {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	server := func(files ServerFiles) *tls.Config { return must(ServerConfig(files)) }
	client := func(files ClientFiles) *tls.Config { return must(ClientConfig(files)) }
	cert, key := p.valid(p.ca, "server", local, Server)
	f.tlsServer = server(ServerFiles{Cert: cert, Key: key})
	f.mtlsServer = server(ServerFiles{Cert: cert, Key: key, ClientCA: f.ca})
	cert, key = p.issue(p.ca, "expired-server", local, Server, -48*time.Hour, -24*time.Hour)
	f.expiredServer = server(ServerFiles{Cert: cert, Key: key})
	cert, key = p.issue(p.ca, "future-server", local, Server, 24*time.Hour, 48*time.Hour)
	f.notYetServer = server(ServerFiles{Cert: cert, Key: key})

	f.client = client(ClientFiles{CA: f.ca})
	cert, key = p.valid(p.ca, "client", nil, Client)
	f.mtlsClient = client(ClientFiles{CA: f.ca, Cert: cert, Key: key})
	cert, key = p.issue(p.ca, "expired-client", nil, Client, -48*time.Hour, -24*time.Hour)
	f.expiredClient = client(ClientFiles{CA: f.ca, Cert: cert, Key: key})
	cert, key = p.issue(p.ca, "future-client", nil, Client, 24*time.Hour, 48*time.Hour)
	f.notYetClient = client(ClientFiles{CA: f.ca, Cert: cert, Key: key})
	cert, key = p.valid(p.other, "stranger", nil, Client)
	f.strangerClient = client(ClientFiles{CA: f.ca, Cert: cert, Key: key})
	f.wrongCAClient = client(ClientFiles{CA: f.otherCA})
	f.wrongNameClient = client(ClientFiles{CA: f.ca, ServerName: "db.example.com"})
	// A server-only certificate used as a client's: ClientConfig refuses to
	// load it, so build the configuration by hand as a careless caller would.
	cert, key = p.valid(p.ca, "server-only", local, Server)
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	f.serverAsClient = f.client.Clone()
	presentAlways(f.serverAsClient, pair)
	return f
}

// TestExplainClassifiesGRPCClientErrors runs a real gRPC server and client
// for each misconfiguration, under TLS 1.3 and (capped by the client) 1.2,
// and checks the client's error is explained as the right problem.
func TestExplainClassifiesGRPCClientErrors(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name      string
		server    *tls.Config // nil: plaintext
		client    *tls.Config // nil: plaintext
		want      error
		wantInMsg string
	}{
		{"plaintext client, TLS server", f.tlsServer, nil, ErrServerNeedsTLS, ""},
		{"TLS client, plaintext server", nil, f.client, ErrServerNotTLS, ""},
		{"server cert from another CA", f.tlsServer, f.wrongCAClient, ErrUnknownAuthority, "server's certificate"},
		{"expired server cert", f.expiredServer, f.client, ErrCertExpired, "is after"},
		{"server cert not yet valid", f.notYetServer, f.client, ErrCertExpired, "is before"},
		{"expired client cert", f.mtlsServer, f.expiredClient, ErrCertExpired, "client's certificate"},
		{"client cert not yet valid", f.mtlsServer, f.notYetClient, ErrCertExpired, "client's certificate"},
		{"client cert from another CA", f.mtlsServer, f.strangerClient, ErrUnknownAuthority, "client's certificate"},
		{"no client cert for mTLS", f.mtlsServer, f.client, ErrClientCertRequired, ""},
		{"server name mismatch", f.tlsServer, f.wrongNameClient, ErrBadCertificate, `"db.example.com"`},
		{"server-only cert as client cert", f.mtlsServer, f.serverAsClient, ErrBadCertificate, "client's certificate"},
	}
	for _, c := range cases {
		addr := serve(t, c.server)
		versions := []uint16{tls.VersionTLS13, tls.VersionTLS12}
		if c.client == nil {
			versions = versions[:1]
		}
		for _, v := range versions {
			name := c.name
			cli := c.client
			if cli != nil {
				cli = cli.Clone()
				cli.MaxVersion = v
				name += map[uint16]string{tls.VersionTLS13: " (TLS 1.3)", tls.VersionTLS12: " (TLS 1.2)"}[v]
			}
			t.Run(name, func(t *testing.T) {
				raw := check(t, addr, cli)
				if raw == nil {
					t.Fatal("health check succeeded; want a TLS failure")
				}
				err := Explain(raw)
				if !errors.Is(err, c.want) {
					t.Fatalf("Explain(%q) = %q, want %v", raw, err, c.want)
				}
				if !strings.Contains(err.Error(), c.wantInMsg) || strings.Contains(err.Error(), "\n") {
					t.Errorf("explanation %q: want one line mentioning %q", err, c.wantInMsg)
				}
				if status.Code(err) != codes.Unavailable {
					t.Errorf("explanation lost the gRPC status: code %v", status.Code(err))
				}
				t.Logf("%v\n  -> %v", raw, err)
			})
		}
	}
	t.Run("good mutual TLS", func(t *testing.T) {
		if err := check(t, serve(t, f.mtlsServer), f.mtlsClient); err != nil {
			t.Fatal(err)
		}
	})
}

// TestExplainTypedErrors covers errors that still carry their x509 and tls
// types: a plain tls.Dial's.
func TestExplainTypedErrors(t *testing.T) {
	f := newFixture(t)
	dial := func(server, client *tls.Config) error {
		t.Helper()
		lis, err := tls.Listen("tcp", "127.0.0.1:0", server)
		if err != nil {
			t.Fatal(err)
		}
		defer lis.Close()
		go func() {
			c, err := lis.Accept()
			if err == nil {
				c.(*tls.Conn).Handshake()
				c.Close()
			}
		}()
		conn, err := tls.Dial("tcp", lis.Addr().String(), client)
		if err == nil {
			conn.Close()
		}
		return err
	}
	for _, c := range []struct {
		name           string
		server, client *tls.Config
		want           error
	}{
		{"unknown authority", f.tlsServer, f.wrongCAClient, ErrUnknownAuthority},
		{"expired", f.expiredServer, f.client, ErrCertExpired},
		{"name mismatch", f.tlsServer, f.wrongNameClient, ErrBadCertificate},
	} {
		raw := dial(c.server, c.client)
		if err := Explain(raw); !errors.Is(err, c.want) {
			t.Errorf("%s: Explain(%v) = %v, want %v", c.name, raw, err, c.want)
		}
	}
}

func TestExplainLeavesOtherErrorsAlone(t *testing.T) {
	if Explain(nil) != nil {
		t.Fatal("Explain(nil) is not nil")
	}
	other := status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`)
	if got := Explain(other); got != other {
		t.Fatalf("Explain changed an unrelated error: %v", got)
	}
	once := Explain(status.Error(codes.Unavailable, "tls: failed to verify certificate: x509: certificate signed by unknown authority"))
	if twice := Explain(once); twice != once {
		t.Fatalf("Explain explained twice: %v", twice)
	}
}
