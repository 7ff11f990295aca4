package paxos

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// entriesBytes is what a list of entries adds to a message, as the budgets
// count it.
func entriesBytes(es []*messages.Entry) int {
	n := 0
	for _, e := range es {
		n += proto.Size(e)
	}
	return n
}

// acceptMany has a fills its log from instance 1 with n values of size
// bytes each, accepted under ballot b.
func acceptMany(t *testing.T, a *Acceptor, b uint64, n, size int) []*messages.Entry {
	t.Helper()
	var es []*messages.Entry
	for i := 1; i <= n; i++ {
		es = append(es, &messages.Entry{Instance: uint64(i), Ballot: b,
			Value: value(fmt.Sprintf("%04d", i) + string(make([]byte, size-4)))})
	}
	if out := a.HandleAccept(&messages.Accept{From: BallotOwner(b), Ballot: b, Entries: es}, t0); len(out.Records) != n {
		t.Fatalf("accepted %d of %d entries", len(out.Records), n)
	}
	return es
}

// TestAcceptorPromisesInPagesWithinTheBudget: an acceptor that accepted
// far more than its promise budget answers a prepare with a page of at
// most the budget that says where it stopped, and the next prepare of the
// same ballot from past that point with the next page, until every entry
// was listed exactly once, in order. An entry larger than the budget alone
// goes in a page of its own, so paging always gets further.
func TestAcceptorPromisesInPagesWithinTheBudget(t *testing.T) {
	const budget = 8 << 10
	a := NewAcceptor(2)
	a.SetMaxPromiseBytes(budget)
	all := acceptMany(t, a, NextBallot(0, 3), 100, 1<<10)
	huge := &messages.Entry{Instance: 101, Ballot: NextBallot(0, 3), Value: value(string(make([]byte, 3*budget)))}
	a.HandleAccept(&messages.Accept{From: 3, Ballot: huge.Ballot, Entries: []*messages.Entry{huge}}, t0)
	all = append(all, huge)

	b := NextBallot(BallotStride, 1)
	var got []*messages.Entry
	pages := 0
	for first := uint64(1); first != 0; pages++ {
		if pages > len(all) {
			t.Fatal("paging does not end")
		}
		out := a.HandlePrepare(&messages.Prepare{From: 1, Ballot: b, FirstInstance: first, Paged: true}, t0)
		pr := out.Reply.Msg.(*messages.Promise)
		if !pr.Ok || pr.FirstInstance != first {
			t.Fatalf("page from %d: ok %v, first_instance %d", first, pr.Ok, pr.FirstInstance)
		}
		if n := entriesBytes(pr.Accepted); n > budget && len(pr.Accepted) > 1 {
			t.Fatalf("page from %d carries %d bytes of entries (%d of them), budget %d", first, n, len(pr.Accepted), budget)
		}
		if len(pr.Accepted) == 0 {
			t.Fatalf("page from %d is empty", first)
		}
		if pr.AcceptedUpto != 0 && pr.AcceptedUpto != pr.Accepted[len(pr.Accepted)-1].Instance {
			t.Fatalf("page from %d ends at %d but its last entry is %d", first, pr.AcceptedUpto, pr.Accepted[len(pr.Accepted)-1].Instance)
		}
		got = append(got, pr.Accepted...)
		first = 0
		if pr.AcceptedUpto != 0 {
			first = pr.AcceptedUpto + 1
		}
	}
	if pages < 100*(1<<10)/budget {
		t.Fatalf("%d pages for %d bytes at %d a page", pages, entriesBytes(all), budget)
	}
	if len(got) != len(all) {
		t.Fatalf("pages listed %d entries, want %d", len(got), len(all))
	}
	for i := range all {
		if !proto.Equal(got[i], all[i]) {
			t.Fatalf("entry %d: got instance %d, want %d", i, got[i].Instance, all[i].Instance)
		}
	}
	// A candidate that does not page (a node of an earlier version) would
	// take a first page for the whole promise: it gets the whole.
	whole := a.HandlePrepare(&messages.Prepare{From: 1, Ballot: b, FirstInstance: 1}, t0).Reply.Msg.(*messages.Promise)
	if len(whole.Accepted) != len(all) || whole.AcceptedUpto != 0 {
		t.Fatalf("a prepare without paged got %d entries up to %d, want all %d", len(whole.Accepted), whole.AcceptedUpto, len(all))
	}
	// The default budget keeps a Promise far below the transport's limit.
	if DefaultMaxPromiseBytes > 8<<20 || DefaultMaxAcceptBytes > 8<<20 {
		t.Fatalf("budgets %d and %d are not a few MiB", DefaultMaxPromiseBytes, DefaultMaxAcceptBytes)
	}
}

