package core

import (
	"maps"
	"math"
	"time"

	"golang.org/x/time/rate"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// DropReason says why a peer message was refused before any role saw it.
// Status reports the counts (StatusResponse.PeerDrops), so do the metrics.
type DropReason string

const (
	// DropCluster: the message carries another group's cluster hash.
	DropCluster DropReason = "cluster"
	// DropNotMember: its sender is not a member of the membership this
	// replica applied, or claims to be this replica.
	DropNotMember DropReason = "not_member"
	// DropNotVoter: a checksum report from a member that does not vote;
	// only voters' states are compared (§6.2).
	DropNotVoter DropReason = "not_voter"
	// DropBallotOwner: a master's message (Prepare, Accept, Heartbeat,
	// Confirm, Chosen) or a PreVote whose ballot its sender does not own: ballot mod
	// BallotStride is the owner's id.
	DropBallotOwner DropReason = "ballot_owner"
	// DropBounds: a field out of its bounds: a ballot so near the top that
	// a higher one could not follow, an instance far beyond the chosen
	// log, an entry without an instance or a value.
	DropBounds DropReason = "bounds"
	// DropRate: a catch-up request over its sender's rate
	// (CatchupRequestsPerSecond).
	DropRate DropReason = "rate"
	// DropUnsolicited: a catch-up response from a peer this replica's
	// learner did not ask (catchupInBounds).
	DropUnsolicited DropReason = "unsolicited"
	// DropContradicts: a catch-up response whose entries contradict what
	// this replica knows a quorum chose or accepted (catchupInBounds): a
	// buggy, damaged or lying peer, never stepped, never a reason to stop.
	DropContradicts DropReason = "contradicts"
)

// CatchupRequestsPerSecond bounds the catch-up requests a replica serves
// each member, and all non-members together, with bursts of as many. A
// replica catching up asks for its next chunk as each arrives, so this
// still lets one learn up to 200 × MaxCatchupEntries instances a second;
// a flood costs at most that many bounded answers.
const CatchupRequestsPerSecond = 200

// MaxInstanceAhead bounds how far beyond the chosen log, as this replica
// knows it, a peer may place an instance. An honest master proposes
// within its pipeline window of what it has chosen, and tells every
// replica its chosen log in each heartbeat; a replica further behind
// catches up first. Without a bound, one Accept for instance 2^50 would
// leave a replica "behind" for ever.
const MaxInstanceAhead = 1 << 16

// maxLeaseRemainingUs bounds the lease time a Promise reports: no lease
// is configured anywhere near it.
const maxLeaseRemainingUs = 10 * 60 * 1_000_000

// admit says why a message from the network must not be stepped ("" if it
// may). The checks come before any role sees the message, so a refused
// one changes nothing; the roles keep their own checks of protocol state.
func (r *Replica) admit(msg proto.Message, now time.Time) DropReason {
	pm, ok := msg.(messages.PeerMessage)
	if !ok {
		return "" // not a peer message: step ignores it
	}
	if pm.GetCluster() != r.cfg.Cluster {
		return DropCluster
	}
	from := pm.GetFrom()
	member := paxos.MemberOf(r.members, from)
	if _, ask := msg.(*messages.CatchupRequest); ask && from != r.id && from != 0 {
		// Served to any node of this cluster: a joining node catches up
		// before the change that adds it is applied here, and a removed
		// one learns the change that removed it. Answering changes
		// nothing here, its size is bounded (MaxCatchupEntries and
		// MaxCatchupBytes), and so is its rate.
		if !r.catchupLimiter(from, member != nil).AllowN(now, 1) {
			return DropRate
		}
		return ""
	}
	if member == nil && r.p != nil {
		// The proposer works with the configuration at its frontier,
		// which may add members this replica has not applied yet.
		member = paxos.MemberOf(r.p.Members(), from)
	}
	if from == r.id || member == nil {
		return DropNotMember
	}
	owns := func(ballot uint64) DropReason {
		switch {
		case ballot > paxos.MaxBallot:
			return DropBounds
		case paxos.BallotOwner(ballot) != from:
			return DropBallotOwner
		}
		return ""
	}
	switch m := msg.(type) {
	case *messages.Prepare:
		if m.HandoverBallot > paxos.MaxBallot || m.HandoverBallot >= max(m.Ballot, 1) && m.HandoverBallot != 0 {
			return DropBounds // a handover is of a lower ballot than the successor's
		}
		return owns(m.Ballot)
	case *messages.Handover:
		if m.ChosenUpto > max(r.l.KnownChosen(), r.p.ChosenUpto(), r.applied)+MaxInstanceAhead {
			return DropBounds
		}
		return owns(m.Ballot)
	case *messages.Accept:
		if why := owns(m.Ballot); why != "" {
			return why
		}
		return r.entriesInBounds(m.Entries, true)
	case *messages.Heartbeat:
		return owns(m.Ballot)
	case *messages.PreVote:
		return owns(m.Ballot) // the ballot it would campaign with
	case *messages.PreVoted:
		if ballotsAbove(m.Ballot, m.Highest) {
			return DropBounds
		}
	case *messages.Confirm:
		return owns(m.Ballot)
	case *messages.Chosen:
		return owns(m.Ballot)
	case *messages.Promise:
		if ballotsAbove(m.Ballot, m.Promised, m.Prior) || m.LeaseRemainingUs > maxLeaseRemainingUs {
			return DropBounds
		}
		if why := r.entriesInBounds(m.Accepted, false); why != "" {
			return why
		}
		return promisePageInBounds(m)
	case *messages.Accepted:
		if ballotsAbove(m.Ballot, m.Promised) {
			return DropBounds
		}
	case *messages.Confirmed:
		if ballotsAbove(m.Ballot, m.Promised) {
			return DropBounds
		}
	case *messages.CatchupResponse:
		if why := r.entriesInBounds(m.Entries, false); why != "" {
			return why
		}
		return r.catchupInBounds(m)
	case *messages.ChecksumReport:
		if member.Role == paxos.LearnerRole {
			return DropNotVoter
		}
	}
	return ""
}

// catchupLimiter returns the rate limit of catch-up requests from node
// from: its own for a member, one shared by every non-member (so that
// forged ids cannot grow the table).
func (r *Replica) catchupLimiter(from uint32, member bool) *rate.Limiter {
	if !member {
		from = 0
	}
	l := r.catchupLimits[from]
	if l == nil {
		if r.catchupLimits == nil || len(r.catchupLimits) > 2*len(r.members.GetMembers())+1 {
			r.catchupLimits = make(map[uint32]*rate.Limiter) // members come and go: start over
		}
		l = rate.NewLimiter(CatchupRequestsPerSecond, CatchupRequestsPerSecond)
		r.catchupLimits[from] = l
	}
	return l
}

// ballotsAbove reports whether any of the ballots is above paxos.MaxBallot.
func ballotsAbove(ballots ...uint64) bool {
	for _, b := range ballots {
		if b > paxos.MaxBallot {
			return true
		}
	}
	return false
}

// entriesInBounds checks entries a peer sent: each names an instance and
// carries a value under a ballot in bounds; for an Accept (ahead), none
// lies more than MaxInstanceAhead beyond the chosen log as known here.
func (r *Replica) entriesInBounds(entries []*messages.Entry, ahead bool) DropReason {
	limit := uint64(math.MaxUint64)
	if ahead {
		limit = max(r.l.KnownChosen(), r.p.ChosenUpto(), r.applied) + MaxInstanceAhead
	}
	for _, e := range entries {
		if e == nil || e.Instance == 0 || e.Value == nil || e.Ballot > paxos.MaxBallot || e.Instance > limit {
			return DropBounds
		}
	}
	return ""
}

// catchupInBounds checks a catch-up response against what this replica
// asked and what it knows. The learner applies a response's entries as
// chosen, so a response must answer a request (the learner counts those
// it sent per peer), list each instance once, in order and without gaps
// (HandleCatchupRequest serves the chosen log contiguously), none beyond
// the chosen prefix the response itself claims, and contradict nothing
// this replica holds as evidence of a quorum's choice: a value its learner
// knows chosen, or one its acceptor accepted under the same ballot (a
// ballot proposes one value per instance, so a chosen entry of that ballot
// has that value). Entries of instances it holds no evidence of pass
// here, and the learner takes them as chosen only on the word of the
// master it follows or of enough peers agreeing (paxos.Learner.confirmedBy).
func (r *Replica) catchupInBounds(m *messages.CatchupResponse) DropReason {
	if !r.l.Asked(m.From) {
		return DropUnsolicited
	}
	prev := uint64(0)
	for _, e := range m.Entries {
		if e.Instance > m.ChosenUpto || (prev != 0 && e.Instance != prev+1) {
			return DropBounds
		}
		prev = e.Instance
		if r.l.Contradicts(e) {
			return DropContradicts
		}
	}
	return ""
}

// promisePageInBounds checks the page a Promise claims to be: a page
// that stops (accepted_upto) says where it began, ends at or after that,
// and lists each instance once, in order, within [first_instance,
// accepted_upto]. The candidate asks for the next page from accepted_upto
// + 1, so a page that ended before it began would have it ask backwards,
// and one that listed entries outside its range would report instances
// it does not claim to cover.
func promisePageInBounds(m *messages.Promise) DropReason {
	first, upto := m.FirstInstance, m.AcceptedUpto
	if upto != 0 && (first == 0 || upto < first) {
		return DropBounds
	}
	if upto == 0 {
		upto = math.MaxUint64
	}
	prev := uint64(0)
	for _, e := range m.Accepted {
		if e.Instance < first || e.Instance > upto || e.Instance <= prev {
			return DropBounds
		}
		prev = e.Instance
	}
	return ""
}

// dropLogEvery bounds how often drops of one reason are logged: a
// misconfigured or hostile peer must not flood the node's log.
const dropLogEvery = 10 * time.Second

// dropped counts a refused message and, now and then, says why in the
// log: a node of another cluster or outside the membership is most often
// a configuration mistake (--peers or --cluster-id that differ), which the
// operator must hear of.
func (r *Replica) dropped(msg proto.Message, why DropReason, now time.Time) {
	if r.drops == nil {
		r.drops, r.droppedLogged = make(map[DropReason]uint64), make(map[DropReason]time.Time)
	}
	r.drops[why]++
	if last, ok := r.droppedLogged[why]; ok && now.Sub(last) < dropLogEvery {
		return
	}
	r.droppedLogged[why] = now
	from := msg.(messages.PeerMessage).GetFrom()
	kind := string(proto.MessageName(msg).Name())
	switch why {
	case DropCluster:
		r.cfg.Logger.Warn("dropped a message of another cluster: the sender's --cluster-id (by default derived from --peers) differs from this node's",
			"node", r.id, "from", from, "message", kind, "dropped", r.drops[why])
	case DropNotMember:
		r.cfg.Logger.Warn("dropped a message from a node that is not a member here (started with other --peers, removed, or not one of ours)",
			"node", r.id, "from", from, "message", kind, "members", memberIDs(r.members), "dropped", r.drops[why])
	case DropContradicts:
		r.cfg.Logger.Error("dropped a catch-up answer that contradicts what this replica knows was chosen: the sender's log is damaged or it lies; compare the nodes with 'livepaxos check'",
			"node", r.id, "from", from, "dropped", r.drops[why])
	default:
		r.cfg.Logger.Warn("dropped a peer message", "node", r.id, "from", from, "message", kind, "reason", string(why), "dropped", r.drops[why])
	}
}

// PeerDrops returns how many peer messages were refused, by reason.
func (r *Replica) PeerDrops() map[DropReason]uint64 { return maps.Clone(r.drops) }
