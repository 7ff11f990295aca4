package paxos

import (
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// Ballot boosts (§5.2): a master raises its ballot with a full phase 1
// now and then, or soon after a higher ballot shows, without ending its
// mastership unless the promises show it was interrupted.

// maybeBoost starts a ballot boost every BoostInterval, or soon after an
// acceptor reported a higher ballot than this master's; one that has not
// gathered a majority within an election timeout ends the mastership.
func (p *Proposer) maybeBoost(out *ProposerOutput, now time.Time) {
	if p.boosting {
		if now.Sub(p.boostAt) >= p.cfg.ElectionTimeoutMin {
			// Its own acceptor promised the boost's ballot, so it no
			// longer accepts this mastership's values: going on under the
			// old ballot would need every other voter of a three-node
			// group, and a membership change in flight blocks the next
			// boost, so the mastership could stall for good while it
			// still heard a majority (sim seed 34186 with a 300 ms
			// election timeout). A master that cannot finish a phase 1
			// within an election timeout steps down; the election
			// that follows runs a phase 1 of its own. With reprepareFrom
			// set the new voters did not answer either: without their
			// phase 1 this mastership cannot go on past the change.
			p.stepDown(out, now)
			p.resetElection(now)
		} else if now.Sub(p.preparedAt) >= p.cfg.RetransmitInterval {
			p.sendBoostPrepare(out, now)
		}
		return
	}
	due := now.Sub(p.boostAt) >= p.cfg.BoostInterval ||
		(p.highestSeen > p.ballot && now.Sub(p.boostAt) >= p.cfg.RetransmitInterval)
	if !due || p.changeAt != 0 || p.epochPending {
		return
	}
	// As a campaign does (see campaign), but never from below the
	// configuration in force: the instances before it are chosen, and the
	// new voters' promises say nothing about them.
	p.startBoost(out, now, max(p.applied+1, p.membersFrom))
}

// startBoost starts a phase 1 from instance from under a new ballot.
func (p *Proposer) startBoost(out *ProposerOutput, now time.Time, from uint64) {
	p.boosting = true
	p.boostAt = now
	p.boostBallot = NextBallot(max(p.highestSeen, p.ballot), p.cfg.ID)
	p.seen(p.boostBallot)
	p.startPhase1(from)
	p.sendBoostPrepare(out, now)
}
func (p *Proposer) sendBoostPrepare(out *ProposerOutput, now time.Time) {
	p.preparedAt = now
	for _, peer := range p.voters {
		if first := p.pageWanted(peer); first != 0 {
			out.Messages = append(out.Messages, p.boostPrepare(peer, first))
		}
	}
}

// boostPrepare asks peer for its promise of the boost's ballot, from
// instance first.
func (p *Proposer) boostPrepare(peer uint32, first uint64) Envelope {
	return Envelope{To: peer, Msg: &messages.Prepare{
		From: p.cfg.ID, Ballot: p.boostBallot, FirstInstance: first, ToIncarnation: p.toIncarnation(peer), Paged: true}}
}

// finishBoost completes a boost's phase 1 as becomeMaster does, except that
// an instance nobody reported keeps this master's own value in flight
// (it proposed it, under a lower ballot of its own, and nobody else can
// have proposed there since). Every instance still in flight moves to the
// new ballot; the mastership, its queue and its epoch go on.
//
// If the promises show that another proposer got further than this
// master's ballot meanwhile (a promise or acceptance above it), the
// mastership was interrupted: it ends, and a new one with a new epoch
// starts from these promises, as after an election.
func (p *Proposer) finishBoost(out *ProposerOutput, now time.Time) {
	if p.interrupted() {
		promises, best, ballot, from := p.promises, p.best, p.boostBallot, p.prepareFrom
		members, membersFrom := p.members, p.membersFrom // the promises were counted under these
		p.stepDown(out, now)
		p.state, p.ballot, p.promises, p.best, p.prepareFrom = stateCandidate, ballot, promises, best, from
		p.setMembers(members)
		p.membersFrom = membersFrom
		p.becomeMaster(out, now)
		return
	}
	best := p.best
	top := max(p.nextInstance-1, p.prepareFrom-1)
	for i := range best {
		top = max(top, i)
	}
	if p.noticeDirty { // let learners match what the old ballot chose
		p.noticeDirty = false
		p.broadcast(out, func() proto.Message {
			return &messages.Chosen{From: p.cfg.ID, Ballot: p.ballot, ChosenUpto: p.noticeUpto}
		})
	}
	old := p.inflight
	p.inflight = make(map[uint64]*inflight)
	p.ballot = p.boostBallot
	p.boosting, p.promises, p.best = false, nil, nil
	p.noticeUpto = p.prepareFrom - 1
	p.reprepareFrom = 0
	p.changeAt, p.changeNext = 0, nil
	entries := p.repropose(best, old, top, now)
	p.stats.Boosts++
	p.stats.Boosted += uint64(len(entries))
	clear(p.lastAck)
	if p.epochPending && p.changeAt == 0 {
		entries = append(entries, p.startEpoch(now))
	}
	if len(entries) > 0 {
		p.broadcastAccept(out, entries, nil, now)
	}
	p.heartbeatAt = now
	p.sendHeartbeats(out)
}

// interrupted reports whether a boost's promises show that this
// mastership cannot go on under its epoch: a ballot above its own was
// promised or accepted somewhere, or another master's epoch start was
// accepted after this epoch began. The last can come from a lower ballot:
// a rival elected just before this master proposed its own epoch start at
// an instance this master's phase 1 did not see; re-proposing it (the
// boost must, if it is the highest-ballot value reported) moves the log
// into the rival's epoch, and this master's commands would all be refused
// (sim seed 15125).
//
// The entries are judged as each page arrives (takePage: bestInterrupts),
// since only the highest-ballot entry per instance is kept.
func (p *Proposer) interrupted() bool {
	for _, pr := range p.promises {
		if pr.prior > p.ballot && pr.prior != p.boostBallot { // not a duplicate of this prepare
			return true
		}
	}
	return p.bestInterrupts
}

// interrupts reports whether an entry a boost's promise reported shows
// its mastership interrupted (see interrupted).
func (p *Proposer) interrupts(e *messages.Entry) bool {
	return e.Ballot > p.ballot || (e.Value.GetStartsEpoch() && e.Instance > p.epoch)
}
