package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/livepaxos/livepaxos/tlsconf"
)

var (
	// ErrPortInUse is returned by NewSystem when another process (or another
	// system in this one) already listens on Options.Listen. protoactor
	// itself would panic.
	ErrPortInUse = errors.New("cluster: listen address in use")
	// ErrBadOptions is wrapped by NewSystem for a malformed Listen or
	// Advertise address or a negative limit.
	ErrBadOptions = errors.New("cluster: invalid options")
)

// Defaults for Options, chosen for consensus traffic rather than protoactor's
// virtual-actor workloads.
const (
	// DefaultMaxMessageBytes replaces gRPC's 4 MB receive limit. The limit
	// applies to a whole batch of messages, and a batch over it kills the
	// connection silently, so it must exceed WriterBatchSize times the
	// usual message size with room to spare.
	DefaultMaxMessageBytes = 64 << 20
	// DefaultWriterBatchSize replaces protoactor's 1000 so that a batch of
	// ordinary Paxos messages stays far below DefaultMaxMessageBytes.
	DefaultWriterBatchSize = 64
	// DefaultWriterQueueSize replaces protoactor's 1,000,000-slot queue,
	// which every endpoint writer preallocates (~16 MB per peer), and is
	// the queue's bound (Options.WriterQueueSize).
	DefaultWriterQueueSize = 16384
	// DefaultWriterQueueBytes bounds the bytes waiting to go to one peer
	// (Options.WriterQueueBytes): 16,384 messages of up to 4 MiB each
	// would be 64 GiB.
	DefaultWriterQueueBytes = 256 << 20
	// batchHeadroomDivisor: a batch is cut at MaxMessageBytes minus a
	// sixteenth (4 MiB of 64 MiB), so that the writer's size estimate,
	// an upper bound already, stays safely under what the peer accepts.
	batchHeadroomDivisor = 16
	// DefaultKeepalive is the gRPC keepalive ping interval and ack timeout.
	DefaultKeepalive = 2 * time.Second
)

// minClientKeepalive is gRPC's floor for a client's ping interval
// (google.golang.org/grpc/internal.KeepaliveMinPingTime): WithKeepaliveParams
// raises anything shorter to it, with a warning.
const minClientKeepalive = 10 * time.Second

// Options for a node's actor system and remote.
type Options struct {
	// Listen is the host:port the gRPC server binds. "127.0.0.1:0" picks a
	// free port.
	Listen string
	// Advertise is the address other nodes use to reach this node, spelled
	// exactly as in --peers. Empty means the actual listen address. Set it
	// when Listen uses a hostname or a wildcard host: protoactor compares
	// the address in an incoming message's target PID with this string.
	Advertise string
	// Logger receives protoactor's own logs; nil discards them.
	Logger *slog.Logger
	// MaxMessageBytes is the gRPC message limit, for receiving and sending,
	// on server and client; it bounds one batch of messages. 0 means
	// DefaultMaxMessageBytes.
	MaxMessageBytes int
	// WriterBatchSize is how many messages an endpoint writer packs into
	// one gRPC message. 0 means DefaultWriterBatchSize.
	WriterBatchSize int
	// WriterQueueSize bounds each endpoint writer's queue (messages
	// waiting to go to one peer). A message sent while it is full is
	// dropped and counted (GuardStats.UnsentBy["queue_full"]), never
	// queued without bound nor blocking its sender: Paxos retransmits, and
	// a request's sender gets a dead-letter answer at once. (Upstream
	// protoactor grows the queue without bound; third_party/README.md.)
	// 0 means DefaultWriterQueueSize.
	WriterQueueSize int
	// WriterQueueBytes bounds the encoded bytes of those messages, shed
	// the same way past it (one message alone always queues). 0 means
	// DefaultWriterQueueBytes.
	WriterQueueBytes int64
	// AllowMessages, when set, is the only message types the node takes
	// from the network (by protobuf full name): any other is dropped and
	// counted before an actor sees it. protoactor's own system and
	// lifecycle messages (Stop, PoisonPill, Watch, ...) are dropped
	// whatever it says.
	AllowMessages func(protoreflect.FullName) bool
	// SenderField, with peer TLS, names the field of each message type
	// that holds the node id its sender claims; a message whose claim is
	// not the node id the sending connection's certificate is bound to is
	// dropped (certbind.go). Nil: no message is checked.
	SenderField SenderField
	// ServerTLS and ClientTLS, when set, put the peer port under TLS:
	// ServerTLS for connections other nodes make here (require their
	// certificates, tlsconf.PeerConfigs, so a connection without one
	// signed by the peer CA is refused before any message is read), and
	// ClientTLS for the connections this node makes. Both or neither.
	ServerTLS *tls.Config
	ClientTLS *tls.Config
	// Keepalive is the gRPC keepalive ping interval, and the time to wait
	// for the ack, on both ends of every connection. 0 means
	// DefaultKeepalive. gRPC's client side does not ping more often than
	// every 10 s; the server side pings at this interval (at least 1 s), and
	// the client closes a connection whose written data stays unacknowledged
	// for this long (TCP_USER_TIMEOUT).
	Keepalive time.Duration
}

