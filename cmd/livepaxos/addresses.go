package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/livepaxos/livepaxos/cluster"
)

// clientPortOffset places a node's default client port above its peer
// port: peers on 7001-7003 serve clients on 7101-7103.
const clientPortOffset = 100

// nodeAddresses are where a node listens and what it tells others to dial,
// on its peer port and on its client port.
type nodeAddresses struct {
	peerListen, peerAdvertise     string
	clientListen, clientAdvertise string
}

// resolveAddresses works out a node's four addresses from its flags.
// member is the node's address in --peers or --learners ("" for --join).
//
//   - --advertise is what the other nodes dial: the --peers address, so it
//     may only be given when it says the same (or for --join, where there is
//     no --peers entry); by default the member address, else --listen.
//   - --listen defaults to the advertised address; it may be a wildcard
//     (0.0.0.0:7001) in a container.
//   - --client-listen defaults to the --listen host with the peer port plus
//     100.
//   - --client-advertise defaults to --client-listen, or, when that is a
//     wildcard, the advertised peer host with the client port.
func resolveAddresses(member, listen, advertise, clientListen, clientAdvertise string) (nodeAddresses, error) {
	a := nodeAddresses{peerListen: listen, peerAdvertise: advertise, clientListen: clientListen, clientAdvertise: clientAdvertise}
	switch {
	case a.peerAdvertise == "" && member != "":
		a.peerAdvertise = member
	case a.peerAdvertise == "":
		a.peerAdvertise = a.peerListen
	case member != "" && a.peerAdvertise != member:
		return a, fmt.Errorf("--advertise %s differs from this node's address in --peers (%s): the others dial what --peers says", a.peerAdvertise, member)
	}
	if a.peerAdvertise == "" {
		return a, fmt.Errorf("--join needs --advertise or --listen: the address the others dial")
	}
	if err := cluster.CheckAddress(a.peerAdvertise); err != nil {
		return a, fmt.Errorf("--advertise: %v", err)
	}
	if isWildcard(a.peerAdvertise) {
		return a, fmt.Errorf("--advertise %s is a wildcard: give the address the others dial", a.peerAdvertise)
	}
	if a.peerListen == "" {
		a.peerListen = a.peerAdvertise
	}
	if err := cluster.CheckAddress(a.peerListen); err != nil {
		return a, fmt.Errorf("--listen: %v", err)
	}
	if a.clientListen == "" {
		host, port, _ := net.SplitHostPort(a.peerListen)
		p, _ := strconv.Atoi(port)
		if p+clientPortOffset > 65535 {
			return a, fmt.Errorf("--listen port %d leaves no room for the default client port (+%d): set --client-listen", p, clientPortOffset)
		}
		a.clientListen = net.JoinHostPort(host, strconv.Itoa(p+clientPortOffset))
	}
	if err := cluster.CheckAddress(a.clientListen); err != nil {
		return a, fmt.Errorf("--client-listen: %v", err)
	}
	if a.clientAdvertise == "" {
		a.clientAdvertise = a.clientListen
		if isWildcard(a.clientListen) {
			host, _, _ := net.SplitHostPort(a.peerAdvertise)
			_, port, _ := net.SplitHostPort(a.clientListen)
			a.clientAdvertise = net.JoinHostPort(host, port)
		}
	}
	if err := cluster.CheckAddress(a.clientAdvertise); err != nil {
		return a, fmt.Errorf("--client-advertise: %v", err)
	}
	if isWildcard(a.clientAdvertise) {
		return a, fmt.Errorf("--client-advertise %s is a wildcard: give the address clients dial", a.clientAdvertise)
	}
	if a.clientListen == a.peerListen {
		return a, fmt.Errorf("--client-listen %s is the peer port: give the client API a port of its own", a.clientListen)
	}
	return a, nil
}

// isWildcard reports whether addr's host is an unspecified address
// (0.0.0.0, ::), which one can listen on but not dial.
func isWildcard(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}
