package cluster

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParsePeers(t *testing.T) {
	p, err := ParsePeers("3=127.0.0.1:7003, 1=127.0.0.1:7001,2=[::1]:7002")
	if err != nil {
		t.Fatal(err)
	}
	want := Peers{1: "127.0.0.1:7001", 2: "[::1]:7002", 3: "127.0.0.1:7003"}
	if len(p) != len(want) {
		t.Fatalf("got %v, want %v", p, want)
	}
	for id, a := range want {
		if p[id] != a {
			t.Fatalf("got %v, want %v", p, want)
		}
	}
	if ids := p.IDs(); !slices.Equal(ids, []uint32{1, 2, 3}) {
		t.Fatalf("IDs() = %v", ids)
	}
	canon := "1=127.0.0.1:7001,2=[::1]:7002,3=127.0.0.1:7003"
	if s := p.String(); s != canon {
		t.Fatalf("String() = %q, want %q", s, canon)
	}
	again, err := ParsePeers(p.String())
	if err != nil || again.String() != canon {
		t.Fatalf("round trip: %v, %v", again, err)
	}
	if one, err := ParsePeers("65535=db.example:65535"); err != nil || one[65535] != "db.example:65535" {
		t.Fatalf("largest id and port: %v, %v", one, err)
	}
}

func TestParsePeersErrors(t *testing.T) {
	for _, tc := range []struct{ in, says string }{
		{"", "empty list"},
		{"  ", "empty list"},
		{"1=127.0.0.1:7001,", "entry 2 is empty"},
		{",1=127.0.0.1:7001", "entry 1 is empty"},
		{"127.0.0.1:7001", "has no '='"},
		{"=127.0.0.1:7001", "missing id"},
		{"1=", "missing address"},
		{"0=127.0.0.1:7001", "id 0 is reserved"},
		{"-1=127.0.0.1:7001", "not a decimal number"},
		{"+1=127.0.0.1:7001", "not a decimal number"},
		{"01=127.0.0.1:7001", "leading zero"},
		{"x=127.0.0.1:7001", "not a decimal number"},
		{"4294967296=127.0.0.1:7001", "over the limit 65535"},
		{"65536=127.0.0.1:7001", "over the limit 65535"},
		{"1=127.0.0.1", "not host:port"},
		{"1=:7001", "has no host"},
		{"1=127.0.0.1:0", "port must be 1..65535"},
		{"1=127.0.0.1:65536", "must be 1..65535"},
		{"1=127.0.0.1:http", "not a decimal number"},
		{"1=127.0.0.1:07001", "leading zero"},
		{"1=a b:7001", "invalid host"},
		{"1=127.0.0.1:7001,1=127.0.0.1:7002", "duplicate id 1"},
		{"1=127.0.0.1:7001,2=127.0.0.1:7001", "duplicate address 127.0.0.1:7001 (ids 1 and 2)"},
		{"1=127.0.0.1:7001;2=127.0.0.1:7002", "is not host:port"},
	} {
		p, err := ParsePeers(tc.in)
		if !errors.Is(err, ErrBadPeers) {
			t.Errorf("ParsePeers(%q) = %v, %v; want ErrBadPeers", tc.in, p, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.says) {
			t.Errorf("ParsePeers(%q) error %q does not say %q", tc.in, err, tc.says)
		}
	}
}

func TestRolePID(t *testing.T) {
	pid := RolePID("127.0.0.1:7001", "acceptor")
	if pid.Address != "127.0.0.1:7001" || pid.Id != "replica/acceptor" {
		t.Fatalf("RolePID = %v", pid)
	}
}
