package sim

import (
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/core"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// The node as the replica's core.Observer: it hands the checker what the
// replica decides as it decides it, and notes the situations the
// regression seeds must show (Result.Situations).

// Situations: moments a past bug needed, noted when a run reaches one, so
// that a regression seed can assert its run still does (regression_test.go).
const (
	// A candidate prepares from an instance at or below the chosen prefix
	// it heard of, while no live replica has applied up to that prefix
	// (seeds 705, 1509, 1706: prepared from the prefix and lost it).
	sitPrepareBelowLostPrefix = "prepare-below-lost-prefix"
	// An acceptor gets a prepare at the ballot it promised only in
	// memory, through a lazy accept (seed 754).
	sitPromiseRaisedLazily = "promise-raised-lazily"
	// A master serves a lease read while a follower has applied an
	// instance this master got chosen and has not applied yet (seeds
	// 9890, 18133: the checker's effect bound).
	sitReadBeforeChooserApplied = "read-before-chooser-applied"
	// A boost's promise reports another master's epoch start, accepted
	// under a lower ballot after this master's epoch began (seed 15125).
	sitRivalEpochStartInBoost = "rival-epoch-start-in-boost"
	// A restart finds the log marking instances chosen without their
	// values (seeds 7195, 17967: a damaged snapshot, a checkpointed log).
	sitRestoreHoles = "restore-holes"
	// A candidate holds promises from a majority without its own
	// acceptor's, not yet durable (seed 11653).
	sitQuorumWithoutOwnPromise = "quorum-without-own-promise"
	// A candidate's own acceptor refuses its prepare: it let go of the log
	// where the candidate's learner still is (seed 1645).
	sitOwnAcceptorTruncated = "own-acceptor-truncated"
	// A master applies a membership change another master got chosen
	// (seed 78226).
	sitMasterAppliesOthersChange = "master-applies-others-change"
	// A replica whose disk was lost campaigns in a group that exists
	// (seed 19633).
	sitFreshCandidate = "fresh-candidate"
	// A second loss of state (a wipe, a damaged snapshot) in one run was
	// withheld (seed 17211).
	sitLossesExclusive = "second-loss-withheld"
	// The end of a run waited more than 200 ms to settle (seed 89778).
	sitLongSettle = "long-settle"
	// A master handed mastership over and the successor campaigned naming
	// it, releasing the old lease (TestPaper5_2_HandoverUnderSimulation).
	sitHandoverCampaign = "handover-campaign"
)

// watch is what a node's situations need to remember.
type watch struct {
	// syncBallot is the highest ballot in a record this incarnation wrote
	// with an fsync (or restored).
	syncBallot uint64
	// promises are the ok promises for this node's current campaign
	// ballot; own: its own acceptor's among them.
	ballot   uint64
	promises map[uint32]bool
	own      bool
}

func (s *Simulator) situation(name string) {
	if s.situations == nil {
		s.situations = make(map[string]int)
	}
	s.situations[name]++
}

// Answered: the checker sees an acceptor's answer as it is decided.
func (n *node) Answered(reply paxos.Envelope) {
	n.lastAnswer = reply
	n.s.check.decided(n, &reply)
}

// Released: the checker sees an acceptor's answer as it leaves.
func (n *node) Released(reply paxos.Envelope) {
	n.s.check.released(n, &reply)
	pr, ok := reply.Msg.(*messages.Promise)
	if !ok || reply.To != n.id {
		return
	}
	switch {
	case pr.Ok:
		n.notePromise(pr, true)
	case pr.Truncated > 0 && !pr.Leased && pr.Promised <= pr.Ballot && !pr.Fresh:
		n.s.situation(sitOwnAcceptorTruncated)
	}
}

// Applying: the checker sees every entry handed to the apply side.
func (n *node) Applying(a *core.Apply) {
	e := a.Entry
	n.s.check.applied(n, a)
	if n.s.err != nil {
		return
	}
	n.applied = e.Instance
	if n.s.trace != nil {
		n.s.tracef("%s apply %d: %s", n.name(), e.Instance, describeValue(e.Value))
	}
	for i, c := range a.Commands {
		if !c.Membership || !c.Admitted {
			continue
		}
		n.s.check.membership(n, e.Instance, c.Version)
		if n.s.trace != nil {
			n.s.tracef("%s membership v%d at %d (command %d)", n.name(), c.Version, e.Instance, i)
		}
		if n.view.Master && n.s.check.chosenBy[e.Instance] != n.id {
			n.s.situation(sitMasterAppliesOthersChange)
		}
	}
}

// Checked: a replica that finds itself, or a peer, diverged from its
// group's majority fails the run (§6.2).
func (n *node) Checked(v paxos.Verdict) {
	if v.SelfDiverged {
		n.s.fail(ErrSafety, ErrChecksumMismatch, "%s: its checksum at instance %d differs from its group's majority", n.name(), v.Instance)
	}
	for _, d := range v.Diverged {
		n.s.fail(ErrSafety, ErrChecksumMismatch, "%s: n%d's checksum at instance %d differs from the majority's", n.name(), d, v.Instance)
	}
}

// beforeStep notes situations a message arriving at this node shows.
func (n *node) beforeStep(from uint32, msg proto.Message) {
	r := n.r()
	switch m := msg.(type) {
	case *messages.Prepare:
		if m.Ballot != 0 && r.Promised() == m.Ballot && n.watch.syncBallot < m.Ballot {
			n.s.situation(sitPromiseRaisedLazily)
		}
	case *messages.Promise:
		if !m.Ok {
			return
		}
		n.notePromise(m, false)
		if !r.IsMaster() || m.Ballot <= r.Ballot() {
			return
		}
		for _, e := range m.Accepted {
			if e.Value.GetStartsEpoch() && e.Instance > r.MasterEpoch() && e.Ballot <= r.Ballot() && e.Value.EpochMaster != n.id {
				n.s.situation(sitRivalEpochStartInBoost)
			}
		}
	}
}

// notePromise counts an ok promise for this node's campaign.
func (n *node) notePromise(m *messages.Promise, own bool) {
	w := &n.watch
	if m.Ballot != w.ballot {
		w.ballot, w.promises, w.own = m.Ballot, map[uint32]bool{}, false
	}
	if own {
		w.own = true
		return
	}
	w.promises[m.From] = true
	r := n.r()
	if !w.own && !r.IsMaster() && r.Ballot() == m.Ballot && len(w.promises) >= len(paxos.MembershipVoters(r.FrontierMembers()))/2+1 {
		n.s.situation(sitQuorumWithoutOwnPromise)
	}
}

// afterSend notes situations a message this node sends shows.
func (n *node) afterSend(to uint32, msg proto.Message) {
	if _, ok := msg.(*messages.Handover); ok {
		// The master gave its lease up before this left (handover.go).
		n.s.check.leaseGivenUp(n)
		return
	}
	m, ok := msg.(*messages.Prepare)
	if !ok {
		return
	}
	if m.HandoverBallot != 0 {
		n.s.situation(sitHandoverCampaign)
	}
	r := n.r()
	if r.Fresh() && !n.s.brandNew() {
		n.s.situation(sitFreshCandidate)
	}
	if chosen := r.ChosenUpto(); m.FirstInstance <= chosen && n.s.liveApplied() < chosen {
		n.s.situation(sitPrepareBelowLostPrefix)
	}
}

// brandNew reports whether no acceptor has voted yet.
func (s *Simulator) brandNew() bool {
	for _, n := range s.nodes {
		if !n.diskFresh {
			return false
		}
	}
	return true
}

// liveApplied is the furthest any live node applied.
func (s *Simulator) liveApplied() uint64 {
	var a uint64
	for _, n := range s.nodes {
		if n.up {
			a = max(a, n.applied)
		}
	}
	return a
}