// withDefaults fills zero fields and rejects negative ones.
func (o Options) withDefaults() (Options, error) {
	for _, f := range []struct {
		name     string
		negative bool
	}{
		{"MaxMessageBytes", o.MaxMessageBytes < 0},
		{"WriterBatchSize", o.WriterBatchSize < 0},
		{"WriterQueueSize", o.WriterQueueSize < 0},
		{"WriterQueueBytes", o.WriterQueueBytes < 0},
		{"Keepalive", o.Keepalive < 0},
	} {
		if f.negative {
			return o, fmt.Errorf("%w: %s is negative", ErrBadOptions, f.name)
		}
	}
	if (o.ServerTLS == nil) != (o.ClientTLS == nil) {
		return o, fmt.Errorf("%w: peer TLS needs both ServerTLS and ClientTLS", ErrBadOptions)
	}
	if o.Logger == nil {
		o.Logger = discardLogger()
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.WriterBatchSize == 0 {
		o.WriterBatchSize = DefaultWriterBatchSize
	}
	if o.WriterQueueSize == 0 {
		o.WriterQueueSize = DefaultWriterQueueSize
	}
	if o.WriterQueueBytes == 0 {
		o.WriterQueueBytes = DefaultWriterQueueBytes
	}
	if o.Keepalive == 0 {
		o.Keepalive = DefaultKeepalive
	}
	return o, nil
}

// NewSystem creates an actor system whose logs go to opts.Logger, with
// dead-letter logging throttled, and starts remoting on opts.Listen with the
// limits of Options and the guard of guard.go installed.
//
// It returns the system, the started remote, and the address PIDs on this
// node carry: the actual listen address (with the port chosen for port 0),
// or opts.Advertise when set. Start the remote before spawning actors,
// which this function guarantees: PIDs spawned earlier would say "nonhost".
//
// protoactor's Remote.Start panics when it cannot listen; NewSystem listens
// once itself first and returns ErrPortInUse instead, and recovers the panic
// for the race where another process takes the port in between.
//
// To stop, call rem.Shutdown(false) (immediate) or rem.Shutdown(true) (waits
// up to 10 s for streams to drain), then sys.Shutdown().
func NewSystem(opts Options) (*actor.ActorSystem, *remote.Remote, string, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, nil, "", err
	}
	host, port, err := splitListen(opts.Listen)
	if err != nil {
		return nil, nil, "", err
	}
	_, selfBound, err := CertNodeID(opts.ServerTLS)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%w: %v", ErrBadOptions, err)
	}
	if opts.Advertise != "" {
		if err := checkAddr(opts.Advertise); err != nil {
			return nil, nil, "", fmt.Errorf("%w: advertise: %v", ErrBadOptions, err)
		}
	} else if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return nil, nil, "", fmt.Errorf("%w: listen host %q is a wildcard; set Advertise to the address peers dial", ErrBadOptions, host)
	}
	if port != 0 {
		if err := probeListen(opts.Listen); err != nil {
			return nil, nil, "", err
		}
	}

	sys := actor.NewActorSystem(
		actor.WithLoggerFactory(loggerFactory(opts.Logger)),
		// A dead peer turns every message to it into a dead letter; a few
		// lines per 10 s say so without flooding the log.
		actor.WithDeadLetterThrottleCount(3),
		actor.WithDeadLetterThrottleInterval(10*time.Second),
		// Requests to a dead peer already fail at the caller.
		actor.WithDeadLetterRequestLogging(false),
	)
	g := newGuard(sys, opts.Logger.With(slog.String("lib", "cluster")), opts.AllowMessages)
	g.senderField = opts.SenderField
	g.selfBound = selfBound
	cfg := remote.Configure(host, port, remoteOptions(opts, g)...)
	// An endpoint writer that cannot connect sleeps 2 s per attempt
	// (hard-coded in protoactor) before giving up; five attempts meant a
	// dead peer held its queued messages, and a request's dead-letter
	// answer, for ten seconds. One attempt: two seconds, and the next send
	// starts a fresh writer. Paxos retransmits what is lost.
	cfg.MaxRetryCount = 1
	rem := remote.NewRemote(sys, cfg)
	g.rem = rem
	if err := startRemote(rem, opts.Listen); err != nil {
		sys.Shutdown()
		return nil, nil, "", err
	}
	return sys, rem, sys.Address(), nil
}

