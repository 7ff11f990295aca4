// Package tlsconf loads the TLS configurations of livepaxos's two ports,
// issues development certificates, and turns the TLS errors a gRPC client
// sees into errors that say which misconfiguration it is.
//
// The client port (clients to nodes) may use server-only TLS or mutual TLS;
// the peer port (node to node) is always mutual: every node presents its
// certificate and checks the other's against the cluster's CA.
//
// Files are read once, when a configuration is built; a changed certificate
// takes effect at the next restart. Every error about a file wraps ErrConfig
// and names the file.
package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// ErrConfig marks a TLS configuration that cannot work: a missing or
// unreadable file, a file that is not what it should be, or an incomplete
// set of files.
var ErrConfig = errors.New("TLS configuration")

// minVersion is the oldest protocol version any of our ends accepts.
const minVersion = tls.VersionTLS12

// ServerFiles are the PEM files of a server's TLS: its certificate (chain)
// and key, and optionally the CA that client certificates must chain to.
type ServerFiles struct {
	Cert     string // certificate chain, leaf first
	Key      string // private key of the leaf
	ClientCA string // if set, clients must present a certificate signed by this CA
}

// Enabled reports whether any file is set, that is, whether the port is
// meant to use TLS (ServerConfig says whether the set is complete).
func (f ServerFiles) Enabled() bool {
	return f.Cert != "" || f.Key != "" || f.ClientCA != ""
}

// ServerConfig loads a server's TLS configuration. With no files set it
// returns nil, nil: the port speaks plaintext. With ClientCA set the server
// requires and verifies a client certificate (mutual TLS).
func ServerConfig(f ServerFiles) (*tls.Config, error) {
	if !f.Enabled() {
		return nil, nil
	}
	if f.Cert == "" && f.Key == "" {
		return nil, fmt.Errorf("%w: client CA %s given without the server's certificate and key", ErrConfig, f.ClientCA)
	}
	if err := pairComplete(f.Cert, f.Key); err != nil {
		return nil, err
	}
	cert, err := loadKeyPair(f.Cert, f.Key, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: minVersion, Certificates: []tls.Certificate{cert}}
	if f.ClientCA != "" {
		pool, err := loadPool(f.ClientCA, "client CA")
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientFiles are the PEM files of a client's TLS: the CA that the
// server's certificate must chain to, and optionally the client's own
// certificate and key for a server that asks for one.
type ClientFiles struct {
	CA         string // if empty, the system's roots verify the server
	Cert       string // client certificate chain, for mutual TLS
	Key        string // private key of Cert
	ServerName string // name to verify the server as; empty: the host dialled
}

// ClientConfig loads a client's TLS configuration. With no files set it
// returns nil, nil: the client speaks plaintext. TLS is on when CA or
// Cert/Key is set; with CA empty the server is verified against the system's
// roots (so a client presenting a certificate to a server with a public
// certificate needs no CA file). ServerName alone is an error: it would
// say how to verify a server the client does not use TLS with.
func ClientConfig(f ClientFiles) (*tls.Config, error) {
	if f.CA == "" && f.Cert == "" && f.Key == "" {
		if f.ServerName != "" {
			return nil, fmt.Errorf("%w: server name %q given without a CA or a client certificate, so TLS is off", ErrConfig, f.ServerName)
		}
		return nil, nil
	}
	if f.Cert != "" || f.Key != "" {
		if err := pairComplete(f.Cert, f.Key); err != nil {
			return nil, err
		}
	}
	cfg := &tls.Config{MinVersion: minVersion, ServerName: f.ServerName}
	if f.CA != "" {
		pool, err := loadPool(f.CA, "CA")
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if f.Cert != "" {
		cert, err := loadKeyPair(f.Cert, f.Key, x509.ExtKeyUsageClientAuth)
		if err != nil {
			return nil, err
		}
		presentAlways(cfg, cert)
	}
	return cfg, nil
}

// PeerConfigs loads the peer port's TLS, which is always mutual: the server
// side requires a client certificate signed by ca, the client side verifies
// the other node's certificate against ca, and both present cert. So cert
// must be usable for both serverAuth and clientAuth (`livepaxos certs issue`
// without --client makes such certificates). With all three empty both
// configurations are nil (plaintext peers); with only some set it fails.
func PeerConfigs(cert, key, ca string) (server, client *tls.Config, err error) {
	if cert == "" && key == "" && ca == "" {
		return nil, nil, nil
	}
	if cert == "" && key == "" {
		return nil, nil, fmt.Errorf("%w: peer CA %s given without the node's certificate and key", ErrConfig, ca)
	}
	if err := pairComplete(cert, key); err != nil {
		return nil, nil, err
	}
	if ca == "" {
		return nil, nil, fmt.Errorf("%w: peer TLS is mutual and needs a CA file as well as certificate %s and key %s", ErrConfig, cert, key)
	}
	pair, err := loadKeyPair(cert, key, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, nil, err
	}
	pool, err := loadPool(ca, "peer CA")
	if err != nil {
		return nil, nil, err
	}
	server = &tls.Config{
		MinVersion:   minVersion,
		Certificates: []tls.Certificate{pair},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	client = &tls.Config{MinVersion: minVersion, RootCAs: pool}
	presentAlways(client, pair)
	return server, client, nil
}

// presentAlways makes a client present its certificate whenever a server
// asks for one. By default a Go client sends none if its certificate is not
// signed by one of the CAs the server lists as acceptable; the server then
// says only "certificate required", hiding that the certificate exists but
// comes from the wrong CA. Presented anyway, the server refuses it as
// "unknown certificate authority" (or "expired certificate"), which names
// the real problem; a server that trusts it accepts it as before.
func presentAlways(cfg *tls.Config, cert tls.Certificate) {
	cfg.Certificates = []tls.Certificate{cert}
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &cert, nil
	}
}

// pairComplete checks that a certificate and its key come together.
func pairComplete(cert, key string) error {
	switch {
	case cert == "" && key == "":
		return fmt.Errorf("%w: a certificate and its key are needed", ErrConfig)
	case key == "":
		return fmt.Errorf("%w: certificate %s given without its key file", ErrConfig, cert)
	case cert == "":
		return fmt.Errorf("%w: key %s given without its certificate file", ErrConfig, key)
	}
	return nil
}

// loadKeyPair reads a certificate chain and its key, checks they belong
// together and that the leaf may be used for each of the given purposes
// (better refused here, with the file's name, than by every peer at
// handshake time).
func loadKeyPair(certFile, keyFile string, purposes ...x509.ExtKeyUsage) (tls.Certificate, error) {
	certs, _, err := readCerts(certFile, "certificate")
	if err != nil {
		return tls.Certificate{}, err
	}
	key, _, err := readKey(keyFile, "key")
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf := certs[0]
	if !publicKeysEqual(key.Public(), leaf.PublicKey) {
		return tls.Certificate{}, fmt.Errorf("%w: key %s does not match certificate %s", ErrConfig, keyFile, certFile)
	}
	for _, p := range purposes {
		if !allowsUsage(leaf, p) {
			return tls.Certificate{}, fmt.Errorf("%w: certificate %s is not for %s use (its extended key usage lacks %s)", ErrConfig, certFile, usageName(p), usageName(p)+"Auth")
		}
	}
	pair := tls.Certificate{PrivateKey: key, Leaf: leaf}
	for _, c := range certs {
		pair.Certificate = append(pair.Certificate, c.Raw)
	}
	return pair, nil
}

// allowsUsage follows x509.Verify: a certificate without extended key
// usages may be used for anything.
func allowsUsage(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	return len(c.ExtKeyUsage) == 0 || slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny) || slices.Contains(c.ExtKeyUsage, u)
}

func usageName(u x509.ExtKeyUsage) string {
	if u == x509.ExtKeyUsageServerAuth {
		return "server"
	}
	return "client"
}

// loadPool reads a file of one or more CA certificates.
func loadPool(file, what string) (*x509.CertPool, error) {
	certs, _, err := readCerts(file, what)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// readPEM reads a PEM file and decodes its blocks, in order (none when the
// file is not PEM at all). what names the file's role in errors.
func readPEM(file, what string) ([]byte, []*pem.Block, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s %s: %w", ErrConfig, what, file, err)
	}
	var blocks []*pem.Block
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return data, blocks, nil
		}
		blocks = append(blocks, block)
	}
}

