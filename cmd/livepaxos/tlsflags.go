package main

import (
	"crypto/tls"

	"github.com/spf13/pflag"

	"github.com/livepaxos/livepaxos/tlsconf"
)

// serverTLSFlags put a node's client port under TLS.
type serverTLSFlags struct {
	cert, key, clientCA string
	adminNames          []string
}

func (f *serverTLSFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.cert, "tls-cert", "", "client port: serve TLS with this certificate (PEM); clients then need --tls-ca")
	fl.StringVar(&f.key, "tls-key", "", "client port: the private key of --tls-cert (PEM)")
	fl.StringVar(&f.clientCA, "tls-client-ca", "", "client port: require client certificates signed by this CA (mutual TLS)")
	fl.StringSliceVar(&f.adminNames, "tls-admin-names", []string{"admin"}, "with --tls-client-ca: the client certificate common names that may change the membership, check and snapshot")
}

func (f *serverTLSFlags) config() (*tls.Config, error) {
	return tlsconf.ServerConfig(tlsconf.ServerFiles{Cert: f.cert, Key: f.key, ClientCA: f.clientCA})
}

// peerTLSFlags put a node's peer port under mutual TLS.
type peerTLSFlags struct{ cert, key, ca string }

func (f *peerTLSFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.cert, "peer-tls-cert", "", "peer port: this node's certificate (PEM), for serverAuth and clientAuth; peer TLS is always mutual")
	fl.StringVar(&f.key, "peer-tls-key", "", "peer port: the private key of --peer-tls-cert (PEM)")
	fl.StringVar(&f.ca, "peer-tls-ca", "", "peer port: the CA that signs every node's certificate; a connection without one is refused before any message is read")
}

func (f *peerTLSFlags) configs() (server, client *tls.Config, err error) {
	return tlsconf.PeerConfigs(f.cert, f.key, f.ca)
}

// clientTLSFlags are a client's: the CA that signs the nodes' client-port
// certificates, and its own certificate when the nodes require one.
type clientTLSFlags struct{ ca, cert, key string }

func (f *clientTLSFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.ca, "tls-ca", "", "talk TLS to the nodes, verifying them against this CA (PEM)")
	fl.StringVar(&f.cert, "tls-cert", "", "present this client certificate (PEM), for nodes that require one")
	fl.StringVar(&f.key, "tls-key", "", "the private key of --tls-cert (PEM)")
}

func (f *clientTLSFlags) config() (*tls.Config, error) {
	return tlsconf.ClientConfig(tlsconf.ClientFiles{CA: f.ca, Cert: f.cert, Key: f.key})
}