// phase1Net delivers a proposer's messages to real acceptors and their
// answers back, at one instant, dropping everything to and from cut.
type phase1Net struct {
	p        *Proposer
	accs     map[uint32]*Acceptor
	cut      uint32
	promises []*messages.Promise
	accepts  []*messages.Accept
}

func (n *phase1Net) deliver(out ProposerOutput, now time.Time) {
	queue := out.Messages
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		if e.To == n.cut {
			continue
		}
		switch m := e.Msg.(type) {
		case *messages.Prepare:
			if rep := n.accs[e.To].HandlePrepare(m, now).Reply; rep != nil {
				pr := rep.Msg.(*messages.Promise)
				n.promises = append(n.promises, pr)
				queue = append(queue, n.p.Step(pr, now).Messages...)
			}
		case *messages.Accept:
			n.accepts = append(n.accepts, m) // phase 2 is not answered: the test looks at what was sent
		}
	}
}

// TestCandidateReproposesEveryValueBeyondAPromisePage: the only acceptor
// of the candidate's quorum that accepted anything holds values worth a
// dozen promise pages (the third voter is cut off, so the quorum must be
// the candidate and it). The candidate becomes master only once it has
// every page, and re-proposes every one of those values at its instance,
// not just the first page's: the values may be chosen. Every Promise and
// every Accept, re-proposal and retransmission, stays within its budget.
// With the pages taken for the whole promise (planted bug
// promise-page-as-whole) the master fills the instances past the first
// page with no-ops, and this test fails.
func TestCandidateReproposesEveryValueBeyondAPromisePage(t *testing.T) {
	for _, bug := range []PlantedBug{BugNone, BugPromisePageAsWhole} {
		t.Run(bug.String(), func(t *testing.T) {
			err := reproposeAcrossPages(t, bug)
			switch {
			case bug == BugNone && err != nil:
				t.Fatal(err)
			case bug != BugNone && err == nil:
				t.Fatalf("with %s planted the master still re-proposed every value: the test cannot see the bug", bug)
			case bug != BugNone:
				t.Logf("with %s planted: %v", bug, err)
			}
		})
	}
}

