package actors

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
	"github.com/livepaxos/livepaxos/storage"
)

// Replica is one member of a livepaxos group, ready to be spawned as an
// actor subtree. Create it with NewReplica, spawn Props() under cfg.Name,
// and stop the subtree (then Close) to shut it down.
type Replica struct {
	cfg      Config
	wal      *storage.WAL
	acceptor *paxos.Acceptor
	learner  *paxos.Learner
	proposer *paxos.Proposer

	fatalOnce sync.Once
	stopped   atomic.Bool
	// unsynced counts appends not yet durable: a reply that persists
	// nothing may still depend on state that is not on disk yet.
	unsynced atomic.Int64
	status   atomic.Pointer[messages.StatusResponse]
	// lease is the proposer's latest word on its lease (§5.2), for reads
	// served outside the lease manager (ServeRead).
	lease atomic.Pointer[leaseUpdate]
	// epochs follows the epoch through the applied log; only the learner
	// actor (and NewReplica before it) touches it.
	epochs paxos.EpochTracker
	// What the learner has applied, for stale reads and status: written by
	// the learner actor, read by the others.
	appliedUpto atomic.Uint64
	knownChosen atomic.Uint64
	epoch       atomic.Uint64
	epochMaster atomic.Uint32
	// Snapshots (§5.5): the one restored at startup, and counters for
	// status. truncated is how far the log is let go of.
	restoredSnapshot storage.SnapshotInfo
	snapshotAt       atomic.Uint64
	snapshots        atomic.Uint64
	installs         atomic.Uint64
	truncated        atomic.Uint64
	// Runtime consistency checks (§6.2), for status.
	checkedInstance atomic.Uint64
	checks          atomic.Uint64
	divergence      atomic.Pointer[string]
	// behindSince is when (Unix ns) the learner last found itself behind
	// what it knows is chosen; 0 while it is not.
	behindSince  atomic.Int64
	behindTarget atomic.Uint64
	// members is the membership in force as applied (§5.4);
	// membersChanged is set by the apply path when it moved, for the
	// learner actor to pass on.
	members        atomic.Pointer[membersView]
	membersChanged bool
	// membersAt is the instance the membership in force was applied at.
	membersAt uint64
	// incarnation is this data directory's (§5.1).
	incarnation uint64
}

// catchUpStuckAfter is how long a replica may stay behind the chosen log
// before status flags it as stuck in catch-up.
const catchUpStuckAfter = 3 * time.Second

func (r *Replica) catchingUp() bool {
	since := r.behindSince.Load()
	return since != 0 && time.Since(time.Unix(0, since)) > catchUpStuckAfter
}

