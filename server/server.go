// Package server serves a node's client API (service livepaxos.v1.KV,
// messages/kv.proto) on its client port.
//
// Any node answers any request. Writes, membership changes and checks go
// to the master's proposer, and lease and quorum reads to the master's
// lease manager, over the peer transport; the answer comes back to this
// node and goes out on the caller's own connection. So a client needs one
// reachable node and no inbound connection: it may sit behind a firewall
// or NAT. A lease read at the master, and a stale read anywhere, is
// answered on the calling goroutine from the state machine, with no actor
// in between (actors.Replica.ServeRead).
package server

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/messages"
)

// Config describes the client API of one node.
type Config struct {
	// Replica is the node's replica, already spawned in System.
	Replica *actors.Replica
	// System is the node's actor system, remoting started: answers from
	// the master come back to this node through it.
	System *actor.ActorSystem
	// Validate, if set, checks a MultiOp before it is sent anywhere; its
	// error is returned as invalid (or too large when it wraps
	// actors.ErrTooLarge) and nothing is proposed.
	Validate func(*messages.MultiOp) error
	// MaxCommandBytes refuses larger requests before they are sent on
	// (default 1 MiB + 64 KiB, as actors.Config).
	MaxCommandBytes int
	// RequestTimeout bounds a request whose call has no deadline, and how
	// long a forwarded request waits for its answer (default 10s).
	RequestTimeout time.Duration
	// MaxInFlight bounds the requests this node has sent on and not seen
	// answered (default 65,536); more are refused as overloaded.
	MaxInFlight int
	// MaxStreamInFlight bounds one Stream's calls in flight (default
	// 4,096): a client with more waits, through gRPC flow control.
	MaxStreamInFlight int
	// RegisterEvery is how often the node checks that the membership
	// records its client address, and asks the master to record it if not
	// (default 1s).
	RegisterEvery time.Duration
	// AdminNames are the common names of the client certificates that may
	// change the membership, run a consistency check or take a snapshot
	// when the port requires client certificates (authz.go). Empty: "admin".
	AdminNames []string
	// DataDir, if set, is the replica's data directory: readiness checks
	// the free space of its file system.
	DataDir string
	// ObserveRequest, if set, hears of every client request answered
	// (for metrics): its method ("Put", "Get", ...; a Stream's calls as
	// "write" and "read_lease", "read_quorum", "read_stale"), its outcome
	// ("ok", or the error code: "not_master", "outcome_unknown", ...) and
	// how long it took. It must not block.
	ObserveRequest func(method, outcome string, d time.Duration)
	// HealthEvery is how often the gRPC health service's answer is brought
	// up to date with Ready (default 1s).
	HealthEvery time.Duration
	Logger      *slog.Logger
}

// ErrConfig reports a Config that cannot serve.
var ErrConfig = errors.New("server: invalid config")

// Server is one node's client API. Create it with New; Close it before
// stopping the replica.
type Server struct {
	cfg     Config
	replica *actors.Replica
	fwd     *forwarder
	log     *slog.Logger
	stop    chan struct{}

	// clientCerts: the port requires client certificates (Serve's TLS
	// config has client CAs), so admin methods check who calls.
	clientCerts bool

	mu      sync.Mutex
	closed  bool
	serving *serving
	// calls counts client calls taken and not yet answered (Drain).
	calls atomic.Int64
}

// ErrClosed is returned by Serve after Close.
var ErrClosed = errors.New("server: closed")

// New prepares the client API of a node; serve it with Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Replica == nil || cfg.System == nil {
		return nil, fmt.Errorf("%w: a replica and its actor system are required", ErrConfig)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.MaxCommandBytes <= 0 {
		cfg.MaxCommandBytes = 1<<20 + 64<<10
	}
	if len(cfg.AdminNames) == 0 {
		cfg.AdminNames = []string{"admin"}
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 65536
	}
	if cfg.MaxStreamInFlight <= 0 {
		cfg.MaxStreamInFlight = 4096
	}
	if cfg.RegisterEvery <= 0 {
		cfg.RegisterEvery = time.Second
	}
	if cfg.HealthEvery <= 0 {
		cfg.HealthEvery = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, replica: cfg.Replica, log: cfg.Logger, stop: make(chan struct{}),
		fwd: newForwarder(cfg.System, cfg.MaxInFlight)}
	go s.registerLoop()
	return s, nil
}

// Close stops serving: open connections are closed, calls in flight end
// (a write among them with an unknown outcome), and Serve returns.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	sv := s.serving
	s.mu.Unlock()
	close(s.stop)
	if sv != nil {
		sv.health.Shutdown()
		sv.grpc.Stop()
		sv.http.Close()
		sv.mux.Close()
	}
	s.fwd.close()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Drain waits, up to d, until no client call this node took waits for
// its answer (one forwarded to the master, or waiting for a master to be
// known): a node about to stop lets the calls in flight end with their
// answers rather than with a closed connection (for a write: outcome
// unknown). New calls are still taken meanwhile; once clients learn the
// new master from the answers, few come.
//
// It waits a third of d in any case: calls sent before their clients heard
// of the new master are still on their way.
func (s *Server) Drain(d time.Duration) {
	start := time.Now()
	for time.Since(start) < d {
		if s.calls.Load() == 0 && time.Since(start) >= d/3 {
			return
		}
		time.Sleep(5 * time.Millisecond) // another goroutine's calls: nothing to wait on
	}
}
