package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Usage says what an issued certificate may be used for (its extended key
// usage). A livepaxos node needs ServerAndClient: on the peer port it both
// accepts connections and dials the other nodes, presenting the same
// certificate both ways.
type Usage int

const (
	Server          Usage = 1 << iota // serverAuth: accepts TLS connections
	Client                            // clientAuth: presents itself to a server that asks
	ServerAndClient = Server | Client
)

func (u Usage) String() string {
	switch u {
	case Server:
		return "server"
	case Client:
		return "client"
	case ServerAndClient:
		return "server and client"
	}
	return fmt.Sprintf("Usage(%d)", int(u))
}

// CA is a certificate authority that can issue certificates: its
// certificate and the key that signs with it.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer

	certPEM, keyPEM []byte
}

// NewCA makes a self-signed certificate authority with a fresh ECDSA P-256
// key, valid from notBefore to notAfter. It can sign leaf certificates only
// (path length zero): a development CA, not an intermediate-issuing root.
func NewCA(commonName string, notBefore, notAfter time.Time) (*CA, error) {
	if strings.TrimSpace(commonName) == "" {
		return nil, fmt.Errorf("%w: a CA needs a common name", ErrConfig)
	}
	if !notAfter.After(notBefore) {
		return nil, fmt.Errorf("%w: CA validity ends (%s) before it starts (%s)", ErrConfig, notAfter.UTC().Format(time.RFC3339), notBefore.UTC().Format(time.RFC3339))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("signing CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the CA certificate just made: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, certPEM: encodeCert(der), keyPEM: keyPEM}, nil
}

// LoadCA reads a CA's certificate and private key from PEM files (as
// written by PEM, or by `livepaxos certs init`). Errors wrap ErrConfig and
// name the file.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certs, certPEM, err := readCerts(certFile, "CA certificate")
	if err != nil {
		return nil, err
	}
	cert := certs[0]
	if !cert.IsCA {
		return nil, fmt.Errorf("%w: CA certificate %s is not a CA certificate (basic constraints say CA:false)", ErrConfig, certFile)
	}
	key, keyPEM, err := readKey(keyFile, "CA key")
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("%w: CA key %s does not match CA certificate %s", ErrConfig, keyFile, certFile)
	}
	return &CA{Cert: cert, Key: key, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// PEM returns the CA's certificate and private key, PEM-encoded (the key as
// PKCS #8). Keep the key secret: whoever holds it can mint certificates
// every node trusts.
func (ca *CA) PEM() (certPEM, keyPEM []byte) {
	return append([]byte(nil), ca.certPEM...), append([]byte(nil), ca.keyPEM...)
}

// Issue makes a certificate for name, signed by the CA, with a fresh ECDSA
// P-256 key. Each host becomes a subject alternative name: an IP SAN if it
// parses as an IP address, a DNS SAN otherwise. A certificate with Server
// usage needs at least one host (clients verify the name they dialled
// against these); a Client-only certificate needs none.
func (ca *CA) Issue(name string, hosts []string, usage Usage, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	return ca.IssueNode(name, 0, hosts, usage, notBefore, notAfter)
}

// IssueNode is Issue for a certificate bound to a node id (NodeIDURI), so
// that its holder can speak on the peer port as that node only; id 0 binds
// none. Only certificates with server usage (nodes') can be bound.
func (ca *CA) IssueNode(name string, id uint32, hosts []string, usage Usage, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	if id != 0 && usage&Server == 0 {
		return nil, nil, fmt.Errorf("%w: a node id binds a node's certificate; a client certificate has none", ErrConfig)
	}
	if strings.TrimSpace(name) == "" {
		return nil, nil, fmt.Errorf("%w: a certificate needs a name", ErrConfig)
	}
	if usage&ServerAndClient == 0 || usage&^ServerAndClient != 0 {
		return nil, nil, fmt.Errorf("%w: unknown certificate usage %v", ErrConfig, usage)
	}
	if !notAfter.After(notBefore) {
		return nil, nil, fmt.Errorf("%w: certificate validity ends (%s) before it starts (%s)", ErrConfig, notAfter.UTC().Format(time.RFC3339), notBefore.UTC().Format(time.RFC3339))
	}
	var dns []string
	var ips []net.IP
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if err := checkHostName(h); err != nil {
			return nil, nil, err
		}
		dns = append(dns, h)
	}
	if usage&Server != 0 && len(dns)+len(ips) == 0 {
		return nil, nil, fmt.Errorf("%w: a server certificate needs at least one host name or IP address", ErrConfig)
	}
	var ext []x509.ExtKeyUsage
	if usage&Server != 0 {
		ext = append(ext, x509.ExtKeyUsageServerAuth)
	}
	if usage&Client != 0 {
		ext = append(ext, x509.ExtKeyUsageClientAuth)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature, // ECDSA signs; it never enciphers keys
		ExtKeyUsage:           ext,
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	if id != 0 {
		tmpl.URIs = []*url.URL{NodeIDURI(id)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing certificate for %s: %w", name, err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

// WriteKeyPair writes a certificate (mode 0644) and its private key (mode
// 0600) to new files. It refuses to replace either file: an existing key may
// be in use, and overwriting it silently would lock nodes out. If the second
// write fails the first file is removed again.
func WriteKeyPair(certFile string, certPEM []byte, keyFile string, keyPEM []byte) error {
	for _, f := range []string{certFile, keyFile} {
		if _, err := os.Lstat(f); err == nil {
			return fmt.Errorf("%w: %s already exists; remove it first to replace it", os.ErrExist, f)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := writeNew(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeNew(certFile, certPEM, 0o644); err != nil {
		os.Remove(keyFile)
		return err
	}
	return nil
}

// writeNew creates path (failing if it exists) with mode perm and syncs it:
// a certificate half-written by a crash would fail every later handshake.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// checkHostName accepts what can sensibly go in a DNS SAN: letters, digits,
// '-', '.', and a leading "*." wildcard. Anything else would make a
// certificate no client can ever match, so it is refused here instead.
func checkHostName(h string) error {
	name := strings.TrimPrefix(h, "*.")
	if name == "" || len(h) > 253 || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
		return fmt.Errorf("%w: %q is neither an IP address nor a host name", ErrConfig, h)
	}
	for _, r := range name {
		ok := r == '-' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("%w: %q is neither an IP address nor a host name", ErrConfig, h)
		}
	}
	return nil
}

// newSerial is a random 128-bit serial number: RFC 5280 wants serials unique
// per CA, and a development CA keeps no record of the ones it used.
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // never zero
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
