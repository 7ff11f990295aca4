package paxos

import (
	"math"
	"time"

	"github.com/livepaxos/livepaxos/messages"
)

// Elections and phase 1 (§4): campaigning, promises, the brand-new-group
// poll (§5.1), becoming master with the re-proposals phase 1 found, the
// epoch start (§5.3), and heartbeats.

// pollFresh notes a fresh and empty voter's refusal of this campaign's
// prepare. When every voter of the first configuration (no incarnation
// recorded) has refused so, the group is brand new: no promise or
// acceptance was ever given, so none can have been lost with a disk, and
// the prepare is sent again naming each voter's incarnation, which they
// answer (§5.1). A replica that lost its disk never gets here: the others
// are not empty.
func (p *Proposer) pollFresh(out *ProposerOutput, m *messages.Promise, now time.Time) {
	if p.state != stateCandidate || m.Ballot != p.ballot || !m.Fresh || !m.Empty || p.prepareFrom != max(p.cfg.BootstrapFrom, 1) {
		return
	}
	if p.freshPoll == nil {
		p.freshPoll = make(map[uint32]uint64)
	}
	p.freshPoll[m.From] = m.Incarnation
	for _, id := range p.voters {
		if p.freshPoll[id] == 0 || MemberOf(p.members, id).Incarnation != 0 {
			return
		}
	}
	p.bootstrapIncs = p.freshPoll
	p.freshPoll = nil
	p.sendPrepare(out, now)
}

// adoptBootstrap takes a bootstrap set some acceptor recorded, if this
// proposer has none: the incarnations it names were every voter's when a
// poll found the group brand new. A replica that lost its disk since
// refuses requests naming its old incarnation, so naming them is safe.
func (p *Proposer) adoptBootstrap(set []*messages.Member) {
	if p.bootstrapIncs != nil || len(set) == 0 {
		return
	}
	p.bootstrapIncs = make(map[uint32]uint64, len(set))
	for _, m := range set {
		p.bootstrapIncs[m.Id] = m.Incarnation
	}
}

// bootstrapSet is bootstrapIncs as carried in a Prepare.
func (p *Proposer) bootstrapSet() []*messages.Member {
	if p.bootstrapIncs == nil {
		return nil
	}
	set := make([]*messages.Member, 0, len(p.bootstrapIncs))
	for _, id := range p.voters {
		if inc := p.bootstrapIncs[id]; inc != 0 {
			set = append(set, &messages.Member{Id: id, Incarnation: inc})
		}
	}
	return set
}
func (p *Proposer) resetElection(now time.Time) {
	span := p.cfg.ElectionTimeoutMax - p.cfg.ElectionTimeoutMin
	p.electionAt = now.Add(p.cfg.ElectionTimeoutMin + time.Duration(p.cfg.Rand.Int64N(int64(span))))
}

// HoldElection keeps a follower from campaigning for d more than its usual
// election timeout. A replica restarting with history uses it: the master's
// transport may need a moment to reconnect to it, and campaigning before
// the first heartbeat arrives would only depose a working master.
func (p *Proposer) HoldElection(now time.Time, d time.Duration) {
	p.resetElection(now.Add(d))
}

// startEpoch puts this mastership's first value of its own in flight: the
// no-op that starts its epoch (§5.3) at the next instance.
func (p *Proposer) startEpoch(now time.Time) *messages.Entry {
	p.epoch, p.epochPending = p.nextInstance, false
	return p.newInstance(&messages.Value{Noop: true, StartsEpoch: true, EpochMaster: p.cfg.ID}, now)
}

// skipApplied moves the start of the re-proposals past what the local
// learner applied since phase 1 began (a snapshot installed while it
// campaigned, say). Those instances are chosen and this node knows their
// values; re-proposing them gains nothing and can cost every write: its own
// acceptor, whose log the snapshot let go of there, acknowledges none of
// them, and with one other voter cut off the chosen prefix never passes
// them (sim seed 24766). Nothing was sent under this ballot there, so the
// Chosen notices, which start at prepareFrom, claim nothing about them.
// A configuration change among them would have stepped this candidate
// down (MembershipApplied), so the voters its promises counted still govern.
func (p *Proposer) skipApplied() {
	if p.applied >= p.prepareFrom {
		p.prepareFrom = p.applied + 1
	}
}

// reprepareCaughtUp starts this campaign's phase 1 again, under the same
// ballot, from after what the local learner applied, once that passes the
// point where a peer refused to promise because its log was let go of
// there (refusedBelow). It reports whether it did; the caller sends the
// Prepares. Without it the candidate asked from the same instance until
// its election timeout, refused each time, although its learner had
// installed the peer's snapshot meanwhile (sim seed 1231, no write for
// 3.05 s with the master cut off both ways). The promises taken so far are
// dropped: they answered for a phase 1 that began elsewhere.
func (p *Proposer) reprepareCaughtUp() bool {
	if p.refusedBelow == 0 || p.applied < p.refusedBelow {
		return false
	}
	p.startPhase1(max(p.applied, p.appliedMembersAt) + 1)
	p.freshPoll = nil
	return true
}

