package sim

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// replyAddress marks commands submitted by simulated clients; the reply id
// is the client's endpoint id.
const replyAddress = "sim"

// node is one replica: the three real roles wired the way the actor
// shells wire them (actors/*.go), a simulated disk, a drifting clock and the
// database. Everything a crash loses lives here; what survives is the
// disk's durable records.
type node struct {
	s  *Simulator
	id uint32
	up bool
	// inc counts incarnations. Events scheduled by one incarnation (ticks,
	// flushes, fsyncs) are ignored by the next.
	inc   int
	clock driftClock
	p     *paxos.Proposer
	a     *paxos.Acceptor
	l     *paxos.Learner
	kv    *db.KV
	disk  *disk
	// eagerMark is the log length after the last eager append: an fsync
	// must run while synced is below it.
	eagerMark      int
	flushScheduled bool
	ticks          int
	// applied is the last instance applied in this incarnation.
	applied uint64
	// The durable view, for the contradiction check: the highest ballot
	// durably promised and, per instance, the highest ballot durably
	// accepted.
	durablePromised uint64
	durableAccepted map[uint64]uint64
	// survivors holds the records a crash left on the disk, until restart.
	survivors []*messages.Record
	crashes   int
	// epochs follows the epoch through what this incarnation applied.
	epochs paxos.EpochTracker
	// reads waits for the proposer to confirm mastership (quorum reads).
	reads   map[uint64]*clientRequest
	readSeq uint64
	// snapshot is the node's durable snapshot (§5.5): it survives crashes,
	// like the records on the disk. One being written is lost by a crash.
	snapshot     *simSnapshot
	snapshotting bool
	// damagedAt is the instance of a snapshot a crash damaged; the node
	// is rebuilding until it applied that far again.
	damagedAt uint64
	// tally compares checksums at checksum values (§6.2).
	tally *paxos.ChecksumTally
	// fetching is the snapshot transfer in progress, if any (lost in a
	// crash).
	fetching *fetch
	// members is the membership in force as this incarnation applied the
	// log (§5.4): replicated state, rebuilt from the snapshot and the log.
	members *messages.Membership
	// membersAt is the instance members was applied at (or the snapshot's).
	membersAt uint64
	// diskInc is the incarnation of the node's disk (§5.1), chosen when
	// the disk was first used; it survives crashes, not a wipe.
	diskInc uint64
	// wiped: the node lost its disk (a wipe fault) and rebuilds.
	wiped bool
	// diskFresh: the disk started empty and its acceptor has not yet been
	// asked for a vote under its incarnation (durable, as the identity
	// file is in actors).
	diskFresh     bool
	diskBootstrap []*messages.Member
	// hadSnapshot: the node has taken or installed a snapshot.
	hadSnapshot bool
}

