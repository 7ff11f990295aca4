package tests

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/tlsconf"
)

// With client certificates required, membership changes, consistency
// checks and snapshots are for the certificates --tls-admin-names lists
// (default "admin"): another client's are refused with PermissionDenied
// and change nothing, while it still writes, reads and asks for status.
func TestAdminMethodsNeedAnOperatorCertificate(t *testing.T) {
	t.Parallel()
	c := newClusterOpts(t, 3, clusterOpts{tls: true})
	c.waitWritable(30 * time.Second)
	c.certs.issue(t, "admin", nil, tlsconf.Client, time.Now().Add(24*time.Hour))
	as := func(name string, args ...string) cliResult {
		return runCLI(t, c.bin, nil, append(args, "--endpoints", strings.Join(c.endpoints(), ","), "--tls-ca", c.certs.path("ca.crt"),
			"--tls-cert", c.certs.path(name+".crt"), "--tls-key", c.certs.path(name+".key"), "--timeout", "20s")...)
	}
	if r := as("client", "put", "k", "v"); r.code != 0 {
		t.Fatalf("put with a client certificate: exit %d\n%s", r.code, r.stderr)
	}
	backup := filepath.Join(t.TempDir(), "backup.lps")
	for _, args := range [][]string{{"check"}, {"snapshot"}, {"snapshot", "save", backup}, {"members", "add", "9=127.0.0.1:1"},
		{"limits", "set", "--max-value-bytes", "10"}} {
		r := as("client", args...)
		if r.code == 0 || !strings.Contains(r.stderr, "operator's client certificate") {
			t.Fatalf("%s with a client's certificate: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
	// The JSON form, over HTTP/1.1 on the same port, refuses it too.
	cfg, err := tlsconf.ClientConfig(tlsconf.ClientFiles{CA: c.certs.path("ca.crt"), Cert: c.certs.path("client.crt"), Key: c.certs.path("client.key")})
	if err != nil {
		t.Fatal(err)
	}
	cfg.NextProtos = []string{"http/1.1"}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	for path, want := range map[string]int{"/livepaxos.v1.KV/Check": http.StatusForbidden, "/livepaxos.v1.KV/Status": http.StatusOK} {
		resp, err := hc.Post("https://"+c.nodes[0].clientAddr+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("POST %s with a client's certificate: %s, want %d\n%s", path, resp.Status, want, body)
		}
	}
	if r := as("client", "members", "list"); r.code != 0 || strings.Contains(r.stdout, "127.0.0.1:1") {
		t.Fatalf("members list after a refused add: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, 20*time.Second, "check with the admin certificate", func() error {
		if r := as("admin", "check"); r.code != 0 {
			return fmt.Errorf("exit %d: %s", r.code, r.stderr)
		}
		return nil
	})
	if r := as("admin", "snapshot", "save", backup); r.code != 0 {
		t.Fatalf("snapshot save with the admin certificate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
