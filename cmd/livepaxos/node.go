package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"hash/fnv"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
	"github.com/livepaxos/livepaxos/server"
	"github.com/livepaxos/livepaxos/storage"
)

type nodeFlags struct {
	id              uint32
	listen          string
	advertise       string
	clientListen    string
	clientAdvertise string
	tls             serverTLSFlags
	peerTLS         peerTLSFlags
	peers           string
	learners        string
	join            bool
	data            string
	clusterID       string
	logLevel        string
	logFormat       string
	config          string
	maxValueBytes   int
	minFreeBytes    int64
	electionMin     time.Duration
	leaseTimeout    time.Duration
	driftMax        time.Duration
	boostInterval   time.Duration
	snapEvery       int64
	snapLogBytes    int64
	checkInterval   time.Duration
	metrics         string
	pprof           string
	onCorruption    string
	startOver       bool
}

func newNodeCmd() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run one replica of a cluster",
		Long: `Run one replica of a cluster. It talks to the other nodes on its peer port
(--listen, advertised as its --peers address) and serves clients on a port of its
own (--client-listen, by default the peer port plus 100): the gRPC service
livepaxos.v1.KV, and the same methods as JSON over HTTP
(POST /livepaxos.v1.KV/<Method>). Any node answers any request: one that is not
master forwards it to the master and answers on the caller's connection.`,
		Example: `  livepaxos node --id 1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --data /tmp/lp1
      # peer port 127.0.0.1:7001, clients on 127.0.0.1:7101

  # in a container: listen on every interface, advertise the name others dial
  livepaxos node --id 1 --peers 1=n1:7001,2=n2:7001,3=n3:7001 --listen 0.0.0.0:7001 \
    --client-listen 0.0.0.0:7101 --client-advertise n1:7101 --data /data \
    --peer-tls-cert n1.crt --peer-tls-key n1.key --peer-tls-ca ca.crt \
    --tls-cert n1.crt --tls-key n1.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyNodeConfig(cmd.Flags(), f.config, os.Getenv); err != nil {
				return err
			}
			return runNode(f)
		},
	}
	fl := cmd.Flags()
	fl.Uint32Var(&f.id, "id", 0, "this node's id, as in --peers (required)")
	fl.StringVar(&f.listen, "listen", "", "peer port: host:port to listen on, 0.0.0.0 for every interface (default: this node's --peers address)")
	fl.StringVar(&f.advertise, "advertise", "", "peer port: the host:port the other nodes dial (default: this node's --peers address; with --join, --listen)")
	fl.StringVar(&f.clientListen, "client-listen", "", "client port: host:port to serve the client API on (default: the --listen host, peer port + 100)")
	fl.StringVar(&f.clientAdvertise, "client-advertise", "", "client port: the host:port clients dial, recorded in the membership (default: --client-listen, or the --advertise host when that is a wildcard)")
	f.tls.add(fl)
	f.peerTLS.add(fl)
	fl.StringVar(&f.peers, "peers", "", "every voter as id=host:port, comma-separated (required)")
	fl.BoolVar(&f.join, "join", false, "start a node that is in neither --peers nor --learners (empty data directory); it catches up once 'livepaxos members add' adds it as a learner (needs --listen)")
	fl.StringVar(&f.learners, "learners", "", "non-voting members as id=host:port, comma-separated: they learn the log and never vote (§5.4)")
	fl.StringVar(&f.data, "data", "", "data directory (required)")
	fl.StringVar(&f.clusterID, "cluster-id", "", "cluster identity bound into the data directory (default: derived from --peers)")
	fl.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn, error or off")
	fl.StringVar(&f.logFormat, "log-format", "text", "text (key=value lines) or json (one JSON object a line)")
	fl.StringVar(&f.config, "config", "", "YAML file of node flags (flag names as keys); the command line wins over it, and it over LIVEPAXOS_* environment variables")
	fl.IntVar(&f.maxValueBytes, "max-value-bytes", db.DefaultMaxValueBytes,
		"largest value this node takes in while the group has no limit of its own; once 'livepaxos limits set' chose one through the log, that one alone counts, at every node and at apply (at most 1 MiB)")
	fl.Int64Var(&f.minFreeBytes, "min-free-bytes", actors.DefaultMinFreeBytes,
		"while the data directory's disk has less free, a master refuses writes (no space) and goes on serving reads; -1: never")
	fl.DurationVar(&f.electionMin, "election-timeout", 300*time.Millisecond, "minimum time without a master before a node campaigns (randomized up to 2x)")
	fl.DurationVar(&f.leaseTimeout, "lease-timeout", 800*time.Millisecond,
		"how long an acceptor's master lease grant lasts (§5.2); a new master waits this long after the old one is lost")
	fl.DurationVar(&f.driftMax, "clock-drift-max", 100*time.Millisecond,
		"how much two nodes' clocks may disagree over one lease timeout; the master counts its lease this much shorter")
	fl.DurationVar(&f.boostInterval, "boost-interval", 10*time.Second, "how often the master raises its ballot with a full phase 1 (§5.2)")
	fl.Int64Var(&f.snapEvery, "snapshot-every", 100_000,
		"snapshot once this many instances were applied since the last snapshot, and let go of the log below it (§5.5); 0: never on this account")
	fl.Int64Var(&f.snapLogBytes, "snapshot-log-bytes", 64<<20,
		"snapshot once this many bytes were written to the log since the last snapshot; 0: never on this account")
	fl.DurationVar(&f.checkInterval, "check-interval", 5*time.Minute,
		"how often the master has every replica checksum its database at one instance and compare (§6.2); 0: only when asked (livepaxos check)")
	fl.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics, and /livez and /readyz for probes (e.g. 127.0.0.1:9101)")
	fl.StringVar(&f.pprof, "pprof", "", "serve Go's profiler (net/http/pprof) on this address; a bare port listens on 127.0.0.1 (e.g. 6060)")
	fl.BoolVar(&f.startOver, "start-over", false,
		"only when EVERY voter lost its data for good: let this rebuilt node join a brand-new, EMPTY group; everything the old group acknowledged is lost (see README, disaster recovery)")
	fl.StringVar(&f.onCorruption, "on-corruption", "rebuild",
		"when the data directory fails its checksums: rebuild (move it aside and rejoin as a new incarnation that votes only once the group records it, §5.1) or stop")
	return cmd
}

func runNode(f nodeFlags) error {
	if f.id == 0 || f.peers == "" || f.data == "" {
		return fmt.Errorf("%w: --id, --peers and --data are required", errUsage)
	}
	peers, learners, err := parseMemberFlags(f.id, f.peers, f.learners)
	if err != nil {
		return err
	}
	member, ok := peers[f.id]
	if !ok {
		member, ok = learners[f.id]
	}
	if !ok && !f.join {
		return fmt.Errorf("%w: --id %d is not in --peers %s", errUsage, f.id, peers)
	}
	addrs, err := resolveAddresses(member, f.listen, f.advertise, f.clientListen, f.clientAdvertise)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	self := addrs.peerAdvertise
	clientTLS, err := f.tls.config()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	peerServerTLS, peerClientTLS, err := f.peerTLS.configs()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	certID, certBound, err := cluster.CertNodeID(peerServerTLS)
	if err != nil {
		return fmt.Errorf("%w: --peer-tls-cert: %v", errUsage, err)
	}
	if certBound && certID != f.id {
		return fmt.Errorf("%w: --peer-tls-cert %s is bound to node id %d, not --id %d", errUsage, f.peerTLS.cert, certID, f.id)
	}
	if f.maxValueBytes <= 0 || f.maxValueBytes > db.MaxValueBytesCeiling {
		return fmt.Errorf("%w: --max-value-bytes must be 1 to %d", errUsage, db.MaxValueBytesCeiling)
	}
	if f.electionMin <= 0 {
		return fmt.Errorf("%w: --election-timeout must be positive", errUsage)
	}
	if f.leaseTimeout <= 0 || f.driftMax <= 0 || f.boostInterval <= 0 {
		return fmt.Errorf("%w: --lease-timeout, --clock-drift-max and --boost-interval must be positive", errUsage)
	}
	if f.checkInterval < 0 {
		return fmt.Errorf("%w: --check-interval must not be negative", errUsage)
	}
	if f.snapEvery < 0 || f.snapLogBytes < 0 {
		return fmt.Errorf("%w: --snapshot-every and --snapshot-log-bytes must not be negative", errUsage)
	}
	if f.onCorruption != "rebuild" && f.onCorruption != "stop" {
		return fmt.Errorf("%w: --on-corruption must be rebuild or stop, not %q", errUsage, f.onCorruption)
	}
	if f.driftMax >= f.leaseTimeout {
		return fmt.Errorf("%w: --clock-drift-max %v must be below --lease-timeout %v", errUsage, f.driftMax, f.leaseTimeout)
	}
	logger, err := cluster.LoggerFor(f.logLevel, f.logFormat, os.Stderr)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if peerServerTLS != nil && !certBound {
		logger.Warn("the peer certificate binds no node id: any holder of a node certificate signed by the peer CA can speak as any member; issue node certificates with 'livepaxos certs issue --node-id'", "cert", f.peerTLS.cert)
	}
	if f.clusterID == "" {
		f.clusterID = defaultClusterID(peers)
	}
	// Synced in its parent: nothing written in it is durable until its
	// own name is.
	if err := storage.MkdirAllSynced(f.data); err != nil {
		return err
	}
	limits := db.Limits{MaxValueBytes: f.maxValueBytes}
	fatal := make(chan error, 1)
	var reg *prometheus.Registry
	var replicaMetrics actors.Metrics // nil, not a nil *histograms, without --metrics
	var observe func(method, outcome string, d time.Duration)
	if f.metrics != "" {
		reg = prometheus.NewRegistry()
		hist := newHistograms(reg)
		replicaMetrics, observe = hist, hist.Request
	}
	var kv *db.KV
	rebuilt := false // the data directory is being made anew: see actors.Config.Rebuilt
	open := func() (*actors.Replica, error) {
		kv = db.NewWithLimits(limits)
		return actors.NewReplica(actors.Config{
			NodeID:               f.id,
			Peers:                peers,
			Learners:             learners,
			Join:                 f.join,
			SelfAddress:          self,
			DataDir:              f.data,
			ClusterID:            f.clusterID,
			ClientAddress:        addrs.clientAdvertise,
			StateMachine:         kv,
			ValidateCommand:      validator(kv, false),
			ValidateAdminCommand: validator(kv, true),
			MaxCommandBytes:      db.MaxCommandBytes,
			Logger:               logger,
			Proposer:             paxosTuning(f),
			// 0 on the command line is "never": -1 in the config.
			SnapshotEvery:    orNever(f.snapEvery),
			SnapshotLogBytes: orNever(f.snapLogBytes),
			MinFreeBytes:     f.minFreeBytes,
			Rebuilt:          rebuilt,
			StartOver:        f.startOver,
			Metrics:          replicaMetrics,
			OnFatal: func(err error) {
				select {
				case fatal <- err:
				default:
				}
			},
		})
	}
	replica, err := open()
	if err != nil && actors.IsCorrupt(err) && f.onCorruption == "rebuild" {
		// §5.1: never vote with state that cannot be trusted. The damaged
		// directory is kept aside for inspection; the node starts empty
		// with a new incarnation and rebuilds from the group.
		aside, merr := actors.MoveAside(f.data)
		if merr != nil {
			return fmt.Errorf("%w; moving it aside to rebuild failed too: %v", err, merr)
		}
		logger.Error("data directory corrupt: moved aside, rebuilding from the group as a new incarnation", "node", f.id, "err", err, "moved_to", aside)
		rebuilt = true
		replica, err = open()
	}
	if err != nil {
		return err
	}
	defer replica.Close()
	// The client port first: a busy one is found before the peer port
	// opens to the group.
	clientLis, err := net.Listen("tcp", addrs.clientListen)
	if err != nil {
		return fmt.Errorf("client port %s: %w", addrs.clientListen, err)
	}
	defer clientLis.Close()
	sys, rem, addr, err := cluster.NewSystem(cluster.Options{Listen: addrs.peerListen, Advertise: self, Logger: logger,
		ServerTLS: peerServerTLS, ClientTLS: peerClientTLS, AllowMessages: messages.IsProtocolMessage,
		SenderField: messages.SenderField})
	if err != nil {
		return err
	}
	defer cluster.WatchPeers(sys, logger, cluster.DefaultPeerLogInterval)()
	if f.pprof != "" {
		srv := servePprof(f.pprof)
		go func() { logger.Warn("pprof server", "err", srv.ListenAndServe()) }()
		defer srv.Close()
	}
	_, err = sys.Root.SpawnNamed(replica.Props(), actors.DefaultName)
	if err != nil {
		rem.Shutdown(false)
		return err
	}
	api, err := server.New(server.Config{Replica: replica, System: sys, Validate: validateOp(kv), AdminNames: f.tls.adminNames,
		MaxCommandBytes: db.MaxCommandBytes, DataDir: f.data, ObserveRequest: observe, DB: kv, Logger: logger})
	if err != nil {
		rem.Shutdown(false)
		return err
	}
	if f.metrics != "" {
		nodeMetrics(reg, replica.Status, replica.LogStats)
		readyMetrics(reg, api.Ready, f.data)
		guardMetrics(reg, sys, replica.Status)
		srv := serveMetrics(f.metrics, reg, api.HealthHandler(), api.StatusPageHandler())
		go func() { logger.Warn("metrics server", "err", srv.ListenAndServe()) }()
		defer srv.Close()
	}
	served := make(chan error, 1)
	go func() { served <- api.Serve(clientLis, clientTLS) }()
	logger.Info("node started", "id", f.id, "address", addr, "client_address", addrs.clientAdvertise,
		"applied", replica.Applied(), "cluster", f.clusterID)
	if rec, err := readAudit(f.data); err != nil {
		logger.Warn("forced-shrink audit record unreadable", "err", err)
	} else if rec != nil {
		// Every start says so: whoever reads this node's log later learns
		// that its history was cut short by an operator, when and why.
		logger.Warn("this cluster was made by a forced shrink (members force-shrink): writes acknowledged after its instance may be lost",
			"at", rec.At, "operator", rec.Operator, "reason", rec.Reason, "old_cluster", rec.OldCluster,
			"old_voters", rec.OldVoters, "missing_voters", rec.Missing, "source_node", rec.Source, "instance", rec.Instance)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	var runErr error
	select {
	case s := <-sig:
		logger.Info("stopping", "signal", s.String())
		if s == syscall.SIGTERM {
			handedOver := handOver(replica, logger, paxosTuning(f).HandoverTimeout())
			// The others stop waiting on this node's acceptances, and calls
			// in flight on its client port end with their answers.
			replica.Leave()
			began := time.Now()
			api.Drain(handOverDrain)
			if rest := handOverLinger - time.Since(began); handedOver && rest > 0 {
				// Peers that have not yet heard the new master still forward
				// writes here: answer them (not master, naming it) rather
				// than stop under them (their writes would end outcome
				// unknown).
				time.Sleep(rest)
			}
		}
	case runErr = <-fatal:
		logger.Error("node stopping on a fatal error", "err", runErr)
	case runErr = <-served:
		runErr = fmt.Errorf("client API stopped: %w", runErr)
		logger.Error("node stopping", "err", runErr)
	}
	stopWithin(shutdownDeadline, logger, func() {
		api.Close()
		replica.Close() // stops its actors as asked: no "stopped though not closed" error
		rem.Shutdown(false)
	})
	return runErr
}

// handOver, on a SIGTERM to the master (a restart, a deploy), hands
// mastership to the most caught-up voter before the node stops, so that
// writes stall for a few message rounds instead of a fail-over's election
// timeout and lease (paxos/handover.go). Then (for every node) the others
// hear it is leaving, and for a moment its client port keeps answering
// (writes are forwarded to the new master, answers name it) so that calls
// in flight there end and clients move on before the port closes.
func handOver(replica *actors.Replica, logger *slog.Logger, handoverTimeout time.Duration) bool {
	if _, self := replica.Master(); !self {
		return false
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*handoverTimeout)
	defer cancel()
	id, err := replica.TransferMastership(ctx, 0)
	if err != nil {
		logger.Warn("handing mastership over before stopping", "err", err)
		return false
	}
	logger.Info("handed mastership over before stopping", "to", id, "took", time.Since(start))
	return true
}

// handOverDrain is how long a node stopping on SIGTERM keeps its client
// port open for the calls in flight there.
const handOverDrain = 300 * time.Millisecond

// handOverLinger is how long a master that handed over keeps its actors
// up at least, so the peers hear the new master before it goes.
const handOverLinger = 300 * time.Millisecond

// defaultClusterID derives a cluster identity from the initial voter set, so
// a data directory from another cluster is refused without extra flags.
func defaultClusterID(peers cluster.Peers) string {
	h := fnv.New64a()
	h.Write([]byte(peers.String()))
	return fmt.Sprintf("lp-%016x", h.Sum64())
}

// validator refuses a command that is not a valid MultiOp before anything
// is proposed, by the limits in force (the group's once the log set them,
// else this node's --max-value-bytes: db.KV.Limits), or whose result
// would be too large by this node's state (db.KV.CheckResultEncoded: the
// door of every write, a stream's and a forwarded one's too). admin: an
// operator's command, which may change the group's limits.
func validator(kv *db.KV, admin bool) func([]byte) error {
	validate := db.Limits.ValidateClientEncoded
	if admin {
		validate = db.Limits.ValidateEncoded
	}
	return func(b []byte) error {
		if err := validate(kv.Limits(), b); err != nil {
			return tooLarge(err)
		}
		return kv.CheckResultEncoded(b)
	}
}

// validateOp checks a client's MultiOp at the node that took it, as
// validator does an encoded one, and whether its result would be too
// large by this node's state (db.KV.CheckResult).
func validateOp(kv *db.KV) func(*messages.MultiOp) error {
	return func(op *messages.MultiOp) error {
		if err := kv.Limits().ValidateClient(op); err != nil {
			return tooLarge(err)
		}
		return kv.CheckResult(op)
	}
}

// tooLarge makes a size error wrap actors.ErrTooLarge, so that it reaches
// the client as too large.
func tooLarge(err error) error {
	if errors.Is(err, db.ErrValueTooLarge) || errors.Is(err, db.ErrKeyTooLarge) || errors.Is(err, db.ErrTooManyOps) {
		return fmt.Errorf("%w: %w", actors.ErrTooLarge, err)
	}
	return err
}

// orNever maps a flag's 0 ("never") to the config's negative value (0
// there takes the default).
func orNever(v int64) int64 {
	if v == 0 {
		return -1
	}
	return v
}

func paxosTuning(f nodeFlags) paxos.ProposerConfig {
	check := f.checkInterval
	if check == 0 {
		check = -1 // only when asked
	}
	return paxos.ProposerConfig{ElectionTimeoutMin: f.electionMin, LeaseTimeout: f.leaseTimeout,
		ClockDriftMax: f.driftMax, BoostInterval: f.boostInterval, CheckInterval: check}
}

// parseMemberFlags checks --id and parses --peers and --learners (of node
// and restore); every error is a usage error.
func parseMemberFlags(id uint32, peersFlag, learnersFlag string) (peers, learners cluster.Peers, err error) {
	if err := cluster.CheckNodeID(uint64(id)); err != nil {
		return nil, nil, fmt.Errorf("%w: --id: %v", errUsage, err)
	}
	if peers, err = cluster.ParsePeers(peersFlag); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if learnersFlag == "" {
		return peers, nil, nil
	}
	if learners, err = cluster.ParsePeers(learnersFlag); err != nil {
		return nil, nil, fmt.Errorf("%w: --learners: %v", errUsage, err)
	}
	for id := range learners {
		if _, dup := peers[id]; dup {
			return nil, nil, fmt.Errorf("%w: node %d is in both --peers and --learners", errUsage, id)
		}
	}
	return peers, learners, nil
}