// simSnapshot is a committed snapshot file: the database's state as of
// instance, with the epoch in force there.
type simSnapshot struct {
	instance uint64
	epoch    uint64
	master   uint32
	state    []byte
	members  *messages.Membership // the membership in force (§5.4)
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

// memberIDs lists the ids of members of m.
func memberIDs(m *messages.Membership) []uint32 {
	var ids []uint32
	for _, mem := range m.Members {
		ids = append(ids, mem.Id)
	}
	return ids
}

// now is the node's own clock reading: what the roles see.
func (n *node) now() time.Time { return n.clock.local(n.s.sched.now) }

// guard wraps fn so it runs only if this incarnation is still alive.
func (n *node) guard(fn func()) func() {
	inc := n.inc
	return func() {
		if n.up && n.inc == inc && n.s.err == nil {
			fn()
		}
	}
}

// boot starts an incarnation from the records on the disk, in the order of
// actors.NewReplica: replay into acceptor and learner, re-apply what the
// log marks chosen, then a fresh proposer that knows its acceptor's
// promise.
func (n *node) boot(records []*messages.Record) {
	n.up = true
	n.disk = newDisk(records)
	n.eagerMark = len(records)
	n.durablePromised = 0
	n.durableAccepted = make(map[uint64]uint64)
	n.applied = 0
	n.flushScheduled = false
	n.a = paxos.NewAcceptor(n.id)
	n.a.Plant(n.s.cfg.Planted)
	if n.diskInc == 0 {
		n.diskInc = n.s.rng.Uint64()>>1 + 1
		n.diskFresh = true
	}
	n.a.SetIncarnation(n.diskInc, n.diskFresh)
	n.a.SetBootstrap(n.diskBootstrap)
	n.epochs = paxos.EpochTracker{}
	n.epochs.Plant(n.s.cfg.Planted)
	n.reads = make(map[uint64]*clientRequest)
	lcfg := n.s.cfg.Learner
	lcfg.ID, lcfg.Peers, lcfg.Planted = n.id, n.s.ids, n.s.cfg.Planted
	n.l = paxos.NewLearner(lcfg)
	n.kv = db.New()
	n.snapshotting = false
	n.fetching = nil
	n.tally = paxos.NewChecksumTally(n.id, len(n.s.all), 16)
	n.members, n.membersAt = n.s.initialMembership(), 0
	if snap := n.snapshot; snap != nil {
		// Recovery (§5.5): the newest snapshot, then the log after it.
		if err := n.kv.Restore(bytes.NewReader(snap.state)); err != nil {
			n.s.fail(ErrSafety, ErrRestore, "%s: snapshot at %d: %v", n.name(), snap.instance, err)
			return
		}
		n.l.RestoreSnapshot(snap.instance)
		n.epochs.Reset(snap.epoch, snap.master)
		if snap.members != nil {
			n.members, n.membersAt = snap.members, snap.instance
		}
		n.applied = snap.instance
	}
	for _, rec := range records {
		if err := n.a.Restore(rec); err != nil {
			n.s.fail(ErrSafety, ErrRestore, "%s: %v", n.name(), err)
			return
		}
		n.l.Restore(rec)
	}
	n.fold(0, len(records))
	n.a.StartLease(n.s.cfg.Proposer.LeaseTimeout, n.now())
	out, err := n.l.FinishRestore()
	if err != nil {
		n.s.fail(ErrSafety, ErrRestore, "%s: %v", n.name(), err)
		return
	}
	if h := n.l.RestoreHoles(); h > 0 && !n.hadSnapshot {
		// Only a snapshot (gone, or with the log checkpointed after it)
		// explains a chosen mark without its value.
		n.s.fail(ErrSafety, ErrRestore, "%s: the log marks %d instances chosen without their values", n.name(), h)
		return
	}
	for _, e := range out.Apply {
		if !n.apply(e, false) {
			return
		}
	}
	pcfg := n.s.cfg.Proposer
	pcfg.ID, pcfg.Members, pcfg.Incarnation, pcfg.Fresh = n.id, n.s.initialMembership(), n.diskInc, n.diskFresh
	pcfg.Bootstrap = n.diskBootstrap
	pcfg.Rand = rand.New(rand.NewPCG(n.s.rng.Uint64(), uint64(n.id)))
	pcfg.Planted = n.s.cfg.Planted
	n.p = paxos.NewProposer(pcfg, n.now())
	n.p.MembershipApplied(n.members, n.membersAt, n.now()) // a new follower: nothing to send
	n.l.SetPeers(memberIDs(n.members))
	n.p.LearnerProgress(n.l.Contiguous())
	n.p.ObserveBallot(n.a.Promised())
	n.p.HoldUntilApplied(n.a.Truncated())
	if n.s.trace != nil {
		n.s.tracef("%s boot: %d records, promised %s, applied %d", n.name(), len(records),
			fmtBallot(n.a.Promised()), n.applied)
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
	if n.s.cfg.Faults.TornWrites && n.snapshot != nil && n.s.noneRebuilding() && n.s.wipes == 0 && n.s.rng.IntN(8) == 0 {
		// The snapshot file is found damaged on restart: storage passes
		// over it, and with the older ones deleted once it was durable
		// there is none. The log may be checkpointed past it: the node
		// rebuilds from its peers (§5.5).
		if n.s.trace != nil {
			n.s.tracef("%s snapshot at %d DAMAGED", n.name(), n.snapshot.instance)
		}
		n.damagedAt = n.snapshot.instance
		n.snapshot = nil
		n.s.damagedSnapshots++
	}
	n.s.lostRecords += len(n.disk.log) - keep
	n.survivors = n.disk.log[:keep:keep]
	if n.s.cfg.Faults.Wipes && n.s.wipes == 0 && n.s.damagedSnapshots == 0 && n.s.mayWipe(n) && n.s.rng.IntN(5) == 0 {
		// The disk is lost (§5.1): the node comes back empty, with a new
		// incarnation, and rebuilds from its peers. Or a bit flips in a
		// record with intact records after it: the restart finds the log
		// corrupt, moves the directory aside (actors.MoveAside) and
		// rebuilds the same way.
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
	n.up = false
	n.inc++
	n.crashes++
	n.p, n.a, n.l, n.kv, n.disk = nil, nil, nil, nil, nil
}

// loseDisk empties the crashed node's disk: it restarts with nothing, as a
// new incarnation (§5.1).
func (n *node) loseDisk() {
	n.survivors, n.snapshot, n.hadSnapshot, n.damagedAt = nil, nil, false, 0
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

// tick drives the role timers at the node's own (drifting) rate.
func (n *node) tick() {
	n.ticks++
	now := n.now()
	n.maybeSnapshot()
	n.proposerOut(n.p.Tick(now))
	if n.ticks%learnerTickEvery == 0 && n.s.err == nil {
		n.learnerOut(n.l.Tick(now))
	}
	next := n.clock.trueDuration(TickInterval)
	next += n.s.rng.Int64N(next/10+1) - next/20 // timers jitter a little
	n.s.sched.after(next, n.guard(n.tick))
}

// maybeSnapshot takes a snapshot now and then (about every
// Config.SnapshotEvery): the database is frozen between two instances and
// written at once, and the file commits after a simulated write and sync;
// a crash before that leaves the previous snapshot.
func (n *node) maybeSnapshot() {
	every := n.s.cfg.SnapshotEvery
	if every <= 0 || n.snapshotting || n.s.rng.Int64N(int64(every/TickInterval)+1) != 0 {
		return
	}
	n.startSnapshot()
}

// startSnapshot freezes the database, writes it, and commits the snapshot
// after a simulated write and sync of its chunks.
func (n *node) startSnapshot() {
	if n.snapshotting || n.applied == 0 || (n.snapshot != nil && n.snapshot.instance >= n.applied) {
		return
	}
	_, write, err := n.kv.BeginSnapshot()
	if err != nil {
		n.s.fail(ErrSafety, ErrRestore, "%s: begin snapshot: %v", n.name(), err)
		return
	}
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		n.s.fail(ErrSafety, ErrRestore, "%s: write snapshot: %v", n.name(), err)
		return
	}
	epoch, master := n.epochs.Epoch()
	snap := &simSnapshot{instance: n.applied, epoch: epoch, master: master, state: buf.Bytes(), members: n.members}
	n.snapshotting = true
	delay := int64(n.s.cfg.FsyncMin) + n.s.rng.Int64N(int64(10*n.s.cfg.FsyncMax))
	n.s.sched.after(delay, n.guard(func() {
		n.snapshotting = false
		if n.snapshot != nil && n.snapshot.instance >= snap.instance {
			return // an installed snapshot overtook this one
		}
		n.snapshot = snap
		n.hadSnapshot = true
		n.l.SnapshotTaken(snap.instance)
		n.checkpoint(snap.instance)
		n.s.snapshots++
		if n.s.trace != nil {
			n.s.tracef("%s snapshot at %d committed (%d bytes)", n.name(), snap.instance, len(snap.state))
		}
	}))
}

// checkpoint lets the acceptor go of its log up to a durable snapshot and
// writes its checkpoint; once that is durable the records before it are
// deleted (storage.WAL.Checkpoint).
func (n *node) checkpoint(upto uint64) {
	if n.s.cfg.NoTruncate {
		return
	}
	recs := n.a.Truncate(upto)
	if len(recs) == 0 {
		return
	}
	d := n.disk
	start := d.deleted + len(d.log) // as a position that survives earlier cuts
	n.append(recs, true)
	d.waiters = append(d.waiters, waiter{target: len(d.log), fn: func() {
		k := start - d.deleted
		n.s.truncations++
		d.cut(k)
		n.eagerMark = max(0, n.eagerMark-k)
		if n.s.trace != nil {
			n.s.tracef("%s checkpoint at %d durable: %d older records deleted", n.name(), upto, k)
		}
	}})
}

// applyMembership applies a membership command from the log, as
// actors.Replica does: it takes effect only if paxos.CheckMembershipChange
// allows it, and the proposer then sends the log to the new learners.
func (n *node) applyMembership(instance uint64, payload []byte) {
	next := &messages.Membership{}
	if err := proto.Unmarshal(payload, next); err != nil {
		n.s.fail(ErrSafety, ErrMembershipDiverged, "%s: membership command at %d does not decode", n.name(), instance)
		return
	}
	if paxos.CheckMembershipChange(n.members, next) == nil {
		n.members, n.membersAt = next, instance
		if n.p != nil { // at boot the proposer is made after the replay, from n.members
			n.proposerOut(n.p.MembershipApplied(next, instance, n.now()))
		}
		n.l.SetPeers(memberIDs(next))
		if n.s.trace != nil {
			n.s.tracef("%s membership v%d at %d: voters %v learners %v", n.name(), next.Version, instance,
				paxos.MembershipVoters(next), paxos.MembershipLearners(next))
		}
	}
	n.s.check.membership(n, instance, n.members.GetVersion())
}

// checksum is the §6.2 runtime consistency check at a checksum value:
// the node sends every peer its database's digest at instance and compares
// with theirs (paxos.ChecksumTally); a node that finds itself in the
// minority stops the run, as a replica stops serving.
func (n *node) checksum(instance uint64) {
	h := n.kv.Hash()
	sum := h[:]
	for _, id := range n.s.all {
		if id != n.id {
			n.send(id, &messages.ChecksumReport{From: n.id, Instance: instance, Checksum: sum})
		}
	}
	n.s.checksums++
	n.checkVerdict(n.tally.Record(instance, n.id, sum))
}

func (n *node) checkVerdict(v paxos.Verdict) {
	if v.SelfDiverged {
		n.s.fail(ErrSafety, ErrChecksumMismatch, "%s: its checksum at instance %d differs from its group's majority", n.name(), v.Instance)
	}
	for _, d := range v.Diverged {
		n.s.fail(ErrSafety, ErrChecksumMismatch, "%s: n%d's checksum at instance %d differs from the majority's", n.name(), d, v.Instance)
	}
}

// snapshotFetch asks a peer for the bytes of its snapshot (at least as of
// instance) from offset; snapshotChunk carries up to snapshotChunkBytes of
// them, one request in flight at a time, as the actor shell streams a
// snapshot file (actors/snapshotter.go). A provider that crashes or moves
// to a newer snapshot mid-transfer ends it; the fetcher gives up after
// fetchTimeout without a chunk, and the learner's next catch-up asks
// another peer.
type snapshotFetch struct {
	instance uint64
	offset   int
}

type snapshotChunk struct {
	instance uint64 // 0: nothing as recent to give
	epoch    uint64
	master   uint32
	members  *messages.Membership
	offset   int
	data     []byte
	done     bool
}

// snapshotChunkBytes is small so that simulated snapshots span several
// chunks.
const snapshotChunkBytes = 16

// fetchTimeout is how long a transfer waits for its next chunk.
const fetchTimeout = time.Second

// fetch is a snapshot transfer in progress.
type fetch struct {
	from     uint32
	instance uint64
	buf      []byte
	last     time.Duration // simulated time of the last request
}

// startFetch begins fetching peer's snapshot as of instance, unless a
// transfer is already under way.
func (n *node) startFetch(peer uint32, instance uint64) {
	if f := n.fetching; f != nil {
		if time.Duration(n.s.sched.now)-f.last < fetchTimeout {
			return
		}
		n.s.transfersCut++ // the provider went quiet mid-transfer
	}
	n.fetching = &fetch{from: peer, instance: instance, last: time.Duration(n.s.sched.now)}
	n.send(peer, &snapshotFetch{instance: instance})
}

// serveChunk answers a fetch with the next chunk of this node's snapshot.
func (n *node) serveChunk(from uint32, m *snapshotFetch) {
	resp := &snapshotChunk{offset: m.offset}
	if snap := n.snapshot; snap != nil && snap.instance >= m.instance && m.offset <= len(snap.state) {
		end := min(m.offset+snapshotChunkBytes, len(snap.state))
		resp.instance, resp.epoch, resp.master, resp.members = snap.instance, snap.epoch, snap.master, snap.members
		resp.data = snap.state[m.offset:end] // never changed in place: sharing is a copy
		resp.done = end == len(snap.state)
	}
	n.send(from, resp)
}

// takeChunk adds a chunk to the transfer and installs the snapshot once
// it is whole.
func (n *node) takeChunk(from uint32, m *snapshotChunk) {
	f := n.fetching
	if f == nil || from != f.from || m.offset != len(f.buf) {
		return // late, duplicated, or of a transfer given up
	}
	if m.instance == 0 || (m.offset > 0 && m.instance != f.instance) || m.instance < f.instance {
		n.fetching = nil // the provider has nothing as recent, or moved on
		n.s.transfersCut++
		return
	}
	f.instance = m.instance
	f.buf = append(f.buf, m.data...)
	f.last = time.Duration(n.s.sched.now)
	if !m.done {
		n.send(from, &snapshotFetch{instance: f.instance, offset: len(f.buf)})
		return
	}
	n.fetching = nil
	n.install(&simSnapshot{instance: m.instance, epoch: m.epoch, master: m.master, state: f.buf, members: m.members})
}

// install replaces this node's state with a peer's snapshot, if it is
// ahead of what the node applied, and keeps it as the node's own (§5.5).
func (n *node) install(snap *simSnapshot) {
	if snap.instance <= n.applied {
		return
	}
	if err := n.kv.Restore(bytes.NewReader(snap.state)); err != nil {
		n.s.fail(ErrSafety, ErrRestore, "%s: install of a snapshot at %d: %v", n.name(), snap.instance, err)
		return
	}
	n.s.check.installed(n, snap.instance)
	if n.s.err != nil {
		return
	}
	if n.s.trace != nil {
		n.s.tracef("%s INSTALL snapshot at %d (applied was %d)", n.name(), snap.instance, n.applied)
	}
	n.epochs.Reset(snap.epoch, snap.master)
	if snap.members != nil {
		n.members, n.membersAt = snap.members, snap.instance
		n.proposerOut(n.p.MembershipApplied(n.members, snap.instance, n.now()))
		n.l.SetPeers(memberIDs(n.members))
	}
	n.applied = snap.instance
	n.snapshot = snap
	n.hadSnapshot = true
	n.s.installs++
	n.checkpoint(snap.instance)
	out := n.l.InstallSnapshot(snap.instance, n.now())
	n.proposerOut(n.p.LearnerApplied(n.l.Contiguous(), n.now()))
	n.learnerOut(out)
}

// receive hands one message to the role that takes it.
func (n *node) receive(from uint32, msg any) {
	now := n.now()
	switch m := msg.(type) {
	case *messages.Prepare:
		n.acceptorOut(n.a.HandlePrepare(m, now))
	case *messages.Accept:
		n.acceptorOut(n.a.HandleAccept(m, now))
	case *messages.Chosen:
		n.learnerOut(n.l.HandleChosen(m, now))
	case *messages.CatchupRequest:
		n.learnerOut(n.l.HandleCatchupRequest(m))
	case *messages.CatchupResponse:
		n.learnerOut(n.l.HandleCatchupResponse(m, now))
	case *snapshotFetch:
		n.serveChunk(from, m)
	case *snapshotChunk:
		n.takeChunk(from, m)
	case *messages.ChecksumReport:
		n.checkVerdict(n.tally.Record(m.Instance, m.From, m.Checksum))
	case *messages.Confirm:
		n.acceptorOut(n.a.HandleConfirm(m))
	case *messages.Promise, *messages.Accepted, *messages.Heartbeat, *messages.Confirmed:
		n.proposerOut(n.p.Step(m.(proto.Message), now))
	case *clientRequest:
		if m.read != readLog {
			n.read(m)
			return
		}
		cmd := &messages.Command{Origin: n.id, ReplyAddress: replyAddress,
			ReplyId: strconv.FormatUint(uint64(m.client), 10), RequestId: m.reqID, Payload: m.payload}
		n.proposerOut(n.p.Submit(cmd))
	default:
		panic(fmt.Sprintf("sim: %s got a %T", n.name(), msg))
	}
}

// acceptorOut is the acceptor shell: persist, then reply and hand the
// accepted entries to the local learner. A reply with nothing to persist
// still waits while earlier records are unsynced (actors.Replica.persist).
func (n *node) acceptorOut(out paxos.AcceptorOutput) {
	if out.Proven {
		n.diskFresh, n.diskBootstrap = false, n.a.Bootstrap()
		if n.p != nil {
			n.p.AcceptorProven()
		}
	}
	n.s.check.decided(n, out.Reply)
	if n.s.err != nil {
		return
	}
	if out.Lazy { // a lazy accept: records ride on a later fsync, no reply
		if len(out.Records) > 0 {
			n.append(out.Records, false)
		}
		if len(out.Learn) > 0 {
			n.learnerOut(n.l.HandleLearn(out.Learn))
		}
		return
	}
	if len(out.Records) > 0 {
		n.append(out.Records, true)
	}
	release := func() {
		if out.Reply != nil {
			n.s.check.released(n, out.Reply)
			if n.s.err != nil {
				return
			}
			n.send(out.Reply.To, out.Reply.Msg)
		}
		if len(out.Learn) > 0 {
			n.learnerOut(n.l.HandleLearn(out.Learn))
		}
	}
	if n.s.cfg.Planted == paxos.BugReplyBeforePersist || (len(out.Records) == 0 && len(n.disk.waiters) == 0) {
		release()
		return
	}
	n.disk.waiters = append(n.disk.waiters, waiter{target: len(n.disk.log), fn: release})
	n.startSync()
}

// learnerOut is the learner shell: lazy records, messages, then apply in
// order and answer the clients whose commands this node proposed.
func (n *node) learnerOut(out paxos.LearnerOutput) {
	if out.Violation != nil {
		n.s.fail(ErrSafety, ErrTwoValuesChosen, "%s: %v", n.name(), out.Violation)
		return
	}
	if len(out.Records) > 0 {
		n.append(out.Records, false)
	}
	if o := out.Install; o != nil && o.Instance > n.applied {
		n.startFetch(o.From, o.Instance)
	}
	for _, env := range out.Messages {
		n.send(env.To, env.Msg)
	}
	if len(out.Apply) == 0 {
		return
	}
	for _, e := range out.Apply {
		if !n.apply(e, true) {
			return
		}
	}
	n.proposerOut(n.p.LearnerApplied(n.l.Contiguous(), n.now()))
}

// read is the lease manager shell (actors/lease.go): a lease read is served
// at once while the lease holds, otherwise (and for a quorum read) once the
// proposer has confirmed mastership with a majority.
func (n *node) read(m *clientRequest) {
	if !n.p.IsMaster() {
		n.send(m.client, &messages.ClientResponse{RequestId: m.reqID, Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER,
			MasterId: n.p.MasterID()})
		return
	}
	if _, ok := n.p.LeaseUntil(n.now()); ok && m.read == readLease {
		n.serveRead(m, true)
		return
	}
	n.readSeq++
	n.reads[n.readSeq] = m
	n.proposerOut(n.p.Read(n.readSeq, n.now()))
}

// serveRead answers a read from this node's database as it is now, after
// the checker has seen that it may.
func (n *node) serveRead(m *clientRequest, lease bool) {
	n.s.check.servedRead(n, lease)
	if n.s.err != nil {
		return
	}
	res, err := n.kv.Query(m.payload)
	if err != nil {
		panic(fmt.Sprintf("sim: query: %v", err))
	}
	n.send(m.client, &messages.ClientResponse{RequestId: m.reqID, Result: res, Instance: n.applied})
}

// apply checks one chosen entry against every other replica's, then runs
// its commands. It reports false once the run has failed.
func (n *node) apply(e *messages.Entry, reply bool) bool {
	if n.epochs.Enter(e) {
		epoch, _ := n.epochs.Epoch()
		n.kv.ObserveEpoch(epoch)
	}
	n.s.check.applied(n, e, &n.epochs)
	if n.s.err != nil {
		return false
	}
	n.applied = e.Instance
	if n.s.trace != nil {
		n.s.tracef("%s apply %d: %s", n.name(), e.Instance, describeValue(e.Value))
	}
	if e.Value.GetChecksum() {
		n.checksum(e.Instance)
	}
	if e.Value.GetNoop() {
		return true
	}
	for i, cmd := range e.Value.GetCommands() {
		admitted := n.epochs.Admits(cmd)
		var res []byte
		var err error
		switch {
		case admitted && cmd.Membership:
			n.applyMembership(e.Instance, cmd.Payload)
		case admitted && !(n.s.cfg.Planted == paxos.BugDivergentApply && n.id == 2 && cmd.Origin != n.id && i == 0 && e.Instance%5 == 0):
			res, err = n.kv.Apply(e.Instance, cmd.Payload)
		}
		if !reply || cmd.Origin != n.id || cmd.ReplyAddress != replyAddress {
			continue
		}
		to, perr := strconv.ParseUint(cmd.ReplyId, 10, 32)
		if perr != nil {
			panic(fmt.Sprintf("sim: reply id %q", cmd.ReplyId))
		}
		resp := &messages.ClientResponse{RequestId: cmd.RequestId, Result: res, Instance: e.Instance}
		switch {
		case !admitted:
			resp = paxos.MasterChanged(cmd, e.Instance)
		case err != nil:
			resp.Code, resp.Error = messages.ErrorCode_ERROR_CODE_INVALID, err.Error()
		default:
			n.s.check.acked(e.Instance)
		}
		n.send(uint32(to), resp)
	}
	return true
}

// proposerOut is the proposer shell: messages, client refusals (with the
// master hint filled in), and a flush once the "mailbox" has drained.
func (n *node) proposerOut(out paxos.ProposerOutput) {
	for _, env := range out.Messages {
		n.send(env.To, env.Msg)
	}
	if out.ReleaseLease && n.a != nil {
		n.a.ReleaseLease(n.id)
	}
	for _, rep := range out.Replies {
		if rep.Cmd.ReplyAddress != replyAddress {
			continue
		}
		to, err := strconv.ParseUint(rep.Cmd.ReplyId, 10, 32)
		if err != nil {
			panic(fmt.Sprintf("sim: reply id %q", rep.Cmd.ReplyId))
		}
		resp := rep.Response
		if resp.MasterId == 0 {
			resp.MasterId = n.p.MasterID()
		}
		n.send(uint32(to), resp)
	}
	for _, rd := range out.Reads {
		m := n.reads[rd.ID]
		if m == nil {
			panic(fmt.Sprintf("sim: %s: read %d answered twice", n.name(), rd.ID))
		}
		delete(n.reads, rd.ID)
		if rd.Code == messages.ErrorCode_ERROR_CODE_OK {
			n.serveRead(m, false)
			continue
		}
		n.send(m.client, &messages.ClientResponse{RequestId: m.reqID, Code: rd.Code, Error: rd.Err, MasterId: n.p.MasterID()})
	}
	if n.p.NeedsFlush() && !n.flushScheduled {
		n.flushScheduled = true
		n.s.sched.after(int64(flushDelay), n.guard(func() {
			n.flushScheduled = false
			n.proposerOut(n.p.Flush(n.now()))
		}))
	}
}

func (n *node) send(to uint32, msg any) {
	if n.s.trace != nil {
		n.s.tracef("%s -> %s %s", n.name(), endpointName(to), describe(msg))
	}
	n.s.net.send(n.id, to, msg)
}

// append adds records to the log; an eager append needs an fsync.
func (n *node) append(recs []*messages.Record, eager bool) {
	n.disk.log = append(n.disk.log, recs...)
	if eager {
		n.eagerMark = len(n.disk.log)
		n.startSync()
	}
}

// startSync begins a group-commit fsync of everything appended so far,
// unless one is running (its completion starts the next).
func (n *node) startSync() {
	d := n.disk
	if d.syncing >= 0 || (d.synced >= n.eagerMark && len(d.waiters) == 0) {
		return
	}
	target := len(d.log)
	d.syncing = target
	delay := int64(n.s.cfg.FsyncMin) + n.s.rng.Int64N(int64(n.s.cfg.FsyncMax-n.s.cfg.FsyncMin)+1)
	n.s.sched.after(delay, n.guard(func() { n.syncDone(target) }))
}

// syncDone makes the log durable up to target and releases, in order, the
// replies that waited for it.
func (n *node) syncDone(target int) {
	d := n.disk
	d.syncing = -1
	if n.s.trace != nil {
		n.s.tracef("%s fsync: %d records durable", n.name(), target)
	}
	old := d.synced
	d.synced = target
	n.fold(old, target)
	for len(d.waiters) > 0 && d.waiters[0].target <= d.synced && n.s.err == nil {
		w := d.waiters[0]
		d.waiters = d.waiters[1:]
		w.fn()
	}
	if n.s.err == nil {
		n.startSync()
	}
}

// fold adds newly durable records to the durable view and tells the
// checker which acceptances are now durable.
func (n *node) fold(from, to int) {
	for _, rec := range n.disk.log[from:to] {
		switch k := rec.Kind.(type) {
		case *messages.Record_Promise:
			n.durablePromised = max(n.durablePromised, k.Promise.Ballot)
		case *messages.Record_Accept:
			e := k.Accept
			n.durablePromised = max(n.durablePromised, e.Ballot)
			n.durableAccepted[e.Instance] = max(n.durableAccepted[e.Instance], e.Ballot)
			n.s.check.durablyAccepted(n, e)
		}
	}
}
