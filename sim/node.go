package sim

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/core"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// replyAddress marks commands submitted by simulated clients; the reply id
// is the client's endpoint id.
const replyAddress = "sim"

// node is one replica: the production replica core (core.Replica behind
// core.Driver, as package actors runs it) on simulated devices: a disk, a
// network, a drifting clock, a snapshot store, and the database. It holds
// no protocol logic of its own: it is the core's Host, and its checker's
// eyes (observe.go). Everything a crash loses lives in d; what survives is
// the disk's durable records and the snapshot.
type node struct {
	s  *Simulator
	id uint32
	up bool
	// inc counts incarnations. Events scheduled by one incarnation (ticks,
	// flushes, fsyncs) are ignored by the next.
	inc   int
	clock driftClock
	d     *core.Driver
	kv    *db.KV
	disk  *disk
	// view is the replica's view as it last published it: lease reads are
	// served from it with no trip through the replica, as the actor
	// shell's other goroutines serve them (actors.Replica.ServeRead).
	view core.View
	// applied is the last instance applied in this incarnation, as the
	// checker saw it handed out.
	applied uint64
	// The durable view, for the contradiction check: the highest ballot
	// durably promised and, per instance, the highest ballot durably
	// accepted.
	durablePromised uint64
	durableAccepted map[uint64]uint64
	// keptAccepted is every acceptance the disk made durable, across
	// restarts, until the disk is lost: a restart must find each one
	// above what a checkpoint let go of (checkNothingAcceptedLost).
	keptAccepted map[uint64]uint64
	// survivors holds the records a crash left on the disk, until restart.
	survivors []*messages.Record
	crashes   int
	// snapshot is the node's durable snapshot (§5.5): it survives crashes,
	// like the records on the disk. One being written is lost by a crash.
	snapshot     *simSnapshot
	snapshotting bool
	// damagedAt is the instance of a snapshot a crash damaged; the node
	// is rebuilding until it applied that far again.
	damagedAt uint64
	// fetching is the snapshot transfer in progress, if any (lost in a
	// crash).
	fetching *fetch
	// diskInc is the incarnation of the node's disk (§5.1), chosen when
	// the disk was first used; it survives crashes, not a wipe.
	diskInc uint64
	// wiped: the node lost its disk (a wipe fault) and rebuilds.
	wiped bool
	// diskFresh: the disk started empty and its acceptor has not yet been
	// asked for a vote under its incarnation (durable, as the identity
	// file is in actors); diskBootstrap is the bootstrap set it keeps.
	diskFresh     bool
	diskBootstrap []*messages.Member
	// hadSnapshot: the node has taken or installed a snapshot.
	hadSnapshot bool
	// watch follows what the checker's situations need (observe.go).
	watch watch
	// For scenario tests: the acceptor's last answer decided, and the
	// replies to commands a scenario proposed (scenarioAddress).
	lastAnswer      paxos.Envelope
	scenarioReplies []core.Reply
}

// scenarioAddress marks commands a scenario test proposes itself.
const scenarioAddress = "scenario"

// scenarioReply returns the reply to the scenario's command id, if any.
func (n *node) scenarioReply(id uint64) *core.Reply {
	for i := range n.scenarioReplies {
		if n.scenarioReplies[i].Cmd.RequestId == id {
			return &n.scenarioReplies[i]
		}
	}
	return nil
}

func newNode(s *Simulator, id uint32) *node {
	return &node{
		s:  s,
		id: id,
		clock: driftClock{
			offset:   time.Duration(s.rng.Int64N(int64(10 * time.Second))),
			driftPPM: s.rng.Int64N(2*s.cfg.MaxDriftPPM+1) - s.cfg.MaxDriftPPM,
		},
	}
}

func (n *node) name() string { return endpointName(n.id) }

// r is the replica core, for its facts.
func (n *node) r() *core.Replica { return n.d.Replica() }

// now is the node's own clock reading: what the replica sees.
func (n *node) now() time.Time { return n.clock.local(n.s.sched.now) }

// Now is the node's clock, for the Driver.
func (n *node) Now() time.Time { return n.now() }

// guard wraps fn so it runs only if this incarnation is still alive.
func (n *node) guard(fn func()) func() {
	inc := n.inc
	return func() {
		if n.up && n.inc == inc && n.s.err == nil {
			fn()
		}
	}
}

