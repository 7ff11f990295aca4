package paxos

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// Handing mastership over (a restart, or an operator's transfer) without
// the outage of a fail-over. A fail-over costs an election timeout to
// notice the master is gone plus the rest of its lease, which every
// acceptor keeps refusing other candidates for (§5.2). A master that
// leaves on purpose can spare both, in three steps:
//
//  1. TransferMastership: it stops taking commands (refused as not master:
//     never proposed, safe to retry), refuses the reads waiting for it, and
//     stops serving lease reads: from this step on it reports no lease. The
//     shell publishes that view when the step ends.
//  2. A later Tick, once what it had in flight is chosen (or after
//     HandoverTimeout): it steps down and sends Handover to the successor,
//     naming its highest ballot. Its own acceptor drops the lease it
//     granted it at once.
//  3. The successor campaigns at once (no election timeout), its Prepare
//     naming that ballot (handover_ballot); an acceptor that granted the
//     old master a lease under that ballot or a lower one drops it, as the
//     old master has said it serves no read on it, so the successor's
//     phase 1 is not refused for a lease.
//
// The Handover leaves in a later step than the one that gave the lease up,
// so no view with the old lease is published after the Handover left. A
// shell serving lease reads from a published view off the replica's
// goroutine must check, after reading, that the view still holds the lease
// (see core.View.Decide and actors' ServeRead). If the successor never
// campaigns (it died), the others elect a master as after any fail-over,
// waiting out the old master's lease.

// ErrNoSuccessor: no voter can take mastership over (none other is known
// to be up, or the one asked for is not a voter).
var ErrNoSuccessor = errors.New("paxos: no voter to hand mastership to")

// handover is a mastership being handed over.
type handover struct {
	to       uint32 // the successor (0: the most caught-up voter, picked when it leaves)
	deadline time.Time
}

// HandoverTimeout bounds how long a master handing over waits for what it
// has in flight to be chosen before it leaves anyway (the successor's
// phase 1 then finishes those instances, and their clients, who never
// hear from the old master, are left not knowing the outcome). It is the
// longer of an election timeout and a lease: on a loaded machine a
// pipeline of accepts can take a few hundred milliseconds to be chosen.
func (c ProposerConfig) HandoverTimeout() time.Duration {
	return max(c.ElectionTimeoutMin, c.LeaseTimeout)
}

// TransferMastership starts handing mastership to voter to (0: the most
// caught-up voter). It fails if this proposer is not master, is handing
// over already, or to is not another voter.
func (p *Proposer) TransferMastership(to uint32, now time.Time) (ProposerOutput, error) {
	var out ProposerOutput
	p.lastNow = now
	switch {
	case p.state != stateMaster:
		return out, fmt.Errorf("%w: not master", ErrNoSuccessor)
	case p.handover != nil:
		return out, fmt.Errorf("%w: already handing over", ErrNoSuccessor)
	case to == p.cfg.ID:
		return out, fmt.Errorf("%w: node %d is master already", ErrNoSuccessor, to)
	case to != 0 && !p.isVoter(to):
		return out, fmt.Errorf("%w: node %d is not a voter", ErrNoSuccessor, to)
	case to == 0 && p.successor() == 0:
		return out, ErrNoSuccessor
	}
	p.handover = &handover{to: to, deadline: now.Add(p.cfg.HandoverTimeout())}
	// Nothing queued was proposed: refused, safe to retry elsewhere.
	for _, cmd := range p.queue {
		out.Replies = append(out.Replies, Reply{Cmd: cmd, Response: &messages.ClientResponse{
			RequestId: cmd.RequestId, Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER, Error: "master handing mastership over", MasterId: to}})
	}
	p.queue, p.queueBytes = nil, 0
	for _, rd := range p.reads {
		out.Reads = append(out.Reads, ReadResult{ID: rd.id, Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER, Err: "master handing mastership over"})
	}
	p.reads, p.roundSeq, p.roundWanted = nil, 0, false
	return out, nil
}

// HandingOver reports whether this master is handing mastership over.
func (p *Proposer) HandingOver() bool { return p.handover != nil }

// isVoter reports whether id votes in the configuration at the frontier.
func (p *Proposer) isVoter(id uint32) bool {
	for _, v := range p.voters {
		if v == id {
			return true
		}
	}
	return false
}

