package tlsconf

import (
	"crypto/x509"
	"errors"
	"net/url"
	"testing"
	"time"
)

func TestIssueNodeBindsTheNodeID(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("ca", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := ca.IssueNode("n3", 3, []string{"node3"}, ServerAndClient, now.Add(-time.Minute), now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if id, ok, err := NodeIDOf(parsePEMCert(t, certPEM)); err != nil || !ok || id != 3 {
		t.Fatalf("NodeIDOf = %d, %v, %v; want 3, true, nil", id, ok, err)
	}
	plain, _, err := ca.Issue("n4", []string{"node4"}, ServerAndClient, now.Add(-time.Minute), now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if id, ok, err := NodeIDOf(parsePEMCert(t, plain)); err != nil || ok {
		t.Fatalf("an unbound certificate: NodeIDOf = %d, %v, %v; want not bound", id, ok, err)
	}
	if _, _, err := ca.IssueNode("alice", 3, nil, Client, now, now.Add(time.Minute)); !errors.Is(err, ErrConfig) {
		t.Fatalf("a client certificate bound to a node id: %v, want ErrConfig", err)
	}
}

func TestNodeIDOfRefusesMalformedAndTwofoldIDs(t *testing.T) {
	uri := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	for _, c := range []struct {
		name string
		uris []*url.URL
	}{
		{"id 0", []*url.URL{uri("livepaxos://node/0")}},
		{"not a number", []*url.URL{uri("livepaxos://node/x")}},
		{"above 32 bits", []*url.URL{uri("livepaxos://node/4294967296")}},
		{"two ids", []*url.URL{NodeIDURI(1), NodeIDURI(2)}},
	} {
		if _, _, err := NodeIDOf(&x509.Certificate{URIs: c.uris}); !errors.Is(err, ErrNodeID) {
			t.Errorf("%s: %v, want ErrNodeID", c.name, err)
		}
	}
	// Another scheme's URI (a SPIFFE id, say) is not ours to judge.
	if _, ok, err := NodeIDOf(&x509.Certificate{URIs: []*url.URL{uri("spiffe://example.org/node/1"), NodeIDURI(7)}}); err != nil || !ok {
		t.Errorf("a foreign URI beside ours: ok %v, err %v", ok, err)
	}
}
