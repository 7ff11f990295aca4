package cluster

import (
	"errors"
	"maps"
	"testing"
)

// FuzzParsePeers: any --peers text either parses into ids within the
// ballot stride and well-formed addresses that print back to a list
// parsing to the same peers, or is refused with ErrBadPeers. Never a
// panic.
func FuzzParsePeers(f *testing.F) {
	for _, s := range []string{"1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003", " 1 = a:1 ", "1=[::1]:7001",
		"65535=h:65535", "65536=h:1", "0=h:1", "1=h:0", "1=h:1,1=h:2", "1=:1", "01=h:1", "1=h:1,,2=h:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		peers, err := ParsePeers(s)
		if err != nil {
			if !errors.Is(err, ErrBadPeers) {
				t.Fatalf("ParsePeers(%q): %v does not wrap ErrBadPeers", s, err)
			}
			return
		}
		for id, addr := range peers {
			if CheckNodeID(uint64(id)) != nil || CheckAddress(addr) != nil {
				t.Fatalf("ParsePeers(%q) took node %d at %q", s, id, addr)
			}
		}
		again, err := ParsePeers(peers.String())
		if err != nil || !maps.Equal(again, peers) {
			t.Fatalf("ParsePeers(%q) = %v prints as %q, which parses to %v, %v", s, peers, peers.String(), again, err)
		}
	})
}
