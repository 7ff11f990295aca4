package paxos

import (
	"time"

	"github.com/livepaxos/livepaxos/messages"
)

// Liveness under partial partitions: a master that hears no majority steps
// down (check-quorum), and a follower asks before it campaigns (pre-vote).
//
// Paxos is safe whatever the network does; these two keep the group live
// whenever a majority can talk both ways:
//   - A master whose heartbeats reach the followers while their answers do
//     not reach it would hold every election off forever. It counts, per
//     voter, the newest of its messages that voter answered; when no
//     majority has answered anything it sent within QuorumTimeout (its
//     lease timeout less the clock drift bound), it
//     steps down and says so (a resigned Heartbeat), and once its own
//     lease is over the acceptors drop the lease they granted it.
//   - A node cut off from a majority would raise its ballot at every
//     election timeout, and on its return depose a working master. It
//     first asks the voters whether they would take part in an election
//     (PreVote) and campaigns only once a majority, itself included, has
//     heard no master within an election timeout. Nothing is promised or
//     raised by a pre-vote.
//   - Followers that all lost their master at once would campaign at once
//     and depose one another. One whose acceptor takes part in another
//     node's campaign holds its own off and refuses other pre-votes for an
//     election timeout (NoteCampaign).
// Neither touches what is chosen: stepping down is always safe, a
// pre-vote changes no acceptor, and a lease is dropped only for a master
// whose own clock is past every lease it held (ReleaseLease).

// lostQuorum reports whether this master has gone QuorumTimeout without a
// majority answering anything it sent since its mastership began.
func (p *Proposer) lostQuorum(now time.Time) bool {
	if p.cfg.Planted == BugNoStepDown {
		return false
	}
	last := p.masterAt
	if p.votersSince.After(last) {
		last = p.votersSince
	}
	if t, ok := p.quorumSent(p.heardAck); ok && t.After(last) {
		last = t
	}
	return now.Sub(last) >= p.cfg.QuorumTimeout
}

// heard notes that voter from answered the send numbered seq: evidence,
// for check-quorum, that the two can still talk both ways.
func (p *Proposer) heard(from uint32, seq uint64) {
	if seq > p.heardAck[from] && seq <= p.seq {
		p.heardAck[from] = seq
	}
}

// probeQuorum sends every other voter a Confirm with a fresh seq along with the
// heartbeats: its answers keep an idle master's evidence of a majority
// fresh (acceptances come only every half lease then), and they confirm
// waiting quorum reads as any Confirm does. A Confirm grants no lease.
func (p *Proposer) probeQuorum(out *ProposerOutput, now time.Time) {
	seq := p.nextSeq(now)
	for _, peer := range p.voters {
		if peer == p.cfg.ID {
			p.heard(peer, seq) // it always hears itself
			continue
		}
		out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Confirm{
			From: p.cfg.ID, Ballot: p.ballot, Seq: seq, ToIncarnation: p.toIncarnation(peer)}})
	}
}

// resign ends a mastership that lost its majority. If its own lease is
// over (it always is after the default QuorumTimeout: its lease counts
// from sends a majority acknowledged, a subset of those it heard answered),
// it tells
// the others so that their acceptors drop the lease they granted it under
// this ballot, and their proposers ask for a pre-vote soon instead of
// after a whole election timeout.
func (p *Proposer) resign(out *ProposerOutput, now time.Time) {
	ballot := p.ballot
	p.stats.Resigned++
	p.stepDown(out, now)
	p.resetElection(now)
	if !out.ReleaseLease {
		return
	}
	for _, peer := range append(p.voters[:len(p.voters):len(p.voters)], p.learners...) {
		if peer != p.cfg.ID {
			out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Heartbeat{
				From: p.cfg.ID, Ballot: ballot, ChosenUpto: p.chosenUpto, ToIncarnation: p.toIncarnation(peer), Resigned: true}})
		}
	}
}

// onResigned takes a master's word that it stepped down: the local
// acceptor drops the lease it granted it under that ballot or below (the
// core does, from out.Resigned), and a follower of it asks for a pre-vote
// after a short random wait, up to a quarter of an election timeout
// (random, so that followers rarely duel; a duel costs a round trip: the
// higher ballot wins).
func (p *Proposer) onResigned(out *ProposerOutput, m *messages.Heartbeat, now time.Time) {
	if m.From == p.cfg.ID || m.From == 0 {
		return
	}
	out.Resigned, out.ResignedBallot = m.From, m.Ballot
	if p.state != stateFollower || p.masterID != m.From {
		return
	}
	p.masterID, p.heardAt = 0, time.Time{}
	soon := now.Add(time.Duration(p.cfg.Rand.Int64N(int64(p.cfg.ElectionTimeoutMin/4) + 1)))
	if soon.Before(p.electionAt) {
		p.electionAt = soon
	}
}

