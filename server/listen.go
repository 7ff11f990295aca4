package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/soheilhy/cmux"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/livepaxos/livepaxos/messages"
)

// MaxMessageBytes bounds one gRPC message on the client port, either way:
// a stream batch of calls or answers, or one unary request.
const MaxMessageBytes = 16 << 20

// serving is what Serve started, for Close to stop.
type serving struct {
	mux    portMux
	grpc   *grpc.Server
	http   *http.Server
	health *health.Server
}

// Serve serves the client API on lis until Close. gRPC clients get
// service livepaxos.v1.KV (with server reflection, so grpcurl can list and
// call it, and the standard gRPC health service, SERVING while the node is
// Ready); HTTP/1.1 requests on the
// same port go to the JSON gateway: POST /livepaxos.v1.KV/<Method> with
// the request as JSON (curl does this by default, and over TLS too). With tlsConfig,
// every connection is TLS first (and, with client CAs in it, must present a
// certificate they signed).
func (s *Server) Serve(lis net.Listener, tlsConfig *tls.Config) error {
	var m portMux
	var grpcL, http1L net.Listener
	if tlsConfig != nil {
		am := newALPNMux(lis, alpnConfig(tlsConfig), s.log)
		m, grpcL, http1L = am, am.grpc, am.http1
	} else {
		cm := cmux.New(lis)
		// gRPC clients wait for the server's SETTINGS before they send
		// headers: the matcher sends them.
		grpcL = cm.MatchWithWriters(cmux.HTTP2MatchHeaderFieldSendSettings("content-type", "application/grpc"))
		http1L = cm.Match(cmux.HTTP1Fast())
		m = cm
	}

	s.clientCerts = tlsConfig != nil && tlsConfig.ClientAuth == tls.RequireAndVerifyClientCert
	svc := &kvService{s: s}
	g := grpc.NewServer(
		grpc.Creds(handshakenTLS{}),
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 10 * time.Second, Timeout: 5 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(s.recoverUnary, s.authorizeUnary, s.observeUnary),
		grpc.ChainStreamInterceptor(s.recoverStream),
	)
	messages.RegisterKVServer(g, svc)
	reflection.Register(g)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, freshHealth{Server: hs, s: s})

	gw := runtime.NewServeMux()
	if err := messages.RegisterKVHandlerServer(context.Background(), gw, svc); err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: http.MaxBytesHandler(s.authorizeHTTP(gw), MaxMessageBytes), ReadHeaderTimeout: 10 * time.Second}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.serving = &serving{mux: m, grpc: g, http: httpSrv, health: hs}
	s.mu.Unlock()
	go s.healthLoop(hs.SetServingStatus)

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = g.Serve(grpcL) }()
	go func() { defer wg.Done(); _ = httpSrv.Serve(http1L) }()
	err := m.Serve()
	wg.Wait()
	if s.isClosed() || errors.Is(err, net.ErrClosed) || errors.Is(err, cmux.ErrListenerClosed) {
		return nil
	}
	return err
}

// recoverUnary and recoverStream turn a panic in a handler into an
// Internal error for that call: no request may stop the node.
func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer s.recoverInto(info.FullMethod, &err)
	return handler(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer s.recoverInto(info.FullMethod, &err)
	return handler(srv, ss)
}

func (s *Server) recoverInto(method string, err *error) {
	if r := recover(); r != nil {
		s.log.Error("recovered panic in a client API handler", "method", method, "panic", r, "stack", string(debug.Stack()))
		*err = status.Errorf(codes.Internal, "handler failed: %v", r)
	}
}

// observeUnary hands each unary call's method, outcome and time to
// Config.ObserveRequest.
func (s *Server) observeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	s.calls.Add(1)
	defer s.calls.Add(-1)
	obs := s.cfg.ObserveRequest
	if obs == nil || !strings.HasPrefix(info.FullMethod, "/livepaxos.v1.KV/") {
		return handler(ctx, req) // the health and reflection services are not requests
	}
	began := time.Now()
	resp, err := handler(ctx, req)
	outcome := "ok"
	if err != nil {
		outcome = "error"
		if code, _, _, ok := messages.StatusError(status.Convert(err)); ok {
			outcome = outcomeName(code)
		}
	}
	method := info.FullMethod[strings.LastIndexByte(info.FullMethod, '/')+1:]
	obs(method, outcome, time.Since(began))
	return resp, err
}

// outcomeName is an error code as a metric label: "ok", "not_master", ...
func outcomeName(c messages.ErrorCode) string {
	if c == messages.ErrorCode_ERROR_CODE_OK {
		return "ok"
	}
	return strings.ToLower(strings.TrimPrefix(c.String(), "ERROR_CODE_"))
}

// consistencyName is a read's consistency as a metric label.
func consistencyName(c messages.Consistency) string {
	return strings.ToLower(strings.TrimPrefix(c.String(), "CONSISTENCY_"))
}
