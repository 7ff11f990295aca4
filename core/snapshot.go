package core

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// snapState is the snapshot side (§5.5): the newest durable snapshot, the
// one being taken, who asked, and where the log stood at the last one.
type snapState struct {
	latest     uint64 // instance of the newest durable snapshot (0: none)
	taking     bool
	waiters    []uint64 // asked before the one being taken began
	next       []uint64 // asked while one was being taken: answered by the next
	logBytesAt uint64   // logBytes when the last snapshot began
	snapshots  uint64   // snapshots attempted
	installs   uint64   // snapshots installed from a peer
	// failures counts the policy's snapshots that failed in a row; the
	// policy tries again no sooner than retryAt (back-off).
	failures int
	retryAt  time.Time
}

// Snapshot retries back off from snapshotRetryMin, doubling up to
// snapshotRetryMax: a disk that refuses snapshots (full, read-only) is not
// asked again a hundred times a second.
const (
	snapshotRetryMin = time.Second
	snapshotRetryMax = 5 * time.Minute
)

// SnapshotJob asks the shell to snapshot the state machine now, between
// two instances: BeginSnapshot there (after Ready.Apply), describe the
// state with SnapshotMeta for the instance the state machine names (0:
// Instance), write it durably, and report with SnapshotWritten.
type SnapshotJob struct {
	// Instance is the last instance applied: the state is as of it.
	Instance uint64
}

// SnapshotResult reports a snapshot written (or not).
type SnapshotResult struct {
	Instance uint64
	Bytes    uint64
	Took     time.Duration
	Err      error
}

// Answer is an answer to a client's request other than a command or a
// read: a consistency check or a snapshot asked for.
type Answer struct {
	ID  uint64
	Msg proto.Message // *messages.CheckResponse or *messages.SnapshotResponse
}

// mark records what changed at an instance: the epoch (epochSet), or the
// membership (members non-nil), as of right after it.
type mark struct {
	instance uint64
	epochSet bool
	epoch    uint64
	master   uint32
	members  *messages.Membership
}

// remember adds m to the history of changes since the last snapshot.
func (r *Replica) remember(m mark) { r.history = append(r.history, m) }

// ErrSnapshot reports a snapshot that cannot be taken or described.
var ErrSnapshot = errors.New("core: snapshot failed")

// SnapshotMeta describes the replicated state as of instance, which must
// be at or after the newest snapshot's and at or before what was applied:
// the epoch and the membership in force there (the snapshot's handle).
func (r *Replica) SnapshotMeta(instance uint64) (*messages.SnapshotMeta, error) {
	if instance > r.applied || instance < r.history[0].instance {
		return nil, fmt.Errorf("%w: the state machine's snapshot is as of instance %d; this replica can describe %d to %d",
			ErrSnapshot, instance, r.history[0].instance, r.applied)
	}
	meta := &messages.SnapshotMeta{Instance: instance}
	var members *messages.Membership
	for _, m := range r.history {
		if m.instance > instance {
			break
		}
		if m.epochSet {
			meta.Epoch, meta.EpochMaster = m.epoch, m.master
		}
		if m.members != nil {
			members = m.members
		}
	}
	meta.Members, meta.MembershipVersion = sortedMembers(members), members.GetVersion()
	return meta, nil
}

// maybeSnapshot is the snapshot policy: a snapshot once SnapshotEvery
// instances were applied, or SnapshotLogBytes written to the log, since
// the last one, so that a busy replica's disk and memory stay bounded.
func (r *Replica) maybeSnapshot(now time.Time) {
	if !r.cfg.CanSnapshot || r.snap.taking || r.applied <= r.snap.latest || now.Before(r.snap.retryAt) {
		return
	}
	// The replicas of a group see the same log, so the same thresholds
	// would have them all snapshot at once, slowing every member of the
	// master's quorum together: each node's thresholds are stretched by
	// up to 25% according to its id, so their snapshots take turns.
	stretch := func(v int64) uint64 { return uint64(v) + uint64(v)/12*uint64((r.id-1)%4) }
	every, limit := r.cfg.SnapshotEvery, r.cfg.SnapshotLogBytes
	if (every > 0 && r.applied-r.snap.latest >= stretch(every)) || (limit > 0 && r.logBytes-r.snap.logBytesAt >= stretch(limit)) {
		r.beginSnapshot()
	}
}