func reproposeAcrossPages(t *testing.T, bug PlantedBug) error {
	const budget = 8 << 10
	accs := map[uint32]*Acceptor{1: NewAcceptor(1), 2: NewAcceptor(2), 3: NewAcceptor(3)}
	for _, a := range accs {
		a.SetMaxPromiseBytes(budget)
	}
	old := acceptMany(t, accs[2], NextBallot(0, 3), 100, 1<<10)
	p := NewProposer(ProposerConfig{ID: 1, Peers: []uint32{1, 2, 3}, MaxAcceptBytes: budget,
		Rand: rand.New(rand.NewPCG(1, 2)), Planted: bug}, t0)
	p.ObserveBallot(old[0].Ballot) // it campaigns above the old master
	n := &phase1Net{p: p, accs: accs, cut: 3}
	now := t0.Add(10 * time.Second)
	n.deliver(campaignTick(p, now), now)
	if !p.IsMaster() {
		return fmt.Errorf("not master once every page arrived (%d promises)", len(n.promises))
	}
	pages := 0
	for _, pr := range n.promises {
		if pr.From == 2 {
			pages++
		}
		if b := entriesBytes(pr.Accepted); b > budget {
			t.Fatalf("a promise carries %d bytes of entries, budget %d", b, budget)
		}
	}
	sent := map[uint64]*messages.Entry{}
	check := func(what string) {
		for _, m := range n.accepts {
			if b := entriesBytes(m.Entries); b > budget {
				t.Fatalf("%s: an Accept carries %d bytes of entries, budget %d", what, b, budget)
			}
		}
	}
	check("re-proposal")
	for _, m := range n.accepts {
		for _, e := range m.Entries {
			sent[e.Instance] = e
		}
	}
	n.accepts = nil
	// Past the retransmit interval, within the quorum timeout: nothing was
	// acknowledged, so all is resent.
	resend := now.Add(400 * time.Millisecond)
	n.deliver(p.Tick(resend), resend)
	check("retransmission")
	if len(n.accepts) < 2 {
		t.Fatalf("the retransmission went in %d Accepts", len(n.accepts))
	}
	for _, e := range old {
		got := sent[e.Instance]
		if got == nil {
			return fmt.Errorf("instance %d not re-proposed", e.Instance)
		}
		if !proto.Equal(got.Value, e.Value) {
			return fmt.Errorf("instance %d re-proposed as %.12q, want the accepted %.12q", e.Instance, payloads(got.Value), payloads(e.Value))
		}
	}
	if pages < 10 {
		t.Fatalf("acceptor 2 answered in %d pages: the test does not page", pages)
	}
	return nil
}

// TestCandidateWaitsForEveryPage: a promise whose later pages have not
// arrived does not count towards the quorum, however many pages came; it
// counts once the last one does.
func TestCandidateWaitsForEveryPage(t *testing.T) {
	p := NewProposer(ProposerConfig{ID: 1, Peers: []uint32{1, 2, 3}, Rand: rand.New(rand.NewPCG(1, 2))}, t0)
	now := t0.Add(10 * time.Second)
	prep := prepareOf(campaignTick(p, now))
	b := prep.Ballot
	p.Step(&messages.Promise{From: 1, Ballot: b, Ok: true, FirstInstance: 1}, now)
	v := &messages.Entry{Instance: 1, Ballot: NextBallot(0, 2), Value: value("x")}
	out := p.Step(&messages.Promise{From: 2, Ballot: b, Ok: true, FirstInstance: 1, AcceptedUpto: 5, Accepted: []*messages.Entry{v}}, now)
	if p.IsMaster() {
		t.Fatal("master on the first page of a promise")
	}
	if next := prepareOf(out); next == nil || next.Ballot != b || next.FirstInstance != 6 {
		t.Fatalf("asked for the next page with %v, want the same ballot from instance 6", next)
	}
	// A duplicate of the first page changes nothing.
	p.Step(&messages.Promise{From: 2, Ballot: b, Ok: true, FirstInstance: 1, AcceptedUpto: 5, Accepted: []*messages.Entry{v}}, now)
	if p.IsMaster() {
		t.Fatal("master on a duplicate of the first page")
	}
	w := &messages.Entry{Instance: 9, Ballot: NextBallot(0, 2), Value: value("y")}
	out = p.Step(&messages.Promise{From: 2, Ballot: b, Ok: true, FirstInstance: 6, Accepted: []*messages.Entry{w}}, now)
	if !p.IsMaster() {
		t.Fatal("not master once the last page arrived")
	}
	got := map[uint64][]string{}
	for _, e := range accepts(out, 2) {
		got[e.Instance] = payloads(e.Value)
	}
	if fmt.Sprint(got[1]) != "[x]" || fmt.Sprint(got[9]) != "[y]" || fmt.Sprint(got[5]) != "[<noop>]" {
		t.Fatalf("re-proposed %v, want x at 1, y at 9 and no-ops between", got)
	}
}
