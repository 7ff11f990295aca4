package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/tlsconf"
)

const certsHelp = `Make development TLS certificates: a CA of your own and certificates it
signs, as PEM files. They are for development and test clusters; in
production use your organisation's CA (any PEM certificates work with the
flags below).

  livepaxos certs init  --dir certs                      # certs/ca.crt, certs/ca.key
  livepaxos certs issue --dir certs --name node1 --hosts node1.lan,10.0.0.1
  livepaxos certs issue --dir certs --name alice --client

A node certificate (issue without --client) is for server and client use
both: on the peer port a node accepts the other nodes' connections and
dials them, presenting the same certificate each way. A --client
certificate is for clients only.

Use them with:
  livepaxos node --tls-cert certs/node1.crt --tls-key certs/node1.key [--tls-client-ca certs/ca.crt]
      the client port; with --tls-client-ca, clients must present a
      certificate signed by that CA (mutual TLS)
  livepaxos node --peer-tls-cert certs/node1.crt --peer-tls-key certs/node1.key --peer-tls-ca certs/ca.crt
      the peer port, always mutual: each node presents its certificate and
      checks the others' against the CA
  livepaxos get --tls-ca certs/ca.crt [--tls-cert certs/alice.crt --tls-key certs/alice.key] KEY
      clients (every client command takes these flags); --tls-cert and
      --tls-key when the node requires client certificates

A node certificate's --hosts must list every name and address clients and
peers dial the node by. ca.key can sign certificates every node trusts:
keep it off the nodes.`

const (
	caCertFile = "ca.crt"
	caKeyFile  = "ca.key"
	// certDaysMax bounds --days: a century-long development certificate is
	// a typo.
	certDaysMax = 36500
)

// certName is what --name may be: it becomes a file name in --dir.
var certName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func newCertsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make development TLS certificates (a CA, node and client certificates)",
		Long:  certsHelp,
	}
	cmd.AddCommand(newCertsInitCmd(), newCertsIssueCmd())
	return cmd
}

func newCertsInitCmd() *cobra.Command {
	var dir string
	var days int
	var ifAbsent bool
	cmd := &cobra.Command{
		Use:   "init --dir DIR",
		Short: "Make a development CA: DIR/ca.crt and DIR/ca.key",
		Long:  "Make a development CA: DIR/ca.crt and DIR/ca.key (mode 0600).\nIt refuses to replace an existing CA; with --if-absent it keeps one that\nloads and exits 0 (for scripts and containers that run it at every start).\n\n" + certsHelp,
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return fmt.Errorf("%w: --dir is required", errUsage)
			}
			if err := checkDays(days); err != nil {
				return err
			}
			certFile, keyFile := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
			if ifAbsent && bothExist(certFile, keyFile) {
				ca, err := tlsconf.LoadCA(certFile, keyFile)
				if err != nil {
					return fmt.Errorf("%s already holds a CA that does not load (%v); remove %s and %s yourself to start over", dir, err, caCertFile, caKeyFile)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "kept %s (development CA, valid until %s)\n", certFile, ca.Cert.NotAfter.UTC().Format(time.DateOnly))
				return nil
			}
			for _, f := range []string{certFile, keyFile} {
				if _, err := os.Lstat(f); err == nil {
					return fmt.Errorf("%s already holds a CA (%s); refusing to overwrite it, since every certificate it issued would stop verifying (remove %s and %s yourself to start over)", dir, f, caCertFile, caKeyFile)
				}
			}
			now := time.Now()
			// Backdated an hour: a host whose clock is a little behind must
			// not find the CA "not yet valid".
			ca, err := tlsconf.NewCA("livepaxos development CA", now.Add(-time.Hour), now.AddDate(0, 0, days))
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			certPEM, keyPEM := ca.PEM()
			if err := tlsconf.WriteKeyPair(certFile, certPEM, keyFile, keyPEM); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (development CA, valid until %s) and %s (keep it secret)\n",
				certFile, ca.Cert.NotAfter.UTC().Format(time.DateOnly), keyFile)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for ca.crt and ca.key (created if missing)")
	cmd.Flags().IntVar(&days, "days", 365, "days the CA is valid")
	cmd.Flags().BoolVar(&ifAbsent, "if-absent", false, "keep an existing CA (if it loads) and exit 0 instead of refusing")
	return cmd
}