// successor is the voter most caught up with this mastership: the one
// whose acceptance of the latest send arrived (leaseAck: highest seq),
// then the one heard from last, then the lowest id; 0 if no other voter
// has accepted anything of this mastership.
func (p *Proposer) successor() uint32 {
	var best uint32
	for _, id := range p.voters {
		if id == p.cfg.ID || p.leaseAck[id] == 0 {
			continue
		}
		switch {
		case best == 0, p.leaseAck[id] > p.leaseAck[best],
			p.leaseAck[id] == p.leaseAck[best] && p.lastAck[id].After(p.lastAck[best]):
			best = id
		}
	}
	return best
}

// maybeHandOver is step 2, on a Tick of a master handing over.
func (p *Proposer) maybeHandOver(out *ProposerOutput, now time.Time) bool {
	h := p.handover
	if h == nil || (len(p.inflight) > 0 && now.Before(h.deadline)) {
		return false
	}
	to := h.to
	if to == 0 {
		to = p.successor()
	}
	ballot := max(p.ballot, p.boostBallot)
	if p.noticeDirty {
		// The learners hear what it saw chosen last, so the successor need
		// not propose it again.
		p.noticeDirty = false
		p.broadcast(out, func() proto.Message {
			return &messages.Chosen{From: p.cfg.ID, Ballot: p.ballot, ChosenUpto: p.noticeUpto}
		})
	}
	p.stepDown(out, now)
	// It serves no read on any lease it held (step 1): its own acceptor
	// lets go of the grant, as the others will on the successor's Prepare.
	out.ReleaseLease = true
	// It keeps out of the election it just caused, unless it drags on.
	p.HoldElection(now, p.cfg.LeaseTimeout)
	if to != 0 {
		out.Messages = append(out.Messages, Envelope{To: to, Msg: &messages.Handover{
			From: p.cfg.ID, Ballot: ballot, ChosenUpto: p.chosenUpto}})
	}
	return true
}

// Leave is what a node about to stop on purpose sends: every other member
// hears that it is leaving (onLeaving).
func (p *Proposer) Leave() ProposerOutput {
	var out ProposerOutput
	for _, id := range append(append([]uint32{}, p.voters...), p.learners...) {
		if id != p.cfg.ID {
			out.Messages = append(out.Messages, Envelope{To: id, Msg: &messages.Leaving{From: p.cfg.ID}})
		}
	}
	return out
}

// leavingFor is how long a master leaves a peer that said it is leaving
// out of its durable majority: long enough for it to stop; a restart takes
// longer, and it is asked again once it answers after that.
func (c ProposerConfig) leavingFor() time.Duration { return c.ElectionTimeoutMin }

// onLeaving: a peer is about to stop. A master no longer counts on it for
// durable acceptances, and sends what is in flight to every voter that has
// not acknowledged it, at once: the thrifty majority it picked may have
// been waiting on that peer.
func (p *Proposer) onLeaving(out *ProposerOutput, m *messages.Leaving, now time.Time) {
	if m.From == p.cfg.ID {
		return
	}
	p.leavingAt[m.From] = now
	if p.state != stateMaster || len(p.inflight) == 0 {
		return
	}
	for _, f := range p.inflight {
		f.sentAt = now.Add(-p.cfg.RetransmitInterval)
	}
	p.retransmit(out, now)
}

// leaving reports whether peer said it is leaving lately.
func (p *Proposer) leaving(peer uint32, now time.Time) bool {
	at, ok := p.leavingAt[peer]
	return ok && now.Sub(at) < p.cfg.leavingFor()
}

// onHandover is step 3, at the successor: campaign now, naming the ballot.
func (p *Proposer) onHandover(out *ProposerOutput, m *messages.Handover, now time.Time) {
	if m.Ballot < p.highestSeen || m.From == p.cfg.ID || p.state != stateFollower {
		return // from a master deposed since, or this node campaigns already
	}
	p.seen(m.Ballot)
	p.chosenUpto = max(p.chosenUpto, m.ChosenUpto)
	if p.applied < p.catchUpTo || !p.countsVote(p.appliedMembers, p.cfg.ID, p.cfg.Incarnation) || p.unproven() {
		return // it could not win: the others elect as after a fail-over
	}
	p.handoverBallot = m.Ballot
	p.campaign(out, now)
}
