package actors

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/core"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
	"github.com/livepaxos/livepaxos/storage"
)

// Replica is one member of a livepaxos group, ready to be spawned as an
// actor subtree: the replica core (package core) in an actor of its own,
// with the write-ahead log, the transport and the snapshot files as its
// devices. Create it with NewReplica, spawn it with Start (or spawn Props
// under cfg.Name yourself), and Close it to stop it and release its data
// directory.
type Replica struct {
	cfg Config
	wal *storage.WAL
	// d is the replica core behind its driver. After NewReplica only the
	// core actor touches it.
	d *core.Driver
	// shell is the driver's host: the devices, run by the core actor.
	shell *shell
	// incarnation is this data directory's (§5.1).
	incarnation uint64
	// restored is the snapshot restored at startup (§5.5).
	restored storage.SnapshotInfo
	// pids: the PIDs the shell and the client API send to.
	pids pidCache

	// What other goroutines read, published by the core actor: the
	// replica's view (reads, §5.2), the membership in force (addresses)
	// and its status.
	view    atomic.Pointer[core.View]
	members atomic.Pointer[messages.Membership]
	status  atomic.Pointer[messages.StatusResponse]

	fatalOnce sync.Once
	stopped   atomic.Bool
	// diskFree is the data directory's free bytes at the last look (-1:
	// unknown).
	diskFree atomic.Int64
	// snapshotDrops counts the snapshot transfer messages the snapshotter
	// dropped, by reason (status adds them to the core's drops).
	snapshotDrops dropCounts
	// mailboxDrops counts the peer messages shed at the core's full
	// mailbox (mailbox.go), and coreMailbox is that mailbox, whose length
	// the embedding API looks at before it sends (call).
	mailboxDrops dropCounts
	coreMailbox  atomic.Pointer[boundedMailbox]

	// Callers in this process (Propose, Read, ...) wait on local: their
	// requests carry localAddress, unique to this Replica, as the reply
	// address, and a waiter id.
	localAddress string
	local        waiters
	// started is closed once the core's actor runs: local requests wait
	// for it.
	started     chan struct{}
	startedOnce sync.Once

	// Where it runs once spawned, for Close.
	mu     sync.Mutex
	sys    *actor.ActorSystem
	parent *actor.PID
	closed bool
}

// NewReplica opens the data directory, restores the newest snapshot into
// the state machine and replays the write-ahead log into the replica core,
// which applies again every entry the log marks chosen, so the replica
// resumes where it stopped.
func NewReplica(cfg Config) (*Replica, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	meta, err := checkIdentity(cfg.DataDir, cfg.ClusterID, cfg.NodeID, cfg.Rebuilt)
	if err != nil {
		return nil, err
	}
	if meta.Rebuilt && meta.Fresh && !cfg.StartOver {
		cfg.Logger.Warn("this node lost its data and was rebuilt: it votes again once the group records its new incarnation (§5.1). "+
			"If EVERY voter lost its data, that never happens and the nodes wait: the group's data is gone, and only --start-over "+
			"on every node begins a new, empty group", "node", cfg.NodeID)
	}
	nonce := make([]byte, 8)
	rand.Read(nonce)
	r := &Replica{cfg: cfg, incarnation: meta.Incarnation, localAddress: "local:" + hex.EncodeToString(nonce),
		started: make(chan struct{})}
	r.local.init()
	r.members.Store(initialMembership(&r.cfg))
	r.shell = &shell{r: r}
	if r.d, err = core.NewDriver(cfg.coreConfig(meta), cfg.StateMachine, r.shell); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	// Recovery (§5.5): the newest valid snapshot, then the log after it.
	if err := r.restoreSnapshot(); err != nil {
		return nil, err
	}
	records := 0
	var onSync func(time.Duration, int, int)
	if cfg.Metrics != nil {
		onSync = cfg.Metrics.Synced
	}
	opts := storage.Options{OnFatal: r.fatal, OnSync: onSync, RangeRequired: formatOf(meta) >= rangeFormat}
	wal, err := storage.Open(cfg.DataDir, opts, func(b []byte) error {
		rec := &messages.Record{}
		if err := proto.Unmarshal(b, rec); err != nil {
			return fmt.Errorf("%w: record %d does not decode: %v", storage.ErrCorrupt, records, err)
		}
		records++
		return r.d.Restore(rec)
	})
	if errors.Is(err, storage.ErrRangeMissing) {
		return nil, fmt.Errorf("%w (data directory format %d)", err, formatOf(meta))
	}
	if err != nil {
		return nil, err
	}
	if err := upgradeFormat(cfg.DataDir, meta); err != nil {
		wal.Close()
		return nil, fmt.Errorf("recording data format %d in %s: %w", DataFormat, cfg.DataDir, err)
	}
	r.wal = wal
	if err := r.d.FinishRestore(); err != nil {
		wal.Close()
		return nil, err
	}
	if h := r.d.Replica().RestoreHoles(); h > 0 {
		r.cfg.Logger.Warn("log marks instances chosen without their values (a snapshot was passed over or the log checkpointed); learning them from peers",
			"node", r.cfg.NodeID, "instances", h)
	}
	r.publishStatus()
	return r, nil
}