func newCertsIssueCmd() *cobra.Command {
	var dir, name, hosts string
	var client, ifAbsent bool
	var days int
	var nodeID uint32
	cmd := &cobra.Command{
		Use:   "issue --dir DIR --name NAME [--hosts h1,h2,...] [--node-id N] [--client] [--if-absent]",
		Short: "Issue a node or client certificate signed by DIR's CA: DIR/NAME.crt and DIR/NAME.key",
		Long: `Issue a certificate signed by the CA in DIR (see 'livepaxos certs init'):
DIR/NAME.crt and DIR/NAME.key (mode 0600). It refuses to replace existing files;
with --if-absent it keeps them and exits 0 if they are a pair the CA signed for
the same use and hosts (for scripts and containers that run it at every start).
Without --client the certificate is a node's, for server and client use, and
names --hosts; with --client it is a client's, for client use only.
--node-id binds a node certificate to that node id (a URI SAN
livepaxos://node/N): on the peer port its holder can then speak only as
node N, and a node refuses to start with a certificate bound to another id.

` + certsHelp,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" || name == "" {
				return fmt.Errorf("%w: --dir and --name are required", errUsage)
			}
			if !certName.MatchString(name) || name == "ca" {
				return fmt.Errorf("%w: --name %q: want letters, digits, '.', '_' or '-' (at most 64, not \"ca\"); it names the files", errUsage, name)
			}
			if err := checkDays(days); err != nil {
				return err
			}
			usage := tlsconf.ServerAndClient
			var hostList []string
			if client {
				if cmd.Flags().Changed("hosts") {
					return fmt.Errorf("%w: --hosts names a node; a --client certificate has none", errUsage)
				}
				usage = tlsconf.Client
				if nodeID != 0 {
					return fmt.Errorf("%w: --node-id binds a node's certificate; a --client certificate has none", errUsage)
				}
			} else {
				if nodeID != 0 {
					if err := cluster.CheckNodeID(uint64(nodeID)); err != nil {
						return fmt.Errorf("%w: --node-id: %v", errUsage, err)
					}
				}
				for _, h := range strings.Split(hosts, ",") {
					if h = strings.TrimSpace(h); h != "" {
						hostList = append(hostList, h)
					}
				}
				if len(hostList) == 0 {
					return fmt.Errorf("%w: --hosts is empty; a node certificate must name the hosts it is dialled by", errUsage)
				}
			}
			ca, err := tlsconf.LoadCA(filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile))
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("%w (make one with 'livepaxos certs init --dir %s')", err, dir)
				}
				return err
			}
			now := time.Now()
			notAfter := now.AddDate(0, 0, days)
			if !now.Before(ca.Cert.NotAfter) {
				return fmt.Errorf("the CA in %s expired on %s; make a new one", dir, ca.Cert.NotAfter.UTC().Format(time.DateOnly))
			}
			// A certificate stops verifying when its CA expires, whatever it
			// says; say so unless the two end the same day anyway (the
			// default --days of both).
			cut := notAfter.Sub(ca.Cert.NotAfter) > 24*time.Hour
			if notAfter.After(ca.Cert.NotAfter) {
				notAfter = ca.Cert.NotAfter
			}
			certPEM, keyPEM, err := ca.IssueNode(name, nodeID, hostList, usage, now.Add(-time.Hour), notAfter)
			if err != nil {
				if errors.Is(err, tlsconf.ErrConfig) {
					return fmt.Errorf("%w: %v", errUsage, err)
				}
				return err
			}
			certFile, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
			if ifAbsent && bothExist(certFile, keyFile) {
				if err := checkIssued(ca.Cert, certFile, keyFile, usage, hostList, nodeID); err != nil {
					return fmt.Errorf("%s already has a certificate for %s that --if-absent cannot keep: %v; remove %s and %s to issue a new one", dir, name, err, certFile, keyFile)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "kept %s\n", certFile)
				return nil
			}
			if err := tlsconf.WriteKeyPair(certFile, certPEM, keyFile, keyPEM); err != nil {
				if errors.Is(err, os.ErrExist) {
					return fmt.Errorf("%s already has a certificate for %s; remove %s and %s to issue a new one", dir, name, certFile, keyFile)
				}
				return err
			}
			what := "node certificate for server and client use, hosts " + strings.Join(hostList, ", ")
			if nodeID != 0 {
				what += fmt.Sprintf(", bound to node id %d", nodeID)
			}
			if client {
				what = "client certificate"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s; valid until %s) and %s\n",
				certFile, what, notAfter.UTC().Format(time.DateOnly), keyFile)
			if cut {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: valid for less than --days %d: the CA expires on %s\n", days, notAfter.UTC().Format(time.DateOnly))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory holding the CA (ca.crt, ca.key); the certificate is written there")
	cmd.Flags().StringVar(&name, "name", "", "certificate name: the subject's common name and the files' base name")
	cmd.Flags().StringVar(&hosts, "hosts", "localhost,127.0.0.1", "node host names and IP addresses, comma-separated (not with --client)")
	cmd.Flags().BoolVar(&client, "client", false, "a client certificate (client use only, no hosts)")
	cmd.Flags().Uint32Var(&nodeID, "node-id", 0, "bind a node certificate to this node id: on the peer port its holder speaks only as that node (0: not bound)")
	cmd.Flags().IntVar(&days, "days", 365, "days the certificate is valid (at most until the CA expires)")
	cmd.Flags().BoolVar(&ifAbsent, "if-absent", false, "keep an existing certificate for NAME (signed by the CA for the same use and hosts) and exit 0 instead of refusing")
	return cmd
}

