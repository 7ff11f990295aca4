package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livepaxos/livepaxos/tlsconf"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(args...)
	if err != nil {
		t.Fatalf("%q: %v\n%s", args, err, out)
	}
	return out
}

func TestCertsInitAndIssueMakeVerifiableChains(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki") // init creates it
	mustRun(t, "certs", "init", "--dir", dir, "--days", "30")
	mustRun(t, "certs", "issue", "--dir", dir, "--name", "node1", "--hosts", "node1.lan, 10.0.0.1")
	mustRun(t, "certs", "issue", "--dir", dir, "--name", "node2")
	mustRun(t, "certs", "issue", "--dir", dir, "--name", "alice", "--client", "--days", "400")

	ca := readCert(t, filepath.Join(dir, "ca.crt"))
	if !ca.IsCA {
		t.Fatal("ca.crt is not a CA certificate")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	verify := func(c *x509.Certificate, usage x509.ExtKeyUsage, host string) error {
		_, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}})
		return err
	}

	// A node's certificate: server and client use, for the hosts given.
	node1 := readCert(t, filepath.Join(dir, "node1.crt"))
	for _, host := range []string{"node1.lan", "10.0.0.1"} {
		if err := verify(node1, x509.ExtKeyUsageServerAuth, host); err != nil {
			t.Errorf("node1 as server for %s: %v", host, err)
		}
	}
	if err := verify(node1, x509.ExtKeyUsageClientAuth, ""); err != nil {
		t.Errorf("node1 as client: %v", err)
	}
	if err := verify(node1, x509.ExtKeyUsageServerAuth, "localhost"); err == nil {
		t.Error("node1 verifies for localhost, which --hosts did not name")
	}
	// --hosts defaults to localhost,127.0.0.1.
	node2 := readCert(t, filepath.Join(dir, "node2.crt"))
	for _, host := range []string{"localhost", "127.0.0.1"} {
		if err := verify(node2, x509.ExtKeyUsageServerAuth, host); err != nil {
			t.Errorf("node2 as server for %s: %v", host, err)
		}
	}

	// A client's certificate: client use only; it cannot serve.
	alice := readCert(t, filepath.Join(dir, "alice.crt"))
	if err := verify(alice, x509.ExtKeyUsageClientAuth, ""); err != nil {
		t.Errorf("alice as client: %v", err)
	}
	if err := verify(alice, x509.ExtKeyUsageServerAuth, ""); err == nil {
		t.Error("alice's client certificate verifies for server use")
	}
	if len(alice.DNSNames)+len(alice.IPAddresses) != 0 {
		t.Errorf("client certificate names hosts: %v %v", alice.DNSNames, alice.IPAddresses)
	}
	// --days 400 outlives the 30-day CA: cut to the CA's end.
	if alice.NotAfter.After(ca.NotAfter) {
		t.Errorf("alice's certificate ends %v, after its CA (%v)", alice.NotAfter, ca.NotAfter)
	}

	// The files load as the node and client flags will load them.
	if _, _, err := tlsconf.PeerConfigs(filepath.Join(dir, "node1.crt"), filepath.Join(dir, "node1.key"), filepath.Join(dir, "ca.crt")); err != nil {
		t.Errorf("node1 as a peer: %v", err)
	}
	if _, err := tlsconf.ClientConfig(tlsconf.ClientFiles{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "alice.crt"), Key: filepath.Join(dir, "alice.key")}); err != nil {
		t.Errorf("alice as a client: %v", err)
	}
	for _, key := range []string{"ca.key", "node1.key", "alice.key"} {
		st, err := os.Stat(filepath.Join(dir, key))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is readable by others: %v", key, st.Mode().Perm())
		}
	}

	// Nothing is overwritten, and saying so is not a usage error.
	caBefore, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	if _, err := run("certs", "init", "--dir", dir); err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("second init: %v, want a refusal to overwrite", err)
	}
	if caAfter, _ := os.ReadFile(filepath.Join(dir, "ca.key")); string(caAfter) != string(caBefore) {
		t.Error("second init replaced ca.key")
	}
	if _, err := run("certs", "issue", "--dir", dir, "--name", "node1"); err == nil || !strings.Contains(err.Error(), "already has") {
		t.Errorf("issuing node1 twice: %v, want a refusal", err)
	}
}

func TestCertsIssueWithoutCA(t *testing.T) {
	_, err := run("certs", "issue", "--dir", t.TempDir(), "--name", "n")
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "certs init") {
		t.Fatalf("issue without a CA: %v, want an error pointing to 'certs init'", err)
	}
}

func TestCertsUsageErrors(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "certs", "init", "--dir", dir)
	for _, args := range [][]string{
		{"certs", "init"},
		{"certs", "init", "--dir", t.TempDir(), "--days", "0"},
		{"certs", "init", "--dir", t.TempDir(), "extra"},
		{"certs", "init", "--nope"},
		{"certs", "issue", "--dir", dir},
		{"certs", "issue", "--name", "n"},
		{"certs", "issue", "--dir", dir, "--name", "../escape"},
		{"certs", "issue", "--dir", dir, "--name", "ca"},
		{"certs", "issue", "--dir", dir, "--name", "c", "--client", "--hosts", "a"},
		{"certs", "issue", "--dir", dir, "--name", "n", "--hosts", " , "},
		{"certs", "issue", "--dir", dir, "--name", "n", "--hosts", "not a host"},
		{"certs", "issue", "--dir", dir, "--name", "n", "--days", "-1"},
		{"certs", "issue", "--dir", dir, "--name", "c", "--client", "--node-id", "1"},
		{"certs", "issue", "--dir", dir, "--name", "n", "--node-id", "65536"},
	} {
		if _, err := run(args...); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error (exit status 2)", args, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("usage errors left files behind: %v", entries)
	}
}