// NewReplica opens the data directory, replays the write-ahead log into the
// acceptor and learner, and re-applies every entry the log marks chosen to
// the state machine, so the replica resumes where it stopped.
func NewReplica(cfg Config) (*Replica, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	r := &Replica{
		cfg:      cfg,
		acceptor: paxos.NewAcceptor(cfg.NodeID),
		learner:  paxos.NewLearner(cfg.Learner),
	}
	meta, err := checkIdentity(cfg.DataDir, cfg.ClusterID, cfg.NodeID)
	if err != nil {
		return nil, err
	}
	r.incarnation = meta.Incarnation
	r.acceptor.SetIncarnation(meta.Incarnation, meta.Fresh)
	r.acceptor.SetBootstrap(meta.Bootstrap)
	r.members.Store(viewOf(initialMembership(&r.cfg)))
	// Recovery (§5.5): the newest valid snapshot, then the log after it.
	if err := r.restoreSnapshot(); err != nil {
		return nil, err
	}
	records := 0
	wal, err := storage.Open(cfg.DataDir, storage.Options{OnFatal: r.fatal}, func(b []byte) error {
		rec := &messages.Record{}
		if err := proto.Unmarshal(b, rec); err != nil {
			return fmt.Errorf("%w: record %d does not decode: %v", storage.ErrCorrupt, records, err)
		}
		records++
		if err := r.acceptor.Restore(rec); err != nil {
			return err
		}
		r.learner.Restore(rec)
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.wal = wal
	r.truncated.Store(r.acceptor.Truncated())
	out, err := r.learner.FinishRestore()
	if err != nil {
		wal.Close()
		return nil, err
	}
	for _, e := range out.Apply {
		r.applyEntry(e) // results went to clients before the restart
	}
	if h := r.learner.RestoreHoles(); h > 0 {
		r.cfg.Logger.Warn("log marks instances chosen without their values (a snapshot was passed over or the log checkpointed); learning them from peers",
			"node", r.cfg.NodeID, "instances", h)
	}
	r.publishProgress()
	now := time.Now()
	// The acceptor may have granted a lease just before it stopped: honour
	// it as if granted now (§5.2).
	r.acceptor.StartLease(cfg.Proposer.LeaseTimeout, now)
	pcfg := cfg.Proposer
	pcfg.Members, pcfg.Incarnation, pcfg.Fresh = initialMembership(&r.cfg), r.incarnation, r.acceptor.Fresh()
	pcfg.Bootstrap = r.acceptor.Bootstrap()
	r.membersChanged = false
	r.proposer = paxos.NewProposer(pcfg, now)
	r.proposer.MembershipApplied(r.view().membership(), r.membersAt, now) // as the log left it: a follower, nothing to emit
	r.proposer.LearnerProgress(r.learner.Contiguous())
	r.proposer.ObserveBallot(r.acceptor.Promised())
	r.proposer.HoldUntilApplied(r.acceptor.Truncated())
	if r.acceptor.Promised() > 0 {
		// It has been part of the group: give the master time to reach it
		// (protoactor retries a lost connection after 2 s) before
		// campaigning.
		r.proposer.HoldElection(time.Now(), cfg.RestartGrace)
	}
	return r, nil
}

// Applied returns the last instance applied to the state machine at
// startup (after that, see Status).
func (r *Replica) Applied() uint64 { return r.learner.Contiguous() }

// Status returns the replica's latest status, as served to clients.
func (r *Replica) Status() *messages.StatusResponse {
	if s := r.status.Load(); s != nil {
		return s
	}
	return &messages.StatusResponse{NodeId: r.cfg.NodeID}
}

// Close releases the data directory. Stop the actor subtree first.
func (r *Replica) Close() error {
	r.stopped.Store(true)
	return r.wal.Close()
}

// Props returns the props of the replica parent actor.
func (r *Replica) Props() *actor.Props {
	return r.props(func() actor.Actor { return &replicaActor{r: r} },
		actor.WithSupervisor(actor.NewOneForOneStrategy(0, 0, func(reason any) actor.Directive {
			r.fatal(fmt.Errorf("actors: role actor failed: %v", reason))
			return actor.StopDirective
		})))
}

// props builds the props of the parent or a role actor, with the
// configured middleware.
func (r *Replica) props(producer actor.Producer, opts ...actor.PropsOption) *actor.Props {
	if len(r.cfg.SenderMiddleware) > 0 {
		opts = append(opts, actor.WithSenderMiddleware(r.cfg.SenderMiddleware...))
	}
	if len(r.cfg.ReceiverMiddleware) > 0 {
		opts = append(opts, actor.WithReceiverMiddleware(r.cfg.ReceiverMiddleware...))
	}
	return actor.PropsFromProducer(producer, opts...)
}

// rootContext returns the context for sends made outside any actor (from
// the log's goroutine): the system's root, or, when sender middleware is
// configured, a root context of this replica's own that runs it.
func (r *Replica) rootContext(sys *actor.ActorSystem) *actor.RootContext {
	if len(r.cfg.SenderMiddleware) == 0 {
		return sys.Root
	}
	return actor.NewRootContext(sys, nil, r.cfg.SenderMiddleware...)
}

// fatal stops the replica from serving: a broken fsync or invariant must not
// spread bad state.
func (r *Replica) fatal(err error) {
	r.fatalOnce.Do(func() {
		r.stopped.Store(true)
		r.cfg.Logger.Error("fatal", "node", r.cfg.NodeID, "err", err)
		r.cfg.OnFatal(err)
	})
}

// pid returns the PID of role on node id.
func (r *Replica) pid(id uint32, role string) *actor.PID {
	addr, ok := r.view().addrs[id]
	if id == r.cfg.NodeID {
		addr, ok = r.cfg.Address(), true // a joining node is not in the view yet
	}
	if !ok {
		return nil
	}
	return actor.NewPID(addr, r.cfg.Name+"/"+role)
}

func (r *Replica) rolePID(id uint32, role paxos.Role) *actor.PID {
	switch role {
	case paxos.RoleProposer:
		return r.pid(id, ProposerName)
	case paxos.RoleAcceptor:
		return r.pid(id, AcceptorName)
	case paxos.RoleLearner:
		return r.pid(id, LearnerName)
	}
	return nil
}

// send delivers envelopes to their role actors. Messages for this node stay
// in process.
func (r *Replica) send(sender actor.SenderContext, envs []paxos.Envelope) {
	if r.stopped.Load() {
		return
	}
	for _, env := range envs {
		if pid := r.rolePID(env.To, paxos.RoleOf(env.Msg)); pid != nil {
			sender.Send(pid, env.Msg)
		}
	}
}

// persist appends records to the log and calls then once they, and every
// record appended before them, are durable.
func (r *Replica) persist(recs []*messages.Record, then func()) {
	if len(recs) == 0 && r.unsynced.Load() == 0 {
		if then != nil && !r.stopped.Load() {
			then()
		}
		return
	}
	bufs, ok := r.encode(recs)
	if !ok {
		return
	}
	r.unsynced.Add(1)
	r.wal.Append(bufs, func(err error) {
		r.unsynced.Add(-1)
		if err != nil {
			r.fatal(err)
			return
		}
		if then != nil && !r.stopped.Load() {
			then()
		}
	})
}

// encode marshals records for the log; a record that cannot be encoded is a
// broken invariant.
func (r *Replica) encode(recs []*messages.Record) ([][]byte, bool) {
	bufs := make([][]byte, 0, len(recs))
	for _, rec := range recs {
		b, err := proto.Marshal(rec)
		if err != nil {
			r.fatal(fmt.Errorf("actors: encoding a record: %w", err))
			return nil, false
		}
		bufs = append(bufs, b)
	}
	return bufs, true
}

// persistLazy appends records that can be rebuilt from a majority (learned
// values, chosen marks): they ride on the next fsync instead of causing one.
func (r *Replica) persistLazy(recs []*messages.Record) {
	bufs, ok := r.encode(recs)
	if !ok {
		return
	}
	r.wal.AppendLazy(bufs)
}

// applied is the state machine's answer to one command.
type applied struct {
	result []byte
	err    error
	// refused: the command's epoch had ended, so it was not applied (§5.3).
	refused bool
}

// applyEntry hands one chosen entry's commands to the state machine, in
// order, after moving the epoch over it. No-ops apply nothing; a command
// from an ended epoch is refused, on every replica alike. An error from
// Apply is the state machine's deterministic refusal of that command: it
// goes back to the client.
func (r *Replica) applyEntry(e *messages.Entry) []applied {
	sm := r.cfg.StateMachine
	if r.epochs.Enter(e) {
		epoch, master := r.epochs.Epoch()
		if o, ok := sm.(EpochObserver); ok {
			o.ObserveEpoch(epoch)
		}
		r.epoch.Store(epoch)
		r.epochMaster.Store(master)
	}
	if e.Value == nil || e.Value.Noop {
		return nil
	}
	results := make([]applied, len(e.Value.Commands))
	for i, cmd := range e.Value.Commands {
		if !r.epochs.Admits(cmd) {
			results[i].refused = true
			continue
		}
		if cmd.Membership {
			results[i].result, results[i].err = r.applyMembership(e.Instance, cmd.Payload)
			continue
		}
		results[i].result, results[i].err = sm.Apply(e.Instance, cmd.Payload)
	}
	return results
}

// publishProgress makes the learner's progress visible to the other actors.
func (r *Replica) publishProgress() {
	r.appliedUpto.Store(r.learner.Contiguous())
	r.knownChosen.Store(r.learner.KnownChosen())
	r.noteBehind()
}

func peerIDs(peers map[uint32]string) []uint32 {
	ids := make([]uint32, 0, len(peers))
	for id := range peers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// replicaActor is the parent: it spawns the role actors and supervises
// them. Any role failure stops the whole replica (see Props).
type replicaActor struct{ r *Replica }

func (a *replicaActor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		r := a.r
		ctx.SpawnNamed(r.props(func() actor.Actor { return newAcceptorActor(r) }), AcceptorName)
		ctx.SpawnNamed(r.props(func() actor.Actor { return newLearnerActor(r) }), LearnerName)
		ctx.SpawnNamed(r.props(func() actor.Actor { return newLeaseActor(r) }), LeaseName)
		ctx.SpawnNamed(r.props(func() actor.Actor { return newProposerActor(r) }), ProposerName)
		ctx.SpawnNamed(r.props(func() actor.Actor { return newSnapshotterActor(r) }), SnapshotterName)
	}
}

// ticker sends msg to pid every interval until stop is called. Timers are
// the shell's business: the role logic only sees the time values.
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

// noteBehind keeps behindSince: since when the learner has lacked
// instances it knew were chosen then. Under load a follower is always a
// few instances behind the newest notice; what counts is whether it
// reaches, in time, what was chosen when it last looked.
func (r *Replica) noteBehind() {
	applied, known := r.learner.Contiguous(), r.learner.KnownChosen()
	if r.behindSince.Load() != 0 && applied < r.behindTarget.Load() {
		return // still short of the earlier target
	}
	if applied >= known {
		r.behindSince.Store(0)
		return
	}
	r.behindTarget.Store(known)
	r.behindSince.Store(time.Now().UnixNano())
}

// role names this node's membership role (§5.4).
func (r *Replica) role() string {
	v := r.view()
	switch {
	case v.learners[r.cfg.NodeID]:
		return "learner"
	case v.addrs[r.cfg.NodeID] == "" && r.cfg.Join && v.version == 1:
		return "joining"
	case v.addrs[r.cfg.NodeID] == "":
		return "removed" // not (or no longer) in the configuration it applied
	}
	if inc := paxos.MemberOf(v.m, r.cfg.NodeID).GetIncarnation(); inc != 0 && r.incarnation != 0 && inc != r.incarnation {
		// It lost its disk (§5.1): it votes for nothing until the group
		// records its new incarnation.
		return "non-voting (rebuilding)"
	}
	return "voter"
}

// memberList lists the group's members, voters and learners, by id.
func (r *Replica) memberList() []*messages.Member { return r.view().membership().Members }
