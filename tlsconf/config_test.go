package tlsconf

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServerConfig(t *testing.T) {
	p := newPKI(t)
	cert, key := p.valid(p.ca, "server", []string{"localhost"}, Server)
	ca := filepath.Join(p.dir, "ca.crt")

	if cfg, err := ServerConfig(ServerFiles{}); cfg != nil || err != nil {
		t.Fatalf("no files: %v, %v; want plaintext (nil, nil)", cfg, err)
	}
	cfg, err := ServerConfig(ServerFiles{Cert: cert, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 || len(cfg.Certificates) != 1 || cfg.ClientAuth != tls.NoClientCert {
		t.Fatalf("server-only TLS: min %x, %d certs, client auth %v", cfg.MinVersion, len(cfg.Certificates), cfg.ClientAuth)
	}
	cfg, err = ServerConfig(ServerFiles{Cert: cert, Key: key, ClientCA: ca})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil {
		t.Fatalf("mutual TLS: client auth %v, CAs %v", cfg.ClientAuth, cfg.ClientCAs)
	}
}

func TestConfigErrorsNameTheFile(t *testing.T) {
	p := newPKI(t)
	cert, key := p.valid(p.ca, "node", []string{"localhost"}, ServerAndClient)
	_, otherKey := p.valid(p.ca, "other", []string{"localhost"}, ServerAndClient)
	clientCert, clientKey := p.valid(p.ca, "client", nil, Client)
	ca := filepath.Join(p.dir, "ca.crt")
	missing := filepath.Join(p.dir, "missing.crt")
	garbage := p.write("garbage.crt", []byte("not a certificate\n"))

	for _, c := range []struct {
		name string
		load func() error
		want []string // substrings of the error
	}{
		{"cert without key", func() error { _, err := ServerConfig(ServerFiles{Cert: cert}); return err }, []string{cert, "without its key"}},
		{"key without cert", func() error { _, err := ServerConfig(ServerFiles{Key: key}); return err }, []string{key, "without its certificate"}},
		{"client CA alone", func() error { _, err := ServerConfig(ServerFiles{ClientCA: ca}); return err }, []string{ca, "without the server's certificate"}},
		{"unreadable cert", func() error { _, err := ServerConfig(ServerFiles{Cert: missing, Key: key}); return err }, []string{missing, "no such file"}},
		{"cert not PEM", func() error { _, err := ServerConfig(ServerFiles{Cert: garbage, Key: key}); return err }, []string{garbage, "not a PEM file"}},
		{"key is a cert", func() error { _, err := ServerConfig(ServerFiles{Cert: cert, Key: cert}); return err }, []string{cert, "no PRIVATE KEY, only CERTIFICATE"}},
		{"key does not match", func() error { _, err := ServerConfig(ServerFiles{Cert: cert, Key: otherKey}); return err }, []string{otherKey, "does not match", cert}},
		{"client CA not PEM", func() error {
			_, err := ServerConfig(ServerFiles{Cert: cert, Key: key, ClientCA: garbage})
			return err
		}, []string{"client CA", garbage}},
		{"client cert on a server", func() error {
			_, err := ServerConfig(ServerFiles{Cert: clientCert, Key: clientKey})
			return err
		}, []string{clientCert, "not for server use"}},
		{"server name alone", func() error { _, err := ClientConfig(ClientFiles{ServerName: "x"}); return err }, []string{"server name"}},
		{"client key without cert", func() error { _, err := ClientConfig(ClientFiles{CA: ca, Key: key}); return err }, []string{key}},
		{"peer without CA", func() error { _, _, err := PeerConfigs(cert, key, ""); return err }, []string{"mutual", cert}},
		{"peer CA alone", func() error { _, _, err := PeerConfigs("", "", ca); return err }, []string{ca, "without the node's certificate"}},
		{"peer with client-only cert", func() error { _, _, err := PeerConfigs(clientCert, clientKey, ca); return err }, []string{clientCert, "not for server use"}},
	} {
		err := c.load()
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not mention %q", c.name, err, w)
			}
		}
	}
}

func TestClientConfig(t *testing.T) {
	p := newPKI(t)
	cert, key := p.valid(p.ca, "client", nil, Client)
	ca := filepath.Join(p.dir, "ca.crt")
	if cfg, err := ClientConfig(ClientFiles{}); cfg != nil || err != nil {
		t.Fatalf("no files: %v, %v; want plaintext (nil, nil)", cfg, err)
	}
	cfg, err := ClientConfig(ClientFiles{CA: ca, ServerName: "db"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootCAs == nil || cfg.ServerName != "db" || cfg.GetClientCertificate != nil || cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("CA only: %+v", cfg)
	}
	// No CA: the system's roots verify the server.
	cfg, err = ClientConfig(ClientFiles{Cert: cert, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootCAs != nil || cfg.GetClientCertificate == nil {
		t.Fatalf("cert without CA: roots %v, client cert callback set %v", cfg.RootCAs, cfg.GetClientCertificate != nil)
	}
}

func TestPeerConfigsAreMutual(t *testing.T) {
	p := newPKI(t)
	cert, key := p.valid(p.ca, "node", []string{"localhost"}, ServerAndClient)
	ca := filepath.Join(p.dir, "ca.crt")
	if s, c, err := PeerConfigs("", "", ""); s != nil || c != nil || err != nil {
		t.Fatalf("no files: %v %v %v", s, c, err)
	}
	server, client, err := PeerConfigs(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	if server.ClientAuth != tls.RequireAndVerifyClientCert || server.ClientCAs == nil || len(server.Certificates) != 1 {
		t.Fatalf("peer server side not mutual: %+v", server)
	}
	if client.RootCAs == nil || client.GetClientCertificate == nil {
		t.Fatalf("peer client side does not verify or present: %+v", client)
	}
	// The two sides work together: a real handshake, each verifying the other.
	lis, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	done := make(chan error, 1)
	go func() {
		c, err := lis.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			done <- err
			return
		}
		if len(tc.ConnectionState().VerifiedChains) == 0 {
			done <- errors.New("server verified no client chain")
			return
		}
		done <- nil
	}()
	cc := client.Clone()
	cc.ServerName = "localhost"
	conn, err := tls.Dial("tcp", lis.Addr().String(), cc)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWriteKeyPairModesAndNoOverwrite(t *testing.T) {
	ca, err := NewCA("ca", time.Now(), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	c, k := ca.PEM()
	if err := WriteKeyPair(certFile, c, keyFile, k); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]os.FileMode{certFile: 0o644, keyFile: 0o600} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got&^want != 0 {
			t.Errorf("%s: mode %v, want at most %v", f, got, want)
		}
	}
	if err := WriteKeyPair(certFile, c, keyFile, k); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second write: %v, want ErrExist", err)
	}
	loaded, err := LoadCA(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) {
		t.Fatal("loaded CA differs from the one written")
	}
	if _, err := LoadCA(certFile, certFile); !errors.Is(err, ErrConfig) {
		t.Fatalf("LoadCA with a certificate as key: %v", err)
	}
}
