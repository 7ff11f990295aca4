package tlsconf_test

import (
	"crypto/tls"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/livepaxos/livepaxos/tlsconf"
)

// A development CA issues a node certificate; the node's client port then
// serves mutual TLS with it.
func Example() {
	dir, err := os.MkdirTemp("", "tlsconf-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	now := time.Now()
	ca, err := tlsconf.NewCA("livepaxos development CA", now.Add(-time.Hour), now.AddDate(1, 0, 0))
	if err != nil {
		log.Fatal(err)
	}
	caCert, caKey := ca.PEM()
	if err := tlsconf.WriteKeyPair(filepath.Join(dir, "ca.crt"), caCert, filepath.Join(dir, "ca.key"), caKey); err != nil {
		log.Fatal(err)
	}
	cert, key, err := ca.Issue("node1", []string{"localhost", "127.0.0.1"}, tlsconf.ServerAndClient, now.Add(-time.Hour), now.AddDate(0, 3, 0))
	if err != nil {
		log.Fatal(err)
	}
	if err := tlsconf.WriteKeyPair(filepath.Join(dir, "node1.crt"), cert, filepath.Join(dir, "node1.key"), key); err != nil {
		log.Fatal(err)
	}

	cfg, err := tlsconf.ServerConfig(tlsconf.ServerFiles{
		Cert:     filepath.Join(dir, "node1.crt"),
		Key:      filepath.Join(dir, "node1.key"),
		ClientCA: filepath.Join(dir, "ca.crt"),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("certificate for:", cfg.Certificates[0].Leaf.DNSNames, cfg.Certificates[0].Leaf.IPAddresses)
	fmt.Println("client certificates required:", cfg.ClientAuth == tls.RequireAndVerifyClientCert)
	// Output:
	// certificate for: [localhost] [127.0.0.1]
	// client certificates required: true
}
