package tlsconf

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// A node certificate may name the node id it belongs to, as a URI subject
// alternative name livepaxos://node/ID. On the peer port a node then takes
// a protocol message only if the node id it says it comes from is the one
// the sending connection's certificate names: a certificate signed by the
// peer CA proves membership of the deployment, the id in it proves which
// member. Without ids in the certificates, any holder of a node certificate
// could speak as any node.
const (
	nodeIDScheme = "livepaxos"
	nodeIDHost   = "node"
)

// ErrNodeID marks a certificate whose node id is malformed or two-fold.
var ErrNodeID = errors.New("certificate node id")

// NodeIDURI is the subject alternative name that binds a certificate to
// node id.
func NodeIDURI(id uint32) *url.URL {
	return &url.URL{Scheme: nodeIDScheme, Host: nodeIDHost, Path: "/" + strconv.FormatUint(uint64(id), 10)}
}

// NodeIDOf returns the node id a certificate is bound to: ok is false for
// a certificate that names none (a client's, or a node's issued without
// one). A certificate naming two ids, id 0, or a malformed one is an error:
// it cannot speak for any node.
func NodeIDOf(cert *x509.Certificate) (id uint32, ok bool, err error) {
	for _, u := range cert.URIs {
		if u.Scheme != nodeIDScheme || u.Host != nodeIDHost {
			continue
		}
		n, perr := strconv.ParseUint(strings.TrimPrefix(u.Path, "/"), 10, 32)
		if perr != nil || n == 0 || !strings.HasPrefix(u.Path, "/") {
			return 0, false, fmt.Errorf("%w: %q in the certificate of %q is not livepaxos://node/ID with ID from 1", ErrNodeID, u, cert.Subject.CommonName)
		}
		if ok && uint32(n) != id {
			return 0, false, fmt.Errorf("%w: the certificate of %q names two node ids, %d and %d", ErrNodeID, cert.Subject.CommonName, id, n)
		}
		id, ok = uint32(n), true
	}
	return id, ok, nil
}