// RequestSnapshot has the replica snapshot now (§5.5) and answer id (in
// Ready.Answers) once the snapshot is durable, or why not.
func (r *Replica) RequestSnapshot(id uint64, now time.Time) {
	if r.stopped || r.p == nil {
		r.answerSnapshot([]uint64{id}, &messages.SnapshotResponse{NodeId: r.id, Error: "replica stopped"})
		return
	}
	r.input(now, func() {
		if r.snap.taking {
			// The one being written began before this request: answer with
			// the next.
			r.snap.next = append(r.snap.next, id)
			return
		}
		r.snap.waiters = append(r.snap.waiters, id)
		switch {
		case !r.cfg.CanSnapshot:
			r.answerSnapshot(r.takeWaiters(), &messages.SnapshotResponse{NodeId: r.id, Error: "the state machine cannot snapshot"})
		case r.applied <= r.snap.latest:
			// Nothing applied since the last one: it is the answer.
			r.answerSnapshot(r.takeWaiters(), &messages.SnapshotResponse{NodeId: r.id, Instance: r.snap.latest})
		default:
			r.beginSnapshot()
		}
	})
}

func (r *Replica) beginSnapshot() {
	r.snap.taking = true
	r.snap.logBytesAt = r.logBytes
	r.snap.snapshots++
	r.rd.Snapshot = &SnapshotJob{Instance: r.applied}
	// The checkpoint that follows the snapshot then keeps what is logged
	// from here on instead of writing it again (paxos.Acceptor.MarkLog).
	r.a.MarkLog()
	r.rd.Writes = append(r.rd.Writes, Write{Mode: WriteMark, Upto: r.handed})
}

func (r *Replica) takeWaiters() []uint64 {
	w := r.snap.waiters
	r.snap.waiters = nil
	return w
}

func (r *Replica) answerSnapshot(ids []uint64, resp *messages.SnapshotResponse) {
	for _, id := range ids {
		r.rd.Answers = append(r.rd.Answers, Answer{ID: id, Msg: proto.Clone(resp)})
	}
}

// SnapshotWritten reports the snapshot of a SnapshotJob: durable (and
// verified) as of res.Instance, or failed. A durable one lets go of the
// log up to it (§5.5); a failed one lets go of nothing.
func (r *Replica) SnapshotWritten(res SnapshotResult, now time.Time) {
	r.input(now, func() {
		r.snap.taking = false
		resp := &messages.SnapshotResponse{NodeId: r.id, DurationUs: res.Took.Microseconds()}
		if res.Err != nil {
			resp.Error = res.Err.Error()
			wait := min(snapshotRetryMin<<min(r.snap.failures, 20), snapshotRetryMax)
			r.snap.failures++
			r.snap.retryAt = now.Add(wait)
			r.cfg.Logger.Warn("snapshot failed", "node", r.id, "err", res.Err, "failures", r.snap.failures, "retry_in", wait)
		} else {
			r.snap.failures, r.snap.retryAt = 0, time.Time{}
			resp.Instance, resp.Bytes = res.Instance, res.Bytes
			r.snapshotTaken(res.Instance)
			r.cfg.Logger.Info("snapshot taken", "node", r.id, "instance", res.Instance, "bytes", res.Bytes, "took", res.Took)
		}
		r.answerSnapshot(r.takeWaiters(), resp)
		if len(r.snap.next) > 0 {
			r.snap.waiters, r.snap.next = r.snap.next, nil
			if r.applied <= r.snap.latest {
				r.answerSnapshot(r.takeWaiters(), &messages.SnapshotResponse{NodeId: r.id, Instance: r.snap.latest})
			} else {
				r.beginSnapshot()
			}
		}
	})
}

// snapshotTaken records a durable snapshot as of instance: the learner
// lets go of the entries up to it (peers that need them are offered the
// snapshot) and the acceptor of its log (a checkpoint).
func (r *Replica) snapshotTaken(instance uint64) {
	if instance <= r.snap.latest {
		return
	}
	r.snap.latest = instance
	r.l.SnapshotTaken(instance)
	r.checkpoint(r.l.SnapshotInstance())
	r.forgetBefore(instance)
}

// forgetBefore drops the history a snapshot as of instance makes useless:
// what changed before it, but the last change of each kind.
func (r *Replica) forgetBefore(instance uint64) {
	meta, err := r.SnapshotMeta(instance)
	if err != nil {
		return
	}
	kept := []mark{{instance: instance, epochSet: true, epoch: meta.Epoch, master: meta.EpochMaster,
		members: r.membersAsOf(instance)}}
	for _, m := range r.history {
		if m.instance > instance {
			kept = append(kept, m)
		}
	}
	r.history = kept
}

// membersAsOf returns the membership in force right after instance, which
// the history covers.
func (r *Replica) membersAsOf(instance uint64) *messages.Membership {
	var members *messages.Membership
	for _, m := range r.history {
		if m.instance <= instance && m.members != nil {
			members = m.members
		}
	}
	return members
}