// Applied returns the last instance applied to the state machine at
// startup (after that, see Status).
func (r *Replica) Applied() uint64 {
	if v := r.view.Load(); v != nil {
		return v.Applied
	}
	return 0
}

// Status returns the replica's status, as served to clients: computed by
// the core's actor now, or the one it last published when it does not run
// (or does not answer within statusWait). Do not call it from the
// replica's own actors.
func (r *Replica) Status() *messages.StatusResponse {
	r.mu.Lock()
	sys, running := r.sys, !r.closed
	r.mu.Unlock()
	select {
	case <-r.started:
	default:
		running = false
	}
	if running && !r.stopped.Load() && sys != nil {
		fresh := make(chan *messages.StatusResponse, 1)
		sys.Root.Send(r.pid(r.cfg.NodeID, CoreName), &localRequest{run: func(*core.Driver) {
			r.publishStatus()
			fresh <- r.status.Load()
		}})
		timer := time.NewTimer(statusWait)
		defer timer.Stop()
		select {
		case s := <-fresh:
			return s
		case <-timer.C:
		}
	}
	if s := r.status.Load(); s != nil {
		if s.IsMaster && r.stopped.Load() {
			// Published before the replica stopped: a stopped replica is
			// master of nothing.
			s = proto.Clone(s).(*messages.StatusResponse)
			s.IsMaster, s.LeaseRemainingUs = false, 0
		}
		return s
	}
	return &messages.StatusResponse{NodeId: r.cfg.NodeID}
}

// statusWait bounds how long Status waits for the core's actor.
const statusWait = time.Second

// Epoch returns the epoch of the log as this replica has applied it, and
// the master that started it (§5.3). Two calls return the same epoch if
// and only if no new mastership began in between (as far as this replica
// has applied the log).
func (r *Replica) Epoch() (epoch uint64, master uint32) {
	if v := r.view.Load(); v != nil {
		return v.Epoch, v.EpochMaster
	}
	return 0, 0
}

// LogStats returns the write-ahead log's counters (records, bytes, fsyncs,
// segments), for metrics.
func (r *Replica) LogStats() storage.Stats { return r.wal.Stats() }

// Start spawns the replica in sys under cfg.Name. Remoting must have been
// started first (cluster.NewSystem does), so that its address is known.
func (r *Replica) Start(sys *actor.ActorSystem) error {
	_, err := sys.Root.SpawnNamed(r.Props(), r.cfg.Name)
	return err
}

// Props returns the props of the replica parent actor, for a host that
// spawns it itself (under cfg.Name); Close stops it either way.
func (r *Replica) Props() *actor.Props {
	return r.props(func() actor.Actor { return &replicaActor{r: r} },
		actor.WithSupervisor(actor.NewOneForOneStrategy(0, 0, func(reason any) actor.Directive {
			r.fatal(fmt.Errorf("actors: replica actor failed: %v", reason))
			return actor.StopDirective
		})))
}

