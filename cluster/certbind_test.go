package cluster

import (
	"crypto/tls"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/tlsconf"
)

// peerTLSFor issues a node certificate (bound to id, or to none for 0)
// from ca and returns the peer port's server and client configurations.
func peerTLSFor(t *testing.T, ca *tlsconf.CA, dir, name string, id uint32) (server, client *tls.Config) {
	t.Helper()
	now := time.Now()
	certPEM, keyPEM, err := ca.IssueNode(name, id, []string{"127.0.0.1"}, tlsconf.ServerAndClient, now.Add(-time.Minute), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := tlsconf.WriteKeyPair(certFile, certPEM, keyFile, keyPEM); err != nil {
		t.Fatal(err)
	}
	server, client, err = tlsconf.PeerConfigs(certFile, keyFile, filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	return server, client
}

func newTestCA(t *testing.T, dir string) *tlsconf.CA {
	t.Helper()
	now := time.Now()
	ca, err := tlsconf.NewCA("test ca", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := ca.PEM()
	if err := tlsconf.WriteKeyPair(filepath.Join(dir, "ca.crt"), certPEM, filepath.Join(dir, "ca.key"), keyPEM); err != nil {
		t.Fatal(err)
	}
	return ca
}

// twoPeers starts node a (certificate bound to idA, or to none for 0) with
// a probe counting the Prepares it gets, and node b (bound to idB) that
// sends to it; both with peer TLS from one CA.
func twoPeers(t *testing.T, idA, idB uint32) (a, b *actor.ActorSystem, probe *actor.PID, prepares *atomic.Int64) {
	t.Helper()
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	srvA, cliA := peerTLSFor(t, ca, dir, "a", idA)
	srvB, cliB := peerTLSFor(t, ca, dir, "b", idB)
	a, addrA := startNode(t, Options{ServerTLS: srvA, ClientTLS: cliA, SenderField: messages.SenderField})
	b, _ = startNode(t, Options{ServerTLS: srvB, ClientTLS: cliB, SenderField: messages.SenderField})
	_, prepares = spawnProbe(t, a, "probe")
	return a, b, actor.NewPID(addrA, "probe"), prepares
}

// A node whose peer certificate is bound to node 1 can speak as node 1
// only: a Prepare it sends claiming node 2 is dropped and counted as
// wrong_sender before any actor sees it, and one claiming node 1 arrives.
func TestPeerCertificateBindsTheSenderID(t *testing.T) {
	a, b, target, prepares := twoPeers(t, 3, 1)

	b.Root.Send(target, &messages.Prepare{From: 2, Ballot: 2})
	eventually(t, 5*time.Second, "the forged Prepare dropped as wrong_sender", func() bool {
		return StatsOf(a).DroppedBy["wrong_sender"] == 1
	})
	b.Root.Send(target, &messages.Prepare{From: 1, Ballot: 1})
	eventually(t, 5*time.Second, "the true Prepare delivered", func() bool { return prepares.Load() == 1 })
	// A message that claims no sender is not judged by the binding.
	f := b.Root.RequestFuture(target, &messages.StatusRequest{}, 5*time.Second)
	if _, err := f.Result(); err != nil {
		t.Fatalf("a StatusRequest over the bound connection: %v", err)
	}
	if got := StatsOf(a).DroppedBy["wrong_sender"]; got != 1 {
		t.Fatalf("wrong_sender drops = %d, want 1", got)
	}
}

// Where this node's certificate is bound to an id, a peer whose certificate
// binds none cannot speak as any node: in a mixed deployment the unbound
// one could claim every id.
func TestUnboundPeerCertificateIsRefusedByABoundNode(t *testing.T) {
	a, b, target, prepares := twoPeers(t, 3, 0)
	b.Root.Send(target, &messages.Prepare{From: 1, Ballot: 1})
	eventually(t, 5*time.Second, "the Prepare over an unbound certificate dropped", func() bool {
		return StatsOf(a).DroppedBy["wrong_sender"] == 1
	})
	if n := prepares.Load(); n != 0 {
		t.Fatalf("%d Prepares delivered over an unbound certificate", n)
	}
}

// Two nodes with unbound certificates (issued before --node-id) keep
// talking as before: the binding is enforced only where ids are issued.
func TestUnboundCertificatesOnBothSidesAreNotJudged(t *testing.T) {
	_, b, target, prepares := twoPeers(t, 0, 0)
	b.Root.Send(target, &messages.Prepare{From: 2, Ballot: 2})
	eventually(t, 5*time.Second, "the Prepare delivered", func() bool { return prepares.Load() == 1 })
}

func TestPeekUintReadsTheLastOccurrence(t *testing.T) {
	enc := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if v, ok := peekUint(enc(&messages.Accept{From: 5, Ballot: 7, Entries: []*messages.Entry{{Instance: 1}}}), 1); !ok || v != 5 {
		t.Fatalf("peekUint = %d, %v; want 5", v, ok)
	}
	// A second "from" appended overrides the first when protobuf decodes,
	// so it must for the guard too.
	b := enc(&messages.Prepare{From: 1, Ballot: 1})
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 9)
	if v, ok := peekUint(b, 1); !ok || v != 9 {
		t.Fatalf("peekUint with a repeated field = %d, %v; want 9", v, ok)
	}
	if v, ok := peekUint(nil, 1); !ok || v != 0 {
		t.Fatalf("peekUint of an empty message = %d, %v; want 0, true", v, ok)
	}
	if _, ok := peekUint([]byte{0x08}, 1); ok {
		t.Fatal("a truncated varint read as ok")
	}
	if _, ok := peekUint([]byte(strings.Repeat("\xff", 11)), 1); ok {
		t.Fatal("garbage read as ok")
	}
}
