package tlsconf

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"
)

func parsePEMCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("not PEM")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIssueChainsAndUsages(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("ca", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, c := range []struct {
		usage          Usage
		hosts          []string
		server, client bool
	}{
		{Server, []string{"db.example.com", "10.0.0.7"}, true, false},
		{Client, nil, false, true},
		{ServerAndClient, []string{"node1", "::1"}, true, true},
	} {
		certPEM, _, err := ca.Issue("n", c.hosts, c.usage, now.Add(-time.Minute), now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		leaf := parsePEMCert(t, certPEM)
		for _, u := range []struct {
			eku  x509.ExtKeyUsage
			want bool
		}{{x509.ExtKeyUsageServerAuth, c.server}, {x509.ExtKeyUsageClientAuth, c.client}} {
			_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{u.eku}})
			if (err == nil) != u.want {
				t.Errorf("%v certificate for usage %v: verify error %v, want ok=%v", c.usage, u.eku, err, u.want)
			}
		}
		for _, h := range c.hosts {
			if err := leaf.VerifyHostname(h); err != nil {
				t.Errorf("%v certificate: %v", c.usage, err)
			}
		}
		if leaf.IsCA {
			t.Errorf("%v certificate is a CA", c.usage)
		}
	}
	for _, bad := range []struct {
		usage Usage
		hosts []string
	}{
		{Server, nil},                      // a server needs a name
		{ServerAndClient, []string{"a b"}}, // not a host name
		{0, []string{"x"}},                 // no usage
	} {
		if _, _, err := ca.Issue("n", bad.hosts, bad.usage, now, now.Add(time.Minute)); !errors.Is(err, ErrConfig) {
			t.Errorf("Issue(%v, %q): %v, want ErrConfig", bad.usage, bad.hosts, err)
		}
	}
	if _, _, err := ca.Issue("n", []string{"x"}, Server, now, now); !errors.Is(err, ErrConfig) {
		t.Errorf("empty validity: %v", err)
	}
}