// startPreVote asks the voters whether they would take part in an
// election; campaign follows once a majority says yes (onPreVoted). A
// group of one, or a replica with the pre-vote planted away, campaigns at
// once.
func (p *Proposer) startPreVote(out *ProposerOutput, now time.Time) {
	if p.cfg.Planted == BugNoPreVote || len(p.voters) == 1 {
		p.campaign(out, now)
		return
	}
	// Not heard from for an election timeout: it no longer knows a master
	// (status, readiness and forwarding say so) until one is heard again.
	p.masterID = 0
	p.prevoting = true
	p.prevoteBallot = NextBallot(max(p.highestSeen, p.ballot), p.cfg.ID)
	p.prevotes = map[uint32]bool{p.cfg.ID: true}
	p.stats.PreVotes++
	p.resetElection(now) // no majority in time: ask again
	for _, peer := range p.voters {
		if peer != p.cfg.ID {
			out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.PreVote{From: p.cfg.ID, Ballot: p.prevoteBallot}})
		}
	}
}

// onPreVote answers whether this node would take part in an election now:
// yes unless it is master, heard a master within ElectionTimeoutMin, or
// took part in another node's campaign within that time (NoteCampaign).
// It raises nothing: the asker's ballot is not promised, and its own
// election timer is not touched.
func (p *Proposer) onPreVote(out *ProposerOutput, m *messages.PreVote, now time.Time) {
	if m.From == p.cfg.ID || m.From == 0 {
		return
	}
	ok := p.state != stateMaster && (p.heardAt.IsZero() || now.Sub(p.heardAt) >= p.cfg.ElectionTimeoutMin) &&
		!p.deferringTo(now, m.From)
	out.Messages = append(out.Messages, Envelope{To: m.From, Msg: &messages.PreVoted{
		From: p.cfg.ID, Ballot: m.Ballot, Ok: ok, Highest: p.highestSeen, MasterId: p.masterID}})
}

// onPreVoted counts a yes from a voter of the configuration in force; at a
// majority (this node included) phase 1 starts with a ballot above every
// one the answers reported.
func (p *Proposer) onPreVoted(out *ProposerOutput, m *messages.PreVoted, now time.Time) {
	p.seen(m.Highest)
	if !p.prevoting || p.state != stateFollower || m.Ballot != p.prevoteBallot || !m.Ok {
		return
	}
	if mem := MemberOf(p.members, m.From); mem == nil || mem.Role == LearnerRole {
		return
	}
	p.prevotes[m.From] = true
	if len(p.prevotes) >= p.quorum() {
		p.campaign(out, now)
	}
}

// NoteCampaign tells the proposer that its own acceptor took part in
// another node's campaign: it promised the Prepare at ballot, or refused it
// only for a lease it still holds (the core decides: supportsCampaign). A
// campaign at a ballot no lower than any seen here is live: this follower
// holds its own election off (as a Raft voter does once it votes) and
// refuses other nodes' pre-votes for ElectionTimeoutMin after the
// campaign's last Prepare, so that one candidate runs at a time. Without
// it, every follower whose election timer ran out while the old master's lease held campaigned too, each
// refused until that lease ended (the acceptors keep their grants), and
// all of them asked again at the same moment, when it ended: they deposed
// one another for seconds (sim seed 34022, no write for 3.05 s with a
// master cut off both ways). A campaign that cannot win ends by itself:
// its candidate stops sending Prepares at its own election timeout.
func (p *Proposer) NoteCampaign(from uint32, ballot uint64, now time.Time) {
	if from == p.cfg.ID || from == 0 || ballot < p.highestSeen || ballot == 0 {
		return
	}
	p.campaignAt, p.campaigner = now, from
	if p.state == stateFollower {
		p.prevoting, p.prevotes = false, nil
		p.resetElection(now)
	}
}

// deferringTo reports whether this node defers to another candidate's live
// campaign: its acceptor took part in the campaign of a node other than
// asker within ElectionTimeoutMin.
func (p *Proposer) deferringTo(now time.Time, asker uint32) bool {
	return !p.campaignAt.IsZero() && p.campaigner != asker &&
		now.Sub(p.campaignAt) < p.cfg.ElectionTimeoutMin
}