// BatchBytes is the most bytes an endpoint writer packs into one gRPC
// message under a limit of maxMessageBytes: one message larger than this
// cannot be sent at all.
func BatchBytes(maxMessageBytes int) int {
	return maxMessageBytes - maxMessageBytes/batchHeadroomDivisor
}

// remoteOptions translates Options into protoactor's remote configuration.
func remoteOptions(opts Options, g *guard) []remote.ConfigOption {
	limits := []grpc.CallOption{
		grpc.MaxCallRecvMsgSize(opts.MaxMessageBytes),
		grpc.MaxCallSendMsgSize(opts.MaxMessageBytes),
	}
	clientPing := max(opts.Keepalive, minClientKeepalive)
	// The server tolerates pings up to twice as often as the client sends
	// them; a stricter policy would answer with GOAWAY "too_many_pings".
	minPing := min(opts.Keepalive, clientPing) / 2

	serverOpts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(opts.MaxMessageBytes),
		grpc.MaxSendMsgSize(opts.MaxMessageBytes),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    opts.Keepalive,
			Timeout: opts.Keepalive,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             minPing,
			PermitWithoutStream: true,
		}),
	}
	serverOpts = append(serverOpts, g.serverOptions()...)
	creds := insecure.NewCredentials()
	if opts.ServerTLS != nil {
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(opts.ServerTLS)))
		creds = tlsconf.ClientCredentials(opts.ClientTLS)
	}

	// WithDialOptions replaces protoactor's defaults (which are only
	// grpc.WithInsecure), so the transport credentials go back in here.
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(limits...),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                clientPing,
			Timeout:             opts.Keepalive,
			PermitWithoutStream: true,
		}),
	}

	ro := []remote.ConfigOption{
		remote.WithServerOptions(serverOpts...),
		remote.WithDialOptions(dialOpts...),
		remote.WithCallOptions(limits...),
		remote.WithEndpointWriterBatchSize(opts.WriterBatchSize),
		remote.WithEndpointWriterQueueSize(opts.WriterQueueSize),
		remote.WithEndpointWriterQueueBytes(opts.WriterQueueBytes),
		// A batch of WriterBatchSize large messages (a master's Accepts
		// carry up to 4 MiB each) would exceed MaxMessageBytes, be refused
		// by gRPC and form again on every retransmission: replication
		// would stall. The patched writer cuts a batch by bytes too, and
		// drops and counts a message too large for any batch
		// (third_party/README.md).
		remote.WithEndpointWriterBatchBytes(BatchBytes(opts.MaxMessageBytes)),
		// Not used by this protoactor version; set so an upgrade does not
		// bring back a million-slot queue.
		remote.WithEndpointManagerQueueSize(opts.WriterQueueSize),
	}
	if opts.Advertise != "" {
		ro = append(ro, remote.WithAdvertisedHost(opts.Advertise))
	}
	return ro
}

// splitListen validates Listen and splits it for remote.Configure.
func splitListen(listen string) (string, int, error) {
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("%w: listen address %q is not host:port", ErrBadOptions, listen)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%w: listen address %q has no host", ErrBadOptions, listen)
	}
	port, err := parsePort(portText)
	if err != nil {
		return "", 0, fmt.Errorf("%w: listen address %q: %v", ErrBadOptions, listen, err)
	}
	return host, port, nil
}

// probeListen binds addr and releases it at once, so that a busy port is
// reported as an error rather than as protoactor's panic.
func probeListen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return listenError(addr, err)
	}
	return l.Close()
}

func listenError(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
		return fmt.Errorf("%w: %s", ErrPortInUse, addr)
	}
	return fmt.Errorf("cluster: listen %s: %w", addr, err)
}

// startRemote runs rem.Start, turning its listen panic into an error.
func startRemote(rem *remote.Remote, addr string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(error)
			if !ok {
				e = fmt.Errorf("%v", r)
			}
			err = listenError(addr, e)
		}
	}()
	rem.Start()
	return nil
}
