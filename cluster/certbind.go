package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/livepaxos/livepaxos/tlsconf"
)

// SenderField names, for a message type the node takes, the field that
// holds the node id its sender claims (0: the type claims none). With peer
// TLS and node certificates bound to node ids (tlsconf.NodeIDURI), the
// guard drops a message whose claimed sender is not the node the sending
// connection's certificate names: a member's certificate then cannot be
// used to speak as another member.
type SenderField func(protoreflect.FullName) protowire.Number

// certBinding is what the guard knows of one incoming Receive stream's
// certificate: the node id it is bound to, or why it speaks for no node.
type certBinding struct {
	id uint32
	// refuse, when set, is why no sender-claiming message is taken on the
	// stream: its certificate binds no node id while this node's does
	// (a mixed deployment would let the unbound one speak as anyone), or
	// binds a malformed one.
	refuse string
}

// bindingOf returns the binding of a stream's peer certificate, or nil when
// none is enforced: plaintext peers, or neither certificate bound to an id.
func (g *guard) bindingOf(p *peer.Peer, ok bool) *certBinding {
	if !ok || p == nil {
		return nil
	}
	info, tlsOK := p.AuthInfo.(credentials.TLSInfo)
	if !tlsOK || len(info.State.PeerCertificates) == 0 {
		return nil
	}
	leaf := info.State.PeerCertificates[0]
	id, bound, err := tlsconf.NodeIDOf(leaf)
	switch {
	case err != nil:
		return &certBinding{refuse: err.Error()}
	case bound:
		return &certBinding{id: id}
	case g.selfBound:
		return &certBinding{refuse: fmt.Sprintf("the certificate of %q binds no node id, and this node's does: every node certificate must be issued with --node-id", leaf.Subject.CommonName)}
	}
	return nil
}

// checkSender returns why an envelope's claimed sender does not match the
// stream's certificate ("" if it does or if the type claims no sender).
func (g *guard) checkSender(bind *certBinding, typeName protoreflect.FullName, data []byte) string {
	if bind == nil || g.senderField == nil {
		return ""
	}
	field := g.senderFieldOf(typeName)
	if field == 0 {
		return ""
	}
	if bind.refuse != "" {
		return bind.refuse
	}
	from, ok := peekUint(data, field)
	if !ok {
		return fmt.Sprintf("%s: malformed bytes where the sender's node id should be", typeName)
	}
	if from != uint64(bind.id) {
		return fmt.Sprintf("%s says it comes from node %d; the connection's certificate is node %d's", typeName, from, bind.id)
	}
	return ""
}

// senderFieldOf caches SenderField per type: it runs for every message.
func (g *guard) senderFieldOf(typeName protoreflect.FullName) protowire.Number {
	if f, ok := g.senderFields.Load(typeName); ok {
		return f.(protowire.Number)
	}
	f := g.senderField(typeName)
	g.senderFields.Store(typeName, f)
	return f
}

// peekUint reads a varint field of an encoded message without decoding the
// rest of it: the guard runs before protoactor decodes each message, and a
// second full decode would double the cost per message. As protobuf
// decoding does, the last occurrence wins; an absent field reads as 0.
func peekUint(data []byte, field protowire.Number) (uint64, bool) {
	var v uint64
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return 0, false
		}
		data = data[n:]
		if num == field && typ == protowire.VarintType {
			x, m := protowire.ConsumeVarint(data)
			if m < 0 {
				return 0, false
			}
			v, data = x, data[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, data)
		if m < 0 {
			return 0, false
		}
		data = data[m:]
	}
	return v, true
}

// CertNodeID reads the node id a node's own peer certificate (the first of
// cfg.Certificates) is bound to (ok false: bound to none).
func CertNodeID(cfg *tls.Config) (uint32, bool, error) {
	if cfg == nil || len(cfg.Certificates) == 0 || len(cfg.Certificates[0].Certificate) == 0 {
		return 0, false, nil
	}
	leaf := cfg.Certificates[0].Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cfg.Certificates[0].Certificate[0]); err != nil {
			return 0, false, fmt.Errorf("%w: parsing this node's peer certificate: %v", ErrBadOptions, err)
		}
	}
	return tlsconf.NodeIDOf(leaf)
}