func TestCertsHelpSaysHowToUseThem(t *testing.T) {
	out := mustRun(t, "certs", "--help")
	for _, flag := range []string{"development", "--tls-cert", "--tls-key", "--tls-client-ca", "--peer-tls-cert", "--peer-tls-key", "--peer-tls-ca", "--tls-ca", "mutual"} {
		if !strings.Contains(out, flag) {
			t.Errorf("certs help does not mention %q", flag)
		}
	}
}

// --if-absent makes init and issue safe to run at every start (the compose
// file's certs services do): an existing CA or certificate that fits is kept
// byte for byte, one that does not fit is refused, and absent ones are made.
func TestCertsIfAbsentKeepsWhatFits(t *testing.T) {
	dir := t.TempDir()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	mustRun(t, "certs", "init", "--dir", dir, "--if-absent")
	mustRun(t, "certs", "issue", "--dir", dir, "--name", "n1", "--hosts", "n1,localhost,127.0.0.1", "--if-absent")
	mustRun(t, "certs", "issue", "--dir", dir, "--name", "alice", "--client", "--if-absent")
	before := map[string]string{}
	for _, f := range []string{"ca.crt", "ca.key", "n1.crt", "n1.key", "alice.crt", "alice.key"} {
		before[f] = read(f)
	}

	if out := mustRun(t, "certs", "init", "--dir", dir, "--if-absent"); !strings.Contains(out, "kept") {
		t.Errorf("init --if-absent over a CA: %q, want it kept", out)
	}
	// The same hosts in another order and spelling are the same certificate.
	mustRun(t, "certs", "issue", "--dir", dir, "--name", "n1", "--hosts", "127.0.0.1, localhost,n1", "--if-absent")
	mustRun(t, "certs", "issue", "--dir", dir, "--name", "alice", "--client", "--if-absent")
	for f, b := range before {
		if read(f) != b {
			t.Errorf("--if-absent replaced %s", f)
		}
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "n1", "--hosts", "n1,localhost"}, "names hosts"},
		{[]string{"--name", "n1", "--client"}, "node certificate"},
		{[]string{"--name", "alice", "--hosts", "alice"}, "--client certificate"},
	} {
		args := append([]string{"certs", "issue", "--dir", dir, "--if-absent"}, tc.args...)
		if _, err := run(args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want a refusal saying %q", args, err, tc.want)
		}
	}

	// A certificate another CA signed is not kept either.
	other := t.TempDir()
	mustRun(t, "certs", "init", "--dir", other)
	mustRun(t, "certs", "issue", "--dir", other, "--name", "n1", "--hosts", "n1")
	for _, f := range []string{"n1.crt", "n1.key"} {
		if err := os.Rename(filepath.Join(other, f), filepath.Join(dir, "x"+f)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := run("certs", "issue", "--dir", dir, "--name", "xn1", "--hosts", "n1", "--if-absent"); err == nil || !strings.Contains(err.Error(), "cannot keep") {
		t.Errorf("keeping a certificate of another CA: %v, want a refusal", err)
	}
	// Nor a CA whose key is not its certificate's.
	if err := os.WriteFile(filepath.Join(dir, "ca.key"), []byte(read("n1.key")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := run("certs", "init", "--dir", dir, "--if-absent"); err == nil || !strings.Contains(err.Error(), "does not load") {
		t.Errorf("init --if-absent over a broken CA: %v, want a refusal", err)
	}
}

// A node certificate issued with --node-id is bound to that id; the node
// refuses to start with it under another --id (exit status 2), and
// --if-absent keeps it only for the same id.
func TestCertsIssueNodeIDBindsTheNode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	mustRun(t, "certs", "init", "--dir", dir)
	mustRun(t, "certs", "issue", "--dir", dir, "--name", "n2", "--node-id", "2", "--hosts", "127.0.0.1")
	if id, ok, err := tlsconf.NodeIDOf(readCert(t, filepath.Join(dir, "n2.crt"))); err != nil || !ok || id != 2 {
		t.Fatalf("n2.crt: node id %d, %v, %v; want 2", id, ok, err)
	}
	mustRun(t, "certs", "issue", "--dir", dir, "--name", "n2", "--node-id", "2", "--hosts", "127.0.0.1", "--if-absent")
	if _, err := run("certs", "issue", "--dir", dir, "--name", "n2", "--node-id", "3", "--hosts", "127.0.0.1", "--if-absent"); err == nil || !strings.Contains(err.Error(), "bound to node id 2, not 3") {
		t.Fatalf("--if-absent with another node id: %v, want a refusal naming both ids", err)
	}
	err := runNode(nodeFlags{id: 1, peers: "1=127.0.0.1:7001", data: t.TempDir(),
		peerTLS: peerTLSFlags{cert: filepath.Join(dir, "n2.crt"), key: filepath.Join(dir, "n2.key"), ca: filepath.Join(dir, "ca.crt")}})
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "bound to node id 2, not --id 1") {
		t.Fatalf("node --id 1 with node 2's certificate: %v, want a usage error naming both ids", err)
	}
}
