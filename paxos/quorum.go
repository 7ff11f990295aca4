package paxos

import (
	"slices"
	"time"

	"github.com/livepaxos/livepaxos/messages"
)

// Quorum arithmetic of the proposer (§4, §5.1, §5.4): how many votes make
// a majority of the voters of the configuration at the frontier, whose
// votes count (one incarnation per voter), and when a majority last
// answered.

// quorumSent returns when the message was sent that a majority of voters
// (by acks, the highest seq each answered) have all answered, if any is
// still in the window.
func (p *Proposer) quorumSent(acks map[uint32]uint64) (time.Time, bool) {
	s := p.quorumSeq(acks)
	if s == 0 || s+seqWindow <= p.seq {
		return time.Time{}, false
	}
	return p.sentAt[s%seqWindow], true
}
func (p *Proposer) quorum() int { return quorum(len(p.voters)) }

// counts reports whether a vote from incarnation inc of node id counts
// under the configuration in force at the frontier: only its voters'
// promises and acknowledgements count towards a quorum, whatever a message
// claims, and only from the incarnation it records (§5.1, §5.4).
func (p *Proposer) counts(id uint32, inc uint64) bool { return p.countsVote(p.members, id, inc) }

// countsVote is CountsVote, or, with BugCorruptVotesAtOnce planted, any
// incarnation of a voter of m.
func (p *Proposer) countsVote(m *messages.Membership, id uint32, inc uint64) bool {
	if p.cfg.Planted == BugCorruptVotesAtOnce {
		mem := MemberOf(m, id)
		return mem != nil && mem.Role != LearnerRole
	}
	return CountsVote(m, id, inc)
}

// toIncarnation is what the frontier's configuration records of peer's
// incarnation, sent with every request for a vote.
func (p *Proposer) toIncarnation(peer uint32) uint64 {
	if inc := MemberOf(p.members, peer).GetIncarnation(); inc != 0 {
		return inc
	}
	return p.bootstrapIncs[peer]
}

// quorumSeq returns the highest seq that a majority of voters have all
// answered, by acks (the highest seq each answered): the majority-th
// highest of them. Called on every step of a busy master, so it sorts on
// the stack.
func (p *Proposer) quorumSeq(acks map[uint32]uint64) uint64 {
	var buf [16]uint64
	seqs := buf[:0]
	for _, peer := range p.voters {
		seqs = append(seqs, acks[peer])
	}
	slices.Sort(seqs)
	return seqs[len(seqs)-p.quorum()]
}

// quorum returns the size of a majority of n voters.
func quorum(n int) int { return n/2 + 1 }