// ErrClosed answers requests to a replica that was closed.
var ErrClosed = errors.New("actors: replica closed")

// Close stops the replica: its actors stop (it sends nothing more, so the
// others fail over), then its log is flushed and its data directory
// released, so a replica may be started on it again in this process. It
// is safe to call more than once and from any goroutine but the replica's
// own actors.
func (r *Replica) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	sys, parent := r.sys, r.parent
	r.mu.Unlock()
	r.stopped.Store(true)
	if sys != nil && parent != nil {
		sys.Root.StopFuture(parent).Wait()
	}
	r.local.failAll(ErrClosed)
	return r.wal.Close()
}

// props builds the props of the parent or a child, with the configured
// middleware.
func (r *Replica) props(producer actor.Producer, opts ...actor.PropsOption) *actor.Props {
	if len(r.cfg.SenderMiddleware) > 0 {
		opts = append(opts, actor.WithSenderMiddleware(r.cfg.SenderMiddleware...))
	}
	if len(r.cfg.ReceiverMiddleware) > 0 {
		opts = append(opts, actor.WithReceiverMiddleware(r.cfg.ReceiverMiddleware...))
	}
	return actor.PropsFromProducer(producer, opts...)
}

// fatal stops the replica from serving: a broken fsync or invariant must
// not spread bad state. Safe from any goroutine.
func (r *Replica) fatal(err error) {
	r.fatalOnce.Do(func() {
		r.stopped.Store(true)
		r.cfg.Logger.Error("fatal", "node", r.cfg.NodeID, "err", err)
		r.local.failAll(fmt.Errorf("%w: %v", ErrStopped, err))
		r.cfg.OnFatal(err)
	})
}

// ErrStopped answers requests to a replica that stopped (a failed fsync, a
// broken invariant, a diverged state).
var ErrStopped = errors.New("actors: replica stopped")

// pid returns the PID of child (CoreName, SnapshotterName) on node id, as
// the membership in force addresses it; nil if id is not a member.
func (r *Replica) pid(id uint32, child string) *actor.PID {
	addr := paxos.MemberOf(r.members.Load(), id).GetAddress()
	if id == r.cfg.NodeID {
		addr = r.cfg.Address() // a joining node is not a member yet
	}
	if addr == "" {
		return nil
	}
	return r.pids.get(addr, child, func() string { return r.cfg.Name + "/" + child })
}

// pidCache keeps the PIDs this replica sends to, by address and name: a
// PID caches the process it resolves to, and making one per message
// costs an allocation and a registry lookup on every send.
type pidCache struct {
	mu   sync.RWMutex
	pids map[pidKey]*actor.PID
}

type pidKey struct{ addr, name string }

// maxCachedPIDs bounds the cache; past it, it starts over (addresses come
// from the membership and from clients' reply addresses).
const maxCachedPIDs = 4096

// get returns the PID of name (made by id when first asked) at addr.
func (c *pidCache) get(addr, name string, id func() string) *actor.PID {
	k := pidKey{addr, name}
	c.mu.RLock()
	p := c.pids[k]
	c.mu.RUnlock()
	if p != nil {
		return p
	}
	p = actor.NewPID(addr, id())
	c.mu.Lock()
	if c.pids == nil || len(c.pids) >= maxCachedPIDs {
		c.pids = make(map[pidKey]*actor.PID)
	}
	c.pids[k] = p
	c.mu.Unlock()
	return p
}

// RolePID returns the PID of role (ProposerName, LeaseName,
// SnapshotterName, ...) on member id; nil if id is not a member.
func (r *Replica) RolePID(id uint32, role string) *actor.PID { return r.pid(id, role) }

// ProposerPID returns the PID to which clients send this replica
// messages.ClientRequest, StatusRequest, MembersRequest and CheckRequest.
func (r *Replica) ProposerPID() *actor.PID { return r.pid(r.cfg.NodeID, ProposerName) }