// repropose puts in flight, under the current ballot, every instance from
// prepareFrom to top: the value accepted under the highest ballot the
// promises report (best), else the one this master had in flight there
// (old, a boost's), else a no-op. It stops after the first value that
// changes how votes are counted (§5.4): the promises came from the
// configuration before it, and say nothing reliable about the instances
// after it; once it is chosen, phase 1 runs again with the new voters
// (changeChosen).
func (p *Proposer) repropose(best map[uint64]*messages.Entry, old map[uint64]*inflight, top uint64, now time.Time) []*messages.Entry {
	var entries []*messages.Entry
	p.nextInstance = p.prepareFrom
	for i := p.prepareFrom; i <= top; i++ {
		var v *messages.Value
		switch {
		case best[i] != nil && p.cfg.Planted != BugIgnorePromiseValues:
			v = best[i].Value
		case old[i] != nil:
			v = old[i].entry.Value
		default:
			v = &messages.Value{Noop: true}
		}
		e := &messages.Entry{Instance: i, Ballot: p.ballot, Value: v}
		p.inflight[i] = &inflight{entry: e, acks: make(map[uint32]bool), sentAt: now}
		entries = append(entries, e)
		p.nextInstance = i + 1
		if next := FoldMembership(p.members, v); next != p.members {
			if ChangesQuorum(p.members, next) {
				p.changeAt, p.changeNext = i, next
				break
			}
			p.setMembers(next) // learners only: no vote counts differently
		}
	}
	if p.changeAt == 0 {
		p.nextInstance = max(p.nextInstance, top+1)
	}
	return entries
}

func (p *Proposer) onHeartbeat(out *ProposerOutput, m *messages.Heartbeat, now time.Time) {
	if m.Resigned {
		p.onResigned(out, m, now)
		return
	}
	if m.Ballot < p.highestSeen || m.From == p.cfg.ID {
		return
	}
	p.seen(m.Ballot)
	if m.ToIncarnation != 0 && m.ToIncarnation != p.cfg.Incarnation {
		p.replacedSeen = true
	}
	if p.state != stateFollower && m.Ballot > p.ballot {
		p.stepDown(out, now)
	}
	if p.state == stateFollower {
		p.masterID = m.From
		p.heardAt = now
		p.prevoting, p.prevotes = false, nil // a master lives: follow it
		p.chosenUpto = max(p.chosenUpto, m.ChosenUpto)
		p.resetElection(now)
	}
}

// campaign starts phase 1 with a ballot above every ballot seen. One
// Prepare covers every instance from the first one the local learner has
// not applied. Not from chosenUpto: a heartbeat may report instances
// chosen whose values no live learner holds any more (their chosen marks
// are lazy records, lost in a crash) and whose master is gone; only a
// re-proposal under the new ballot makes them learnable again (sim seeds 705,
// 1509 and 1706 in TestRegressionSeeds).
func (p *Proposer) campaign(out *ProposerOutput, now time.Time) {
	p.ballot = NextBallot(max(p.highestSeen, p.ballot), p.cfg.ID)
	p.seen(p.ballot)
	p.state = stateCandidate
	p.masterID = 0
	p.prevoting, p.prevotes = false, nil
	p.startPhase1(max(p.applied, p.appliedMembersAt) + 1)
	p.freshPoll = nil
	p.setMembers(p.appliedMembers)
	p.membersFrom = p.appliedMembersAt + 1
	p.resetElection(now)
	p.sendPrepare(out, now)
}
func (p *Proposer) sendPrepare(out *ProposerOutput, now time.Time) {
	p.preparedAt = now
	p.prepareDue = now.Add(p.cfg.RetransmitInterval)
	for _, peer := range p.voters {
		if first := p.pageWanted(peer); first != 0 {
			out.Messages = append(out.Messages, p.prepare(peer, first))
		}
	}
}