// readCerts reads every CERTIFICATE block of a PEM file; there must be at
// least one. what names the file's role in errors ("client CA").
func readCerts(file, what string) ([]*x509.Certificate, []byte, error) {
	data, blocks, err := readPEM(file, what)
	if err != nil {
		return nil, nil, err
	}
	var certs []*x509.Certificate
	var others []string
	for _, block := range blocks {
		if block.Type != "CERTIFICATE" {
			others = append(others, block.Type)
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s %s: certificate %d: %w", ErrConfig, what, file, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	switch {
	case len(certs) > 0:
		return certs, data, nil
	case len(others) > 0:
		return nil, nil, fmt.Errorf("%w: %s %s holds no CERTIFICATE, only %s", ErrConfig, what, file, strings.Join(others, ", "))
	default:
		return nil, nil, fmt.Errorf("%w: %s %s is not a PEM file", ErrConfig, what, file)
	}
}

// readKey reads the first private key of a PEM file: PKCS #8, SEC 1 (EC) or
// PKCS #1 (RSA). Encrypted keys are not supported.
func readKey(file, what string) (crypto.Signer, []byte, error) {
	data, blocks, err := readPEM(file, what)
	if err != nil {
		return nil, nil, err
	}
	var others []string
	for _, block := range blocks {
		switch block.Type {
		case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
			key, err := parseKey(block.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s %s: %w", ErrConfig, what, file, err)
			}
			return key, data, nil
		case "ENCRYPTED PRIVATE KEY":
			return nil, nil, fmt.Errorf("%w: %s %s is encrypted; give an unencrypted key", ErrConfig, what, file)
		}
		others = append(others, block.Type)
	}
	if len(others) > 0 {
		return nil, nil, fmt.Errorf("%w: %s %s holds no PRIVATE KEY, only %s", ErrConfig, what, file, strings.Join(others, ", "))
	}
	return nil, nil, fmt.Errorf("%w: %s %s is not a PEM file", ErrConfig, what, file)
}

func parseKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		switch k := k.(type) {
		case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer), nil
		default:
			return nil, fmt.Errorf("unsupported private key type %T", k)
		}
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("not a PKCS #8, EC or RSA private key")
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}