// planted is the bug this node runs with: divergent-apply in n2 alone
// (one replica whose state drifts), any other in every node.
func (n *node) planted() paxos.PlantedBug {
	if bug := n.s.cfg.Planted; bug != paxos.BugDivergentApply || n.id == 2 {
		return bug
	}
	return paxos.BugNone
}

// boot starts an incarnation from what is on the disk, the way
// actors.NewReplica does: the snapshot into the database, the log into the
// replica, then the replica finishes its restore.
func (n *node) boot(records []*messages.Record) {
	n.up = true
	n.disk = newDisk(records)
	n.durablePromised = 0
	n.durableAccepted = make(map[uint64]uint64)
	n.applied = 0
	n.fetching = nil
	n.snapshotting = false
	n.view = core.View{}
	n.watch = watch{}
	if n.diskInc == 0 {
		n.diskInc = n.s.rng.Uint64()>>1 + 1
		n.diskFresh = true
	}
	n.kv = db.New()
	pcfg := n.s.cfg.Proposer
	pcfg.Rand = rand.New(rand.NewPCG(n.s.rng.Uint64(), uint64(n.id)))
	cfg := core.Config{ID: n.id, Cluster: simCluster, Members: n.s.initialMembership(), Incarnation: n.diskInc, Fresh: n.diskFresh, Rebuilt: n.wiped,
		Bootstrap: n.diskBootstrap, Proposer: pcfg, Learner: n.s.cfg.Learner, RestartGrace: n.s.cfg.RestartGrace,
		SnapshotEvery: n.s.cfg.SnapshotEvery, SnapshotLogBytes: -1, Planted: n.planted(), Observer: n,
		SessionPlanted: n.s.cfg.SessionPlanted, MaxPromiseBytes: n.s.cfg.MaxPromiseBytes}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = -1
	}
	var sm core.StateMachine = n.kv
	if n.s.cfg.Sessions > 0 {
		sm = checkedKV{KV: n.kv, n: n}
		if n.s.cfg.PlantedNoLockDelay {
			n.kv.PlantNoLockDelay()
		}
	}
	d, err := core.NewDriver(cfg, sm, n)
	if err != nil {
		n.s.fail(ErrSafety, ErrRestore, "%s: %v", n.name(), err)
		return
	}
	n.d = d
	if snap := n.snapshot; snap != nil {
		// Recovery (§5.5): the newest snapshot, then the log after it.
		if err := n.kv.Restore(bytes.NewReader(snap.state)); err != nil {
			n.s.fail(ErrSafety, ErrRestore, "%s: snapshot at %d: %v", n.name(), snap.meta.Instance, err)
			return
		}
		d.RestoreSnapshot(snap.meta)
		n.applied = snap.meta.Instance
	}
	for _, rec := range records {
		n.watch.syncBallot = max(n.watch.syncBallot, recordBallot(rec))
		if err := d.Restore(rec); err != nil {
			n.s.fail(ErrSafety, ErrRestore, "%s: %v", n.name(), err)
			return
		}
	}
	n.fold(0, len(records))
	if err := d.FinishRestore(); err != nil {
		n.s.fail(ErrSafety, ErrRestore, "%s: %v", n.name(), err)
		return
	}
	n.checkNothingAcceptedLost()
	if h := n.r().RestoreHoles(); h > 0 {
		n.s.situation(sitRestoreHoles)
		if !n.hadSnapshot {
			// Only a snapshot (gone, or with the log checkpointed after
			// it) explains a chosen mark without its value.
			n.s.fail(ErrSafety, ErrRestore, "%s: the log marks %d instances chosen without their values", n.name(), h)
			return
		}
	}
	if n.s.trace != nil {
		n.s.tracef("%s boot: %d records, promised %s, applied %d", n.name(), len(records),
			fmtBallot(n.r().Promised()), n.applied)
	}
	// The first tick lands at a random phase so nodes do not tick in step.
	n.s.sched.after(n.s.rng.Int64N(int64(TickInterval)), n.guard(n.tick))
}