// bothExist reports whether both files exist. One without the other is left
// to the normal path, which refuses to overwrite it.
func bothExist(a, b string) bool {
	_, errA := os.Lstat(a)
	_, errB := os.Lstat(b)
	return errA == nil && errB == nil
}

// checkIssued tells whether an existing key pair is what issue would make
// now: its key matches, the CA signed it for usage, it is still valid, and it
// names exactly hosts and node id. Anything else would be kept silently while the caller
// expects another certificate.
func checkIssued(ca *x509.Certificate, certFile, keyFile string, usage tlsconf.Usage, hosts []string, nodeID uint32) error {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return err
	}
	if server := slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth); usage == tlsconf.Client && server {
		return errors.New("it is a node certificate, not a --client one")
	} else if usage != tlsconf.Client && !server {
		return errors.New("it is a --client certificate, not a node one")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	keyUsages := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if usage != tlsconf.Client {
		keyUsages = append(keyUsages, x509.ExtKeyUsageServerAuth)
	}
	for _, u := range keyUsages {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			return err
		}
	}
	have := slices.Clone(leaf.DNSNames)
	for _, ip := range leaf.IPAddresses {
		have = append(have, ip.String())
	}
	want := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		}
		want = append(want, h)
	}
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(slices.Compact(have), slices.Compact(want)) {
		return fmt.Errorf("it names hosts %s, not %s", strings.Join(have, ","), strings.Join(want, ","))
	}
	if id, _, err := tlsconf.NodeIDOf(leaf); err != nil {
		return err
	} else if id != nodeID {
		return fmt.Errorf("it is bound to node id %d, not %d", id, nodeID)
	}
	return nil
}

func checkDays(days int) error {
	if days <= 0 || days > certDaysMax {
		return fmt.Errorf("%w: --days must be between 1 and %d, got %d", errUsage, certDaysMax, days)
	}
	return nil
}