// checkpoint lets the acceptor go of its log up to upto, which a durable
// snapshot covers: its checkpoint is written, and once it is durable the
// older segments are deleted.
func (r *Replica) checkpoint(upto uint64) {
	if upto <= r.a.Truncated() {
		return
	}
	r.write(r.a.Truncate(upto), WriteCheckpoint)
	r.checkpointUpto, r.checkpointAt = upto, r.handed
}

// RestoreSnapshot tells a replica, before its log is replayed, that the
// state machine was restored from its snapshot described by meta.
func (r *Replica) RestoreSnapshot(meta *messages.SnapshotMeta) {
	r.l.RestoreSnapshot(meta.Instance)
	r.restoreMeta(meta)
	r.snap.latest = meta.Instance
}

// restoreMeta takes the epoch and the membership from a snapshot's handle
// (snapshots from before membership versions carry none).
func (r *Replica) restoreMeta(meta *messages.SnapshotMeta) {
	r.epochs.Reset(meta.Epoch, meta.EpochMaster)
	r.applied = max(r.applied, meta.Instance)
	members := r.members
	if meta.MembershipVersion != 0 {
		members = &messages.Membership{Version: meta.MembershipVersion, Members: meta.Members}
		r.members, r.membersAt = members, meta.Instance
	}
	r.history = []mark{{instance: meta.Instance, epochSet: true, epoch: meta.Epoch, master: meta.EpochMaster, members: members}}
}

// ErrSnapshotHandle: a peer's snapshot carries a handle this replica
// cannot have come to; it is refused before its state replaces anything.
var ErrSnapshotHandle = errors.New("core: snapshot handle refused")

// CheckInstallHandle decides whether a peer's snapshot with handle meta
// may replace this replica's state (§5.5): a configuration in it must be
// well formed and no older than the one applied here (a group's
// configurations only move forward, so a snapshot ahead of this replica
// carries one at least as new, and the same version is the same
// configuration), and its epoch no older than this replica's. A buggy or
// compromised peer's snapshot that fails this changes nothing.
func (r *Replica) CheckInstallHandle(meta *messages.SnapshotMeta) error {
	if epoch, _ := r.epochs.Epoch(); meta.Epoch < epoch {
		return fmt.Errorf("%w: epoch %d, older than %d here", ErrSnapshotHandle, meta.Epoch, epoch)
	}
	if meta.MembershipVersion == 0 {
		return nil // from before membership versions: it carries none
	}
	m := &messages.Membership{Version: meta.MembershipVersion, Members: meta.Members}
	if err := paxos.CheckMembershipWellFormed(m); err != nil {
		return fmt.Errorf("%w: %w", ErrSnapshotHandle, err)
	}
	switch cur := r.members.GetVersion(); {
	case m.Version < cur:
		return fmt.Errorf("%w: configuration version %d, older than %d applied here", ErrSnapshotHandle, m.Version, cur)
	case m.Version == cur && !sameMembers(m.Members, r.members.GetMembers()):
		return fmt.Errorf("%w: configuration version %d differs from the one applied here", ErrSnapshotHandle, cur)
	}
	return nil
}

// sameMembers reports whether a and b list the same members, in any order.
func sameMembers(a, b []*messages.Member) bool {
	if len(a) != len(b) {
		return false
	}
	for _, m := range a {
		if !proto.Equal(m, paxos.MemberOf(&messages.Membership{Members: b}, m.Id)) {
			return false
		}
	}
	return true
}

// InstallWanted reports whether a snapshot as of instance is ahead of
// this replica: the shell restores its state machine from it only then,
// and then calls Installed.
func (r *Replica) InstallWanted(instance uint64) bool { return !r.stopped && instance > r.applied }

// Installed moves the replica past a peer's snapshot the shell installed
// into the state machine (§5.5): everything up to meta.Instance is
// applied, and the instances after it are learned as usual.
func (r *Replica) Installed(meta *messages.SnapshotMeta, now time.Time) {
	r.input(now, func() {
		if meta.Instance <= r.applied {
			return
		}
		r.restoreMeta(meta)
		if meta.MembershipVersion != 0 {
			r.setMembers(r.members, meta.Instance, now)
		}
		r.snap.installs++
		r.snap.latest = max(r.snap.latest, meta.Instance)
		r.cfg.Logger.Info("snapshot installed", "node", r.id, "instance", meta.Instance)
		out := r.l.InstallSnapshot(meta.Instance, now)
		r.proposerOut(r.p.LearnerApplied(r.l.Contiguous(), now), now)
		r.checkpoint(meta.Instance)
		r.learnerOut(out, now)
	})
}