// prepare asks peer for its promise of the campaign's ballot, from
// instance first.
func (p *Proposer) prepare(peer uint32, first uint64) Envelope {
	return Envelope{To: peer, Msg: &messages.Prepare{
		From: p.cfg.ID, Ballot: p.ballot, FirstInstance: first, ToIncarnation: p.toIncarnation(peer),
		Bootstrap: p.bootstrapSet(), HandoverBallot: p.handoverBallot, Paged: true}}
}
func (p *Proposer) onPromise(out *ProposerOutput, m *messages.Promise, now time.Time) {
	p.seen(m.Promised)
	p.noteIncarnation(m.From, m.Incarnation, m.Ok, m.Fresh, m.Ballot)
	if m.From != p.cfg.ID && p.toIncarnation(m.From) == 0 && (!m.Fresh || !m.Empty) && p.cfg.Fresh && !p.acceptorProven {
		// Not a brand-new group: this fresh node cannot win until the
		// group records its incarnation; campaigning would only raise the
		// others' promises and keep them from electing anyone.
		p.replacedSeen = true
		if p.state == stateCandidate && p.unproven() {
			p.stepDown(out, now)
			return
		}
	}
	if p.bootstrapIncs == nil && len(m.Bootstrap) > 0 && p.state == stateCandidate {
		p.adoptBootstrap(m.Bootstrap)
		p.sendPrepare(out, now) // again, naming the incarnations
	}
	if !m.Ok && m.From == p.cfg.ID && m.Truncated >= p.prepareFrom && p.state == stateCandidate && m.Ballot == p.ballot {
		// Its own acceptor let go of the log where this candidate's
		// learner still is (it lost a snapshot, say): it cannot win until
		// it has caught up, and campaigning meanwhile would only raise the
		// others' promises and keep them from electing anyone (sim seed
		// 1645). Its learner catches up on its own.
		p.catchUpTo = max(p.catchUpTo, m.Truncated)
		p.stepDown(out, now)
		p.resetElection(now)
		return
	}
	if !m.Ok && m.Truncated >= p.prepareFrom && p.state == stateCandidate && m.Ballot == p.ballot {
		// A peer let go of its log where this campaign begins: its promise
		// needs a phase 1 from after its snapshot, which this candidate
		// can ask for once its learner has caught up that far (the core
		// points the learner at this peer: Learner.NoteChosenAt).
		p.refusedBelow = max(p.refusedBelow, m.Truncated)
	}
	if !m.Ok && m.Fresh {
		p.pollFresh(out, m, now)
		return
	}
	if !m.Ok {
		// A refusal for a lease held elsewhere (m.Leased) is no reason to
		// step down: the prepare is retransmitted until the lease expires.
		if m.Promised > max(p.ballot, p.boostBallot) && p.state != stateFollower {
			p.stepDown(out, now)
			p.resetElection(now) // randomized back-off before trying again
		} else if m.Leased && p.state == stateCandidate && m.Ballot == p.ballot {
			if end := now.Add(time.Duration(m.LeaseRemainingUs) * time.Microsecond); end.Before(p.prepareDue) {
				p.prepareDue = end
			}
		}
		return
	}
	if !p.counts(m.From, m.Incarnation) {
		return
	}
	// A ballot is used only once its own acceptor's promise of it is on
	// disk: that promise is what makes a restarted proposer pick a higher
	// ballot. Without it, a crash before the promise was synced let the
	// proposer reuse the ballot with another value (sim seed 11653).
	switch {
	case p.state == stateCandidate && m.Ballot == p.ballot:
		if p.takePage(out, m, now) && p.phase1Done() {
			p.becomeMaster(out, now)
		}
	case p.state == stateMaster && p.boosting && m.Ballot == p.boostBallot:
		if p.takePage(out, m, now) && p.phase1Done() {
			p.finishBoost(out, now)
		}
	}
}

// becomeMaster finishes phase 1: for every instance from prepareFrom to the
// highest any promise reported, it re-proposes the value accepted under the
// highest ballot, and fills instances nobody reported with no-ops. From then
// on only phase 2 runs. Every promise it counted was complete (phase1.go):
// an instance nobody reported is one that no acceptor of a quorum accepted
// anything at.
//
// Its first value of its own, right after them, starts its epoch (§5.3).
// That value's acceptances also give it its first lease.
func (p *Proposer) becomeMaster(out *ProposerOutput, now time.Time) {
	p.skipApplied()
	best := p.best
	top := p.prepareFrom - 1
	for i := range best {
		top = max(top, i)
	}
	p.state = stateMaster
	p.masterID = p.cfg.ID
	p.promises, p.best, p.bestInterrupts = nil, nil, false
	p.handover, p.handoverBallot = nil, 0
	p.chosenUpto = max(p.chosenUpto, p.prepareFrom-1)
	p.noticeUpto = p.prepareFrom - 1
	p.changeAt, p.changeNext, p.reprepareFrom = 0, nil, 0
	entries := p.repropose(best, nil, top, now)
	if p.changeAt != 0 {
		// Its epoch starts once the change is chosen and phase 1 ran
		// with the new voters (finishBoost); no read or command before.
		p.epoch, p.epochPending = math.MaxUint64, true
	} else {
		entries = append(entries, p.startEpoch(now))
	}
	clear(p.lastAck)
	clear(p.leaseAck)
	clear(p.confirmAck)
	clear(p.heardAck)
	p.masterAt = now
	clear(p.truncatedAt)
	p.boosting, p.boostAt = false, now
	p.broadcastAccept(out, entries, nil, now)
	p.heartbeatAt = now
	p.sendHeartbeats(out)
}

// sendHeartbeats tells the other proposers this master lives, and probes
// the learners whose incarnation it has not heard (see learnerIncs).
func (p *Proposer) sendHeartbeats(out *ProposerOutput) {
	for _, l := range p.learners {
		if p.learnerIncs[l] == 0 {
			out.Messages = append(out.Messages, Envelope{To: l, Msg: &messages.Confirm{From: p.cfg.ID, Ballot: p.ballot}})
		}
	}
	for _, peer := range append(p.voters[:len(p.voters):len(p.voters)], p.learners...) {
		if peer != p.cfg.ID {
			out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Heartbeat{
				From: p.cfg.ID, Ballot: p.ballot, ChosenUpto: p.chosenUpto, ToIncarnation: p.toIncarnation(peer)}})
		}
	}
}
