package main

import (
	"strings"
	"testing"
)

func TestResolveAddresses(t *testing.T) {
	for _, tc := range []struct {
		name                               string
		member, listen, adv, cListen, cAdv string
		want                               nodeAddresses
		err                                string
	}{
		{name: "defaults from --peers", member: "10.0.0.1:7001",
			want: nodeAddresses{"10.0.0.1:7001", "10.0.0.1:7001", "10.0.0.1:7101", "10.0.0.1:7101"}},
		{name: "container: wildcards, advertised names", member: "n1:7001", listen: "0.0.0.0:7001",
			cListen: "0.0.0.0:7101", cAdv: "n1:7101",
			want: nodeAddresses{"0.0.0.0:7001", "n1:7001", "0.0.0.0:7101", "n1:7101"}},
		{name: "client wildcard advertises the peer host", member: "n1:7001", listen: "0.0.0.0:7001",
			want: nodeAddresses{"0.0.0.0:7001", "n1:7001", "0.0.0.0:7101", "n1:7101"}},
		{name: "join advertises --listen", listen: "10.0.0.4:7001",
			want: nodeAddresses{"10.0.0.4:7001", "10.0.0.4:7001", "10.0.0.4:7101", "10.0.0.4:7101"}},
		{name: "advertise must match --peers", member: "10.0.0.1:7001", adv: "10.0.0.9:7001", err: "differs from this node's address in --peers"},
		{name: "join needs an address", err: "--join needs --advertise or --listen"},
		{name: "wildcard advertise", adv: "0.0.0.0:7001", err: "is a wildcard"},
		{name: "client port on the peer port", member: "10.0.0.1:7001", cListen: "10.0.0.1:7001", err: "is the peer port"},
		{name: "no room for the default client port", member: "10.0.0.1:65500", err: "set --client-listen"},
		{name: "malformed client address", member: "10.0.0.1:7001", cAdv: "nohost", err: "--client-advertise"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolveAddresses(tc.member, tc.listen, tc.adv, tc.cListen, tc.cAdv)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
