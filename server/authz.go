package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/livepaxos/livepaxos/messages"
)

// adminMethods change or inspect the group as a whole: with client
// certificates on, only the certificates Config.AdminNames names may call
// them. Reads, writes, status, the member list and the limits are for
// every client.
var adminMethods = []string{
	"/livepaxos.v1.KV/ChangeMembers",
	"/livepaxos.v1.KV/Check",
	"/livepaxos.v1.KV/SetLimits",
	"/livepaxos.v1.KV/Snapshot",
	"/livepaxos.v1.KV/SnapshotSave", // streams: checked in the handler
	"/livepaxos.v1.KV/TransferMastership",
}

// isAdminMethod reports whether method (a gRPC full method name, which is
// also the JSON gateway's path) is for operators only.
func isAdminMethod(method string) bool { return slices.Contains(adminMethods, method) }

// authorized says whether a caller that presented cert (nil: none) may call
// method. Without client certificates (plaintext, or TLS without
// --tls-client-ca) the port is as open as the network makes it: nothing is
// checked here. With them, an admin method needs a certificate whose
// common name is one of admins.
func authorized(method string, cert *x509.Certificate, clientCerts bool, admins []string) bool {
	if !clientCerts || !isAdminMethod(method) {
		return true
	}
	return cert != nil && slices.Contains(admins, cert.Subject.CommonName)
}

// errNotAdmin is what a caller without an admin certificate gets.
func errNotAdmin(method string) error {
	return messages.NewStatus(messages.ErrorCode_ERROR_CODE_PERMISSION_DENIED,
		method+" needs an operator's client certificate (one whose common name --tls-admin-names lists)", 0, "").Err()
}

// handshakenTLS are gRPC transport credentials for connections whose TLS
// handshake the ALPN mux already made: no second handshake, only the
// state, so that the handlers see who the client is (peer.AuthInfo).
type handshakenTLS struct{}

func (handshakenTLS) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return c, plaintext{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
	}
	return c, credentials.TLSInfo{State: tc.ConnectionState(),
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
}

func (handshakenTLS) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errServerOnly
}
func (handshakenTLS) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}
func (h handshakenTLS) Clone() credentials.TransportCredentials { return h }
func (handshakenTLS) OverrideServerName(string) error           { return nil }

// plaintext is the AuthInfo of a connection without TLS.
type plaintext struct{ credentials.CommonAuthInfo }

func (plaintext) AuthType() string { return "insecure" }

var errServerOnly = status.Error(codes.Internal, "server-side credentials only")

// peerCert returns the verified client certificate of a gRPC call, if any.
func peerCert(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 {
		return nil
	}
	return info.State.VerifiedChains[0][0]
}

func (s *Server) authorizeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !authorized(info.FullMethod, peerCert(ctx), s.clientCerts, s.cfg.AdminNames) {
		return nil, errNotAdmin(info.FullMethod)
	}
	return handler(ctx, req)
}

// authorizeHTTP does the same for the JSON gateway, whose path is the
// method's full name.
func (s *Server) authorizeHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var cert *x509.Certificate
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			cert = r.TLS.VerifiedChains[0][0]
		}
		if !authorized(r.URL.Path, cert, s.clientCerts, s.cfg.AdminNames) {
			http.Error(w, status.Convert(errNotAdmin(r.URL.Path)).Message(), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