// crash stops the node. Synced records survive; with torn writes a random
// prefix of the unsynced ones survives too (never a later record without
// the earlier ones: the log is written in order).
func (n *node) crash() {
	keep := n.disk.synced
	if n.s.cfg.Faults.TornWrites {
		keep += n.s.rng.IntN(len(n.disk.unsynced()) + 1)
	}
	if n.s.trace != nil {
		n.s.tracef("%s CRASH: %d of %d records survive (%d synced)", n.name(), keep, len(n.disk.log), n.disk.synced)
	}
	if n.s.cfg.Faults.TornWrites && n.snapshot != nil && n.s.noneRebuilding() && n.s.rng.IntN(8) == 0 {
		if n.s.wipes > 0 {
			n.s.situation(sitLossesExclusive) // one loss of state per run
		} else {
			// The snapshot file is found damaged on restart: storage passes
			// over it, and with the older ones deleted once it was durable
			// there is none. The log may be checkpointed past it: the node
			// rebuilds from its peers (§5.5).
			if n.s.trace != nil {
				n.s.tracef("%s snapshot at %d DAMAGED", n.name(), n.snapshot.meta.Instance)
			}
			n.damagedAt = n.snapshot.meta.Instance
			n.snapshot = nil
			n.s.damagedSnapshots++
		}
	}
	n.s.lostRecords += len(n.disk.log) - keep
	n.survivors = n.disk.log[:keep:keep]
	if n.s.cfg.Faults.Wipes && n.s.wipes == 0 && n.s.mayWipe(n) && n.s.rng.IntN(5) == 0 {
		if n.s.damagedSnapshots > 0 {
			n.s.situation(sitLossesExclusive)
		} else {
			n.wipeOnCrash()
		}
	}
	n.up = false
	n.inc++
	n.crashes++
	n.d, n.kv, n.disk = nil, nil, nil
}

// wipeOnCrash loses the disk (§5.1): the node comes back empty, with a new
// incarnation, and rebuilds from its peers. Or a bit flips in a record
// with intact records after it: the restart finds the log corrupt, moves
// the directory aside (actors.MoveAside) and rebuilds the same way.
func (n *node) wipeOnCrash() {
	flip := len(n.survivors) > 1 && n.s.rng.IntN(2) == 0
	if flip {
		n.s.bitFlips++
	}
	if n.s.trace != nil && flip {
		n.s.tracef("%s a log record CORRUPT (bit flip, intact records after it): found at restart, directory moved aside", n.name())
	} else if n.s.trace != nil {
		n.s.tracef("%s disk WIPED", n.name())
	}
	n.loseDisk()
}

// loseDisk empties the crashed node's disk: it restarts with nothing, as a
// new incarnation (§5.1).
func (n *node) loseDisk() {
	n.survivors, n.snapshot, n.hadSnapshot, n.damagedAt = nil, nil, false, 0
	n.keptAccepted = nil
	n.diskInc, n.wiped, n.diskBootstrap = 0, true, nil
	n.s.wipes++
}

func (n *node) restart() {
	if n.up {
		return
	}
	if n.s.trace != nil {
		n.s.tracef("%s RESTART", n.name())
	}
	recs := n.survivors
	n.survivors = nil
	n.boot(recs)
}

// tick drives the replica's timers at the node's own (drifting) rate,
// and now and then has an operator ask for a snapshot (Config.SnapshotAsk).
func (n *node) tick() {
	if ask := n.s.cfg.SnapshotAsk; ask > 0 && !n.snapshotting && n.s.rng.Int64N(int64(ask/TickInterval)+1) == 0 {
		n.d.RequestSnapshot(nil)
	}
	n.d.Tick()
	next := n.clock.trueDuration(TickInterval)
	next += n.s.rng.Int64N(next/10+1) - next/20 // timers jitter a little
	n.s.sched.after(next, n.guard(n.tick))
}

// receive hands one message to the replica, or to a device.
func (n *node) receive(from uint32, msg any) {
	switch m := msg.(type) {
	case *snapshotFetch:
		n.serveChunk(from, m)
	case *snapshotChunk:
		n.takeChunk(from, m)
	case *clientRequest:
		n.request(m)
	case *watchPoll:
		n.serveWatch(from, m)
	case *messages.KeepAliveRequest:
		n.d.KeepAlive(m, func(resp proto.Message) { n.send(from, resp) })
	case proto.Message:
		n.beforeStep(from, m)
		n.d.Step(m)
	default:
		panic(fmt.Sprintf("sim: %s got a %T", n.name(), msg))
	}
}

