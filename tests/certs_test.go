package tests

import (
	"crypto/tls"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/tlsconf"
)

// testCerts is a development CA and certificates for a test cluster: one
// per node (serverAuth and clientAuth, for both its ports) and one client
// certificate, as `livepaxos certs` makes them.
type testCerts struct {
	dir string
	ca  *tlsconf.CA
}

// newTestCerts makes a CA in a temporary directory, and a certificate for
// each node i (node<i>.crt, covering hosts[i-1] and 127.0.0.1) and one
// for a client (client.crt).
func newTestCerts(t *testing.T, hosts []string) *testCerts {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	ca, err := tlsconf.NewCA("livepaxos test CA", now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := ca.PEM()
	if err := tlsconf.WriteKeyPair(filepath.Join(dir, "ca.crt"), certPEM, filepath.Join(dir, "ca.key"), keyPEM); err != nil {
		t.Fatal(err)
	}
	tc := &testCerts{dir: dir, ca: ca}
	for i, h := range hosts {
		tc.issueNode(t, "node"+strconv.Itoa(i+1), uint32(i+1), []string{h, "127.0.0.1", "localhost"}, tlsconf.ServerAndClient, now.Add(24*time.Hour))
	}
	tc.issue(t, "client", nil, tlsconf.Client, now.Add(24*time.Hour))
	return tc
}

// issue writes NAME.crt and NAME.key, valid until notAfter (in the past:
// an expired certificate).
func (tc *testCerts) issue(t *testing.T, name string, hosts []string, usage tlsconf.Usage, notAfter time.Time) {
	t.Helper()
	tc.issueNode(t, name, 0, hosts, usage, notAfter)
}

// issueNode is issue for a certificate bound to node id (0: none), as
// 'livepaxos certs issue --node-id' makes them.
func (tc *testCerts) issueNode(t *testing.T, name string, id uint32, hosts []string, usage tlsconf.Usage, notAfter time.Time) {
	t.Helper()
	notBefore := time.Now().Add(-2 * time.Hour)
	if !notAfter.After(notBefore) {
		notBefore = notAfter.Add(-time.Hour)
	}
	cert, key, err := tc.ca.IssueNode(name, id, hosts, usage, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlsconf.WriteKeyPair(tc.path(name+".crt"), cert, tc.path(name+".key"), key); err != nil {
		t.Fatal(err)
	}
}

func (tc *testCerts) path(name string) string { return filepath.Join(tc.dir, name) }

// tlsArgs are node n's TLS flags: both ports under TLS with its own
// certificate, client certificates required on the client port too.
func (c *testCluster) tlsArgs(n *nodeProc) []string {
	if c.certs == nil {
		return nil
	}
	name := "node" + strconv.Itoa(n.id)
	crt, key, ca := c.certs.path(name+".crt"), c.certs.path(name+".key"), c.certs.path("ca.crt")
	return []string{"--tls-cert", crt, "--tls-key", key, "--tls-client-ca", ca,
		"--peer-tls-cert", crt, "--peer-tls-key", key, "--peer-tls-ca", ca}
}

// clientTLSArgs are the CLI's TLS flags for the cluster's client certificate.
func (c *testCluster) clientTLSArgs() []string {
	if c.certs == nil {
		return nil
	}
	return []string{"--tls-ca", c.certs.path("ca.crt"), "--tls-cert", c.certs.path("client.crt"), "--tls-key", c.certs.path("client.key")}
}

// clientTLS is the test's Go client's TLS configuration (nil without certs).
func (c *testCluster) clientTLS() *tls.Config {
	if c.certs == nil {
		return nil
	}
	cfg, err := tlsconf.ClientConfig(tlsconf.ClientFiles{CA: c.certs.path("ca.crt"), Cert: c.certs.path("client.crt"), Key: c.certs.path("client.key")})
	if err != nil {
		c.t.Fatal(err)
	}
	return cfg
}