// LeasePID returns the PID to which clients send this replica
// messages.ReadRequest: lease, quorum and stale reads (§5.2).
func (r *Replica) LeasePID() *actor.PID { return r.pid(r.cfg.NodeID, LeaseName) }

// SnapshotterPID returns the PID to which clients send this replica
// messages.SnapshotRequest.
func (r *Replica) SnapshotterPID() *actor.PID { return r.pid(r.cfg.NodeID, SnapshotterName) }

// NodeID returns this replica's node id.
func (r *Replica) NodeID() uint32 { return r.cfg.NodeID }

// ClientAddress returns this node's own client API address
// (Config.ClientAddress).
func (r *Replica) ClientAddress() string { return r.cfg.ClientAddress }

// ClientAddressOf returns member id's client API address as the
// membership records it ("" when not recorded). Safe for concurrent use.
func (r *Replica) ClientAddressOf(id uint32) string {
	return paxos.MemberOf(r.members.Load(), id).GetClientAddress()
}

// Master returns the master as this replica last knew it (0: unknown) and
// whether it is this replica itself. Safe for concurrent use.
func (r *Replica) Master() (id uint32, self bool) {
	if v := r.view.Load(); v != nil {
		return v.MasterID, v.Master && !r.stopped.Load()
	}
	return 0, false
}

// publishStatus computes the status on the core actor (or before it
// runs) for Status.
func (r *Replica) publishStatus() {
	s := r.d.Replica().Status(time.Now())
	s.Address, s.ClusterId, s.ClientAddress = r.cfg.Address(), r.cfg.ClusterID, r.cfg.ClientAddress
	s.MasterClientAddress = r.ClientAddressOf(s.MasterId)
	s.IsMaster = s.IsMaster && !r.stopped.Load()
	if r.wal != nil {
		s.LogSegments = r.wal.Stats().Segments
	}
	if free := r.diskFree.Load(); free > 0 {
		s.DiskFreeBytes = uint64(free)
	}
	r.snapshotDrops.addTo(&s.PeerDrops)
	r.mailboxDrops.addTo(&s.PeerDrops)
	r.status.Store(s)
}

// replicaActor is the parent: it spawns the core's actor and the snapshot
// device and supervises them. Any failure stops the whole replica (see
// Props).
type replicaActor struct{ r *Replica }

func (a *replicaActor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
	case *actor.Stopping:
		a.r.stoppingUnasked("replica")
		return
	default:
		return
	}
	r := a.r
	r.mu.Lock()
	r.sys, r.parent = ctx.ActorSystem(), ctx.Self()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		ctx.Stop(ctx.Self())
		return
	}
	// Both take messages from the network: bounded mailboxes (mailbox.go).
	ctx.SpawnNamed(r.props(func() actor.Actor { return newSnapshotterActor(r) }, r.mailbox(r.shedSnapshotter, nil)), SnapshotterName)
	ctx.SpawnNamed(r.props(func() actor.Actor { return &coreActor{r: r} },
		r.mailbox(r.shedCore, func(m *boundedMailbox) { r.coreMailbox.Store(m) })), CoreName)
}

// stoppingUnasked is called when one of the replica's actors stops: unless
// Close stopped it, something else did (it cannot come from the network:
// the peer port takes no lifecycle message), and a replica missing an
// actor must not live on as a zombie that holds its ports and answers
// nothing. The replica stops with the reason, which ends a node's process
// (OnFatal) so that its service manager restarts it.
func (r *Replica) stoppingUnasked(actorName string) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if !closed {
		r.fatal(fmt.Errorf("actors: the %s actor stopped, though the replica was not closed", actorName))
	}
}

// ticker sends msg to pid every interval until stop is called. Timers are
// the shell's business: the core only sees the time values.
func ticker(sys *actor.ActorSystem, pid *actor.PID, interval time.Duration, msg any) (stop func()) {
	t := time.NewTicker(interval)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.C:
				sys.Root.Send(pid, msg)
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { t.Stop(); close(done) }) }
}
