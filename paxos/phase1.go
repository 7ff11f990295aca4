package paxos

import (
	"time"

	"github.com/livepaxos/livepaxos/messages"
)

// Phase 1 in pages. An acceptor's Promise carries what it accepted from
// the candidate's first instance up to a byte budget
// (DefaultMaxPromiseBytes) and says where it stopped
// (Promise.accepted_upto); the candidate (or a boosting master) asks the
// same acceptor again, under the same ballot, from just past the page, one
// page in flight per acceptor, and counts the acceptor's promise towards
// the quorum only once it has every page.
//
// Why that is safe. Say a value v was chosen at instance j under ballot
// b' < b, the candidate's ballot: a quorum Q' accepted it under b'. The
// candidate counts a quorum Q of complete promises of b, and Q meets Q' in
// some acceptor X. X accepted v under b' before it promised b (after the
// promise it refuses b'), and an acceptor's ballot at an instance only
// rises, so whichever page of X's covers j — sent after X promised b, at
// whatever time — reports j under a ballot of b' or more, and every value
// accepted under a ballot from b' up to b is v (the usual induction). X
// cannot have accepted anything under b itself between its pages: only
// this candidate proposes under b, and only once phase 1 is over; nor
// under a ballot above b: it would have promised that one and refused the
// next page. So the highest-ballot value reported at j is v, and the
// candidate re-proposes it. The pages only have to cover j for every
// member of Q, which a complete promise does. An acceptor whose promise
// is still incomplete is not counted: the instances above its last page
// are unknown, not empty (planted bug promise-page-as-whole treats them as
// empty, and the simulator finds a chosen value overwritten).
//
// Values reported by acceptors outside Q (an incomplete promise, a
// duplicate) are folded into best too: the highest ballot over a superset
// of a quorum's reports is still v at j, because every reported entry was
// accepted under a ballot below b, and those from b' up are v.

// promised is how far one acceptor's promise of the current phase 1 has
// come.
type promised struct {
	// prior is Promise.prior of its first page (see interrupted).
	prior uint64
	// next is the first instance its pages have not covered yet, the one
	// the next page is asked from; 0 once its promise is complete.
	next uint64
}

// startPhase1 begins collecting promises for instances from first.
func (p *Proposer) startPhase1(first uint64) {
	p.prepareFrom = first
	p.refusedBelow = 0
	p.promises = make(map[uint32]*promised)
	p.best = make(map[uint64]*messages.Entry)
	p.bestInterrupts = false
}

// pageWanted returns the instance peer's next Prepare asks from: the
// first instance of phase 1 if it has not promised, the end of its last
// page if its promise came in pages, 0 if its promise is complete.
func (p *Proposer) pageWanted(peer uint32) uint64 {
	if pr := p.promises[peer]; pr != nil {
		return pr.next
	}
	return p.prepareFrom
}

// takePage folds one page of a promise of the current phase 1 into best,
// and asks its acceptor for the next page at once if there is one. It
// reports whether the page completed that acceptor's promise. A page that
// does not follow the last one taken (a duplicate, or one overtaken by a
// retransmission's answer) is ignored.
func (p *Proposer) takePage(out *ProposerOutput, m *messages.Promise, now time.Time) bool {
	want := p.pageWanted(m.From)
	if want == 0 {
		return false // complete already
	}
	switch {
	case m.FirstInstance == want:
	case m.FirstInstance == 0 && want == p.prepareFrom:
		// A node that does not page: its promise is whole.
	default:
		return false
	}
	if m.AcceptedUpto != 0 && m.AcceptedUpto < want {
		return false // goes nowhere (admit refuses this already)
	}
	pr := p.promises[m.From]
	if pr == nil {
		pr = &promised{prior: m.Prior}
		p.promises[m.From] = pr
	}
	for _, e := range m.Accepted {
		if e.Instance < want || (m.AcceptedUpto != 0 && e.Instance > m.AcceptedUpto) {
			continue
		}
		if b := p.best[e.Instance]; b == nil || e.Ballot > b.Ballot {
			p.best[e.Instance] = e
		}
		if p.boosting && p.interrupts(e) {
			p.bestInterrupts = true
		}
	}
	if m.AcceptedUpto == 0 || p.cfg.Planted == BugPromisePageAsWhole {
		pr.next = 0
		return true
	}
	pr.next = m.AcceptedUpto + 1
	// Pages are progress: a long promise must not run the campaign (or
	// the boost) out of time while it arrives.
	if p.boosting {
		p.boostAt = now
		out.Messages = append(out.Messages, p.boostPrepare(m.From, pr.next))
	} else {
		p.resetElection(now)
		out.Messages = append(out.Messages, p.prepare(m.From, pr.next))
	}
	return false
}

// phase1Done reports whether a quorum's promises are complete, this
// node's own among them.
func (p *Proposer) phase1Done() bool {
	n := 0
	for _, pr := range p.promises {
		if pr.next == 0 {
			n++
		}
	}
	own := p.promises[p.cfg.ID]
	return n >= p.quorum() && own != nil && own.next == 0
}
