package core

import (
	"time"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// Observer sees the replica's decisions as it makes them, before any of
// their I/O. Only tests set one: the simulator's checker holds every
// replica to invariants it computes on its own.
type Observer interface {
	// Answered: the acceptor decided this answer; its records are not
	// durable yet.
	Answered(reply paxos.Envelope)
	// Released: the acceptor's answer leaves (for a peer or this
	// replica's own proposer), its records durable.
	Released(reply paxos.Envelope)
	// Applying: an entry is handed to the apply side, in log order.
	Applying(a *Apply)
	// Checked: what a consistency check found at one instance (§6.2).
	Checked(v paxos.Verdict)
}

// catchUpStuckAfter is how long a replica may stay behind the chosen log
// before status flags it as stuck in catch-up.
const catchUpStuckAfter = 3 * time.Second

// Status returns what this replica knows of itself for status at now; the
// shell adds what only it knows (its addresses, its log's segments).
func (r *Replica) Status(now time.Time) *messages.StatusResponse {
	epoch, master := r.epochs.Epoch()
	s := &messages.StatusResponse{
		NodeId:            r.id,
		Epoch:             epoch,
		EpochMaster:       master,
		LastApplied:       r.applied,
		CheckedInstance:   r.checks.checkedInstance,
		Checks:            r.checks.checks,
		Divergence:        r.checks.divergence,
		CatchingUp:        !r.behindSince.IsZero() && now.Sub(r.behindSince) > catchUpStuckAfter,
		Role:              r.role(),
		MembershipVersion: r.members.GetVersion(),
		Members:           sortedMembers(r.members),
		SnapshotInstance:  r.snap.latest,
		LogTruncated:      r.truncated,
		Snapshots:         r.snap.snapshots,
		Installs:          r.snap.installs,
	}
	for why, n := range r.drops {
		if s.PeerDrops == nil {
			s.PeerDrops = make(map[string]uint64)
		}
		s.PeerDrops[string(why)] = n
	}
	if r.p == nil {
		return s
	}
	st := r.p.Stats()
	s.IsMaster = r.p.IsMaster() && !r.stopped
	s.MasterId, s.MasterAddress = r.p.MasterID(), r.Address(r.p.MasterID())
	s.Ballot, s.LastChosen = r.p.Ballot(), r.p.ChosenUpto()
	s.Boosts, s.BoostedInstances, s.ProposedInstances = st.Boosts, st.Boosted, st.Proposed
	if until, ok := r.p.LeaseUntil(now); ok {
		s.LeaseRemainingUs = until.Sub(now).Microseconds()
	}
	if r.p.IsMaster() {
		s.QueueLen, s.Inflight = uint64(r.p.QueueLen()), uint64(r.p.InflightLen())
	}
	return s
}

// Proposer-side facts, for tests and the simulator's end-of-run checks.

// IsMaster reports whether this replica is master and accepts writes.
func (r *Replica) IsMaster() bool { return r.p != nil && r.p.IsMaster() && !r.stopped }

// MasterID returns the master as this replica knows it (0: unknown).
func (r *Replica) MasterID() uint32 { return r.p.MasterID() }

// Ballot returns the ballot of this replica's mastership or campaign, or
// the highest it has seen when following.
func (r *Replica) Ballot() uint64 { return r.p.Ballot() }

// ChosenUpto returns the highest instance known chosen with all before it.
func (r *Replica) ChosenUpto() uint64 { return r.p.ChosenUpto() }

// LastApplied returns the last instance handed to the state machine.
func (r *Replica) LastApplied() uint64 { return r.applied }

// MasterEpoch returns this master's epoch (0: not master, or its epoch
// has not started).
func (r *Replica) MasterEpoch() uint64 { return r.p.Epoch() }

// LogEpoch returns the epoch in force as this replica applied the log,
// and the master that started it (§5.3).
func (r *Replica) LogEpoch() (epoch uint64, master uint32) { return r.epochs.Epoch() }

// InflightLen and QueueLen return the master's instances in phase 2 and
// commands waiting for one.
func (r *Replica) InflightLen() int { return r.p.InflightLen() }
func (r *Replica) QueueLen() int    { return r.p.QueueLen() }

// FrontierMembers returns the configuration at the proposer's frontier:
// after what it proposed as master, else what its learner applied.
func (r *Replica) FrontierMembers() *messages.Membership { return r.p.Members() }

// Stats returns counters of this replica's masterships.
func (r *Replica) Stats() paxos.ProposerStats { return r.p.Stats() }

// LeaseUntil returns until when this master may serve reads alone, and
// whether that is after now.
func (r *Replica) LeaseUntil(now time.Time) (time.Time, bool) { return r.p.LeaseUntil(now) }

// Acceptor-side facts.

// Promised returns the highest ballot the acceptor promised.
func (r *Replica) Promised() uint64 { return r.a.Promised() }

// AcceptedAt returns the entry the acceptor accepted at instance, or nil.
func (r *Replica) AcceptedAt(instance uint64) *messages.Entry { return r.a.AcceptedAt(instance) }

// Fresh reports whether the acceptor still answers only requests that
// name its incarnation (§5.1).
func (r *Replica) Fresh() bool { return r.a.Fresh() }

// Truncated returns how far the log is let go of (durably).
func (r *Replica) Truncated() uint64 { return r.truncated }

// Learner-side facts.

// KnownChosen returns the highest instance known chosen anywhere.
func (r *Replica) KnownChosen() uint64 { return r.l.KnownChosen() }

// SnapshotInstance returns the instance of this replica's newest durable
// snapshot (0: none).
func (r *Replica) SnapshotInstance() uint64 { return r.snap.latest }

// LogBytes returns the bytes of records handed to the log since New.
func (r *Replica) LogBytes() uint64 { return r.logBytes }
