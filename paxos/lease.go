package paxos

import (
	"time"

	"github.com/livepaxos/livepaxos/messages"
)

// Master leases and read confirmation (§5.2): the lease a master counts
// from the acknowledgements of what it sent, its renewal through the log,
// and quorum reads confirmed by a Confirm round.

// LeaseUntil returns until when this master may serve reads from its state
// machine without asking anyone (§5.2), measured on its own clock: a
// majority of acceptors granted it the lease for LeaseTimeout from when they
// received messages it sent at leaseStart, and it counts ClockDriftMax less.
// ok is false when it is not master, holds no lease, or has not yet applied
// its epoch's first instance (before that, its state may miss writes a
// previous master acknowledged).
func (p *Proposer) LeaseUntil(now time.Time) (until time.Time, ok bool) {
	if p.state != stateMaster || p.applied < p.epoch || p.handover != nil {
		return time.Time{}, false // a master handing over serves no lease read
	}
	start, ok := p.quorumSent(p.leaseAck)
	if !ok {
		return time.Time{}, false
	}
	until = start.Add(p.cfg.LeaseTimeout - p.cfg.ClockDriftMax)
	if now.Before(until) {
		// A read may be served on it: a step-down lets the acceptors
		// drop their grants early only once its clock is past this
		// (stepDown's ReleaseLease), even if by then it is no longer
		// serving (during a boost's new epoch, say).
		if until.After(p.leaseEnd) {
			p.leaseEnd = until
		}
		return until, true
	}
	return until, false
}

// nextSeq numbers a send made at now.
func (p *Proposer) nextSeq(now time.Time) uint64 {
	p.seq++
	p.sentAt[p.seq%seqWindow] = now
	return p.seq
}

// Read registers quorum read id: it may be served once a majority has
// confirmed, by answering a message sent after now, that no higher ballot
// was promised, and once this master applied its epoch's first instance.
// The answer comes in a later output's Reads (or this one's, refused).
func (p *Proposer) Read(id uint64, now time.Time) ProposerOutput {
	var out ProposerOutput
	switch {
	case p.state != stateMaster || p.handover != nil:
		out.Reads = append(out.Reads, ReadResult{ID: id, Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER, Err: "not master"})
		return out
	case len(p.reads) >= p.cfg.MaxReads:
		out.Reads = append(out.Reads, ReadResult{ID: id, Code: messages.ErrorCode_ERROR_CODE_OVERLOADED, Err: "too many reads waiting"})
		return out
	}
	p.reads = append(p.reads, pendingRead{id: id, need: p.seq + 1, at: now})
	if p.roundSeq == 0 {
		p.sendConfirm(&out, now)
	} else {
		p.roundWanted = true
	}
	return out
}

// sendConfirm starts a Confirm round.
func (p *Proposer) sendConfirm(out *ProposerOutput, now time.Time) {
	p.roundSeq, p.roundAt, p.roundWanted = p.nextSeq(now), now, false
	p.stats.ReadRound++
	for _, peer := range p.voters {
		out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Confirm{
			From: p.cfg.ID, Ballot: p.ballot, Seq: p.roundSeq, ToIncarnation: p.toIncarnation(peer)}})
	}
}

// releaseReads answers the reads a majority has confirmed, and starts the
// next round if reads wait for one.
func (p *Proposer) releaseReads(out *ProposerOutput, now time.Time) {
	if len(p.reads) == 0 || p.state != stateMaster || p.applied < p.epoch {
		return
	}
	confirmed := p.quorumSeq(p.confirmAck)
	if p.roundSeq != 0 && confirmed >= p.roundSeq {
		p.roundSeq = 0
	}
	kept := p.reads[:0]
	for _, r := range p.reads {
		if r.need <= confirmed {
			out.Reads = append(out.Reads, ReadResult{ID: r.id, Code: messages.ErrorCode_ERROR_CODE_OK})
		} else {
			kept = append(kept, r)
		}
	}
	clear(p.reads[len(kept):])
	p.reads = kept
	if len(p.reads) > 0 && p.roundSeq == 0 {
		p.sendConfirm(out, now)
	}
}

// expireReads refuses reads that waited too long, and resends a round
// whose answers may have been lost.
func (p *Proposer) expireReads(out *ProposerOutput, now time.Time) {
	kept := p.reads[:0]
	for _, r := range p.reads {
		if now.Sub(r.at) >= p.cfg.ReadTimeout {
			out.Reads = append(out.Reads, ReadResult{ID: r.id, Code: messages.ErrorCode_ERROR_CODE_UNAVAILABLE,
				Err: "mastership not confirmed in time"})
		} else {
			kept = append(kept, r)
		}
	}
	clear(p.reads[len(kept):])
	p.reads = kept
	if len(p.reads) > 0 && (p.roundSeq == 0 || now.Sub(p.roundAt) >= p.cfg.RetransmitInterval) {
		p.sendConfirm(out, now)
	}
}

// failReads refuses every waiting read: mastership ended.
func (p *Proposer) failReads(out *ProposerOutput) {
	for _, r := range p.reads {
		out.Reads = append(out.Reads, ReadResult{ID: r.id, Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER,
			Err: "master stepped down"})
	}
	p.reads, p.roundSeq, p.roundWanted = nil, 0, false
}

// maybeRenew proposes a heartbeat value when the master has sent no Accept
// for half a lease: the acceptances renew the lease through the log (§5.2).
func (p *Proposer) maybeRenew(out *ProposerOutput, now time.Time) {
	if !p.proposing() || len(p.inflight) > 0 || len(p.queue) > 0 || p.pendingChange != nil || now.Sub(p.lastSendAt) < p.cfg.LeaseTimeout/2 {
		return
	}
	p.stats.Renewals++
	p.broadcastAccept(out, []*messages.Entry{p.newInstance(&messages.Value{Noop: true}, now)}, p.durableVoters(), now)
}
func (p *Proposer) onConfirmed(out *ProposerOutput, m *messages.Confirmed, now time.Time) {
	p.seen(m.Promised)
	if mem := MemberOf(p.members, m.From); mem != nil && mem.Role == LearnerRole && m.Incarnation != 0 {
		p.learnerIncs[m.From] = m.Incarnation
	}
	if p.state != stateMaster || !p.counts(m.From, m.Incarnation) || m.Ballot != p.ballot {
		return
	}
	if !m.Ok {
		if m.Promised > max(p.ballot, p.boostBallot) {
			p.stepDown(out, now)
			p.resetElection(now)
		} else if p.boosting && m.Promised == p.boostBallot {
			p.heard(m.From, m.Seq) // it promised this master's own boost
		}
		return
	}
	if m.Seq > p.confirmAck[m.From] && m.Seq <= p.seq {
		p.confirmAck[m.From] = m.Seq
		p.releaseReads(out, now)
	}
	p.heard(m.From, m.Seq)
}