// request takes a client's request: a write or a read through the log is
// proposed; a lease or quorum read is served from the published view when
// it can be (the lease-serving decision, core.View.Decide), else decided
// by the replica.
func (n *node) request(m *clientRequest) {
	if m.read == readLog {
		n.d.Propose(&messages.Command{ReplyAddress: replyAddress, ReplyId: strconv.FormatUint(uint64(m.client), 10),
			RequestId: m.reqID, Payload: m.payload})
		return
	}
	req := &messages.ReadRequest{RequestId: m.reqID, Query: m.payload, Consistency: messages.Consistency_CONSISTENCY_QUORUM}
	if m.read == readLease {
		req.Consistency = messages.Consistency_CONSISTENCY_LEASE
	}
	if dec := n.view.Decide(req.Consistency, n.now()); !dec.Confirm {
		resp, _ := core.Serve(n.kv, &n.view, req, dec)
		n.answerRead(m, resp, dec, n.view.LeaseUntil)
		return
	}
	n.d.Read(req, m)
}

// AnswerRead answers a read the replica decided.
func (n *node) AnswerRead(token any, resp *messages.ClientResponse, dec core.Decision, _ error) {
	n.answerRead(token.(*clientRequest), resp, dec, n.r().View(n.now()).LeaseUntil)
}

// answerRead sends a read's answer, after the checker has seen that a
// linearizable one may be served (under the lease that ends at until, for
// a lease read).
func (n *node) answerRead(m *clientRequest, resp *messages.ClientResponse, dec core.Decision, until time.Time) {
	if dec.Serve {
		n.s.check.servedRead(n, dec.Lease, until)
		if n.s.err != nil {
			return
		}
	}
	n.send(m.client, resp)
}

// Reply answers a simulated client whose command this node proposed.
func (n *node) Reply(rep core.Reply) {
	if rep.Cmd.ReplyAddress == scenarioAddress {
		n.scenarioReplies = append(n.scenarioReplies, rep)
	}
	if rep.Cmd.ReplyAddress != replyAddress {
		return
	}
	to, err := strconv.ParseUint(rep.Cmd.ReplyId, 10, 32)
	if err != nil {
		panic(fmt.Sprintf("sim: reply id %q", rep.Cmd.ReplyId))
	}
	if rep.Response.Code == messages.ErrorCode_ERROR_CODE_OK && !rep.Cmd.Membership {
		n.s.check.acked(rep.Response.Instance)
	}
	n.send(uint32(to), rep.Response)
}

// Answer: the simulator asks for checks and snapshots only in scenarios,
// which give a function as the token.
func (n *node) Answer(token any, msg proto.Message) {
	if fn, ok := token.(func(proto.Message)); ok {
		fn(msg)
	}
}

// Send puts a protocol message on the simulated network.
func (n *node) Send(to uint32, msg proto.Message) {
	n.s.check.bounded(n, msg)
	n.afterSend(to, msg)
	n.send(to, msg)
}

func (n *node) send(to uint32, msg any) {
	if n.s.trace != nil {
		n.s.tracef("%s -> %s %s", n.name(), endpointName(to), describe(msg))
	}
	n.s.net.send(n.id, to, msg)
}

// ScheduleFlush flushes a little later: the actor shell flushes once its
// mailbox has drained, which lets commands that arrive together share an
// instance (§4 batching).
func (n *node) ScheduleFlush() {
	n.s.sched.after(int64(flushDelay), n.guard(func() { n.d.Flush() }))
}

// Checksum computes the database's digest at once (§6.2).
func (n *node) Checksum(instance uint64, sum func() []byte) {
	n.s.checksums++
	n.d.ChecksumComputed(instance, sum())
}

// Fatal: the replica stopped, which in the simulator is a failed run.
func (n *node) Fatal(err error) {
	switch {
	case errors.Is(err, core.ErrApplyOrder):
		n.s.fail(ErrSafety, ErrAppliedOutOfOrder, "%s: %v", n.name(), err)
	case errors.Is(err, core.ErrDiverged):
		n.s.fail(ErrSafety, ErrChecksumMismatch, "%s: %v", n.name(), err)
	case errors.Is(err, paxos.ErrInvariant):
		n.s.fail(ErrSafety, ErrTwoValuesChosen, "%s: %v", n.name(), err)
	default:
		n.s.fail(ErrSafety, ErrRestore, "%s stopped: %v", n.name(), err)
	}
}

// Publish keeps the replica's view for reads served without it.
func (n *node) Publish(v core.View, _ *messages.Membership) { n.view = v }

// Prove records on the disk that the acceptor is no longer fresh (the
// identity file, in actors).
func (n *node) Prove(bootstrap []*messages.Member) error {
	n.diskFresh, n.diskBootstrap = false, bootstrap
	return nil
}

// simCluster is the cluster hash every simulated replica runs with: the
// messages it sends carry it, and the core drops those that do not.
var simCluster = messages.ClusterHash("sim")
