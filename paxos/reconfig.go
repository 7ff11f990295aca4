package paxos

import (
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// Membership changes and incarnations (§5.1, §5.4): one change at a time
// with the pipeline drained, phase 1 again after a change of quorum, the
// configuration the learner applied, and the incarnations the master
// records and replaces.

// submitChange takes a membership command (§5.4): one at a time, checked
// against the configuration at the frontier, proposed alone once the
// pipeline has drained. A membership command carries no epoch: its version
// alone decides whether it applies (a stale one finds another version in
// force), so a change a deposed master proposed still takes effect if
// chosen.
func (p *Proposer) submitChange(out *ProposerOutput, cmd *messages.Command) {
	refuse := func(code messages.ErrorCode, why string) {
		out.Replies = append(out.Replies, Reply{Cmd: cmd, Response: &messages.ClientResponse{
			RequestId: cmd.RequestId, Code: code, Error: why, MasterId: p.cfg.ID}})
	}
	if p.pendingChange != nil || p.changeAt != 0 || p.epochPending || p.reprepareFrom != 0 {
		refuse(messages.ErrorCode_ERROR_CODE_OVERLOADED, "another membership change is in progress; try again")
		return
	}
	next := &messages.Membership{}
	if err := proto.Unmarshal(cmd.Payload, next); err != nil {
		refuse(messages.ErrorCode_ERROR_CODE_INVALID, "membership does not decode: "+err.Error())
		return
	}
	if err := CheckMembershipChange(p.members, next); err != nil {
		refuse(messages.ErrorCode_ERROR_CODE_INVALID, err.Error())
		return
	}
	if !slices.Equal(MembershipVoters(next), p.voters) && p.unrecordedVoter() {
		// A voter whose incarnation is not recorded cannot vote yet (§5.1);
		// another change of voters could leave no majority that can.
		refuse(messages.ErrorCode_ERROR_CODE_OVERLOADED, "a voter's incarnation is not recorded yet: try again shortly")
		return
	}
	for _, id := range MembershipVoters(next) {
		if m := MemberOf(next, id); m.Incarnation == 0 && !slices.Contains(p.voters, id) {
			// A new voter is recorded with its incarnation, so that it
			// votes at once: otherwise recording it would take a majority
			// without it.
			if m.Incarnation = p.learnerIncs[id]; m.Incarnation == 0 {
				refuse(messages.ErrorCode_ERROR_CODE_OVERLOADED, fmt.Sprintf("not heard from node %d yet: try again shortly", id))
				return
			}
			cmd.Payload, _ = proto.Marshal(next)
		}
	}
	if len(MembershipVoters(next)) < len(p.voters) && len(p.replaced) > 0 {
		refuse(messages.ErrorCode_ERROR_CODE_INVALID, "a voter is rebuilding after losing its disk: no voter is removed until it is replaced")
		return
	}
	if !p.countsVote(next, p.cfg.ID, p.cfg.Incarnation) {
		// Removing the master: it hands mastership over first (§5.4). It
		// steps down and keeps out of elections until the lease the
		// acceptors granted it has run out and another has had time to
		// win (before that, it alone could be elected); the client retries
		// with the new master, which proposes the change.
		p.stepDown(out, p.lastNow)
		p.HoldElection(p.lastNow, p.cfg.LeaseTimeout+2*p.cfg.ElectionTimeoutMax)
		refuse(messages.ErrorCode_ERROR_CODE_NOT_MASTER, "the master hands mastership over before it is removed: retry with the next master")
		return
	}
	cmd.Epoch = 0
	p.pendingChange = cmd
}

// unrecordedVoter reports whether the configuration at the frontier
// records no incarnation for some voter.
func (p *Proposer) unrecordedVoter() bool {
	for _, id := range p.voters {
		if MemberOf(p.members, id).Incarnation == 0 {
			return true
		}
	}
	return false
}

// proposeChange proposes the pending membership command alone, once
// nothing is in flight.
func (p *Proposer) proposeChange(now time.Time) *messages.Entry {
	cmd := p.pendingChange
	p.pendingChange = nil
	return p.newInstance(&messages.Value{Commands: []*messages.Command{cmd}}, now)
}

// changeChosen is called once the membership value at changeAt is chosen:
// its configuration governs every later instance. If it changes how votes
// are counted, phase 1 runs again with the new voters (a boost from the
// next instance) before anything is proposed past it: a candidate of the
// old configuration may have had values accepted there by voters this
// mastership never asked (docs/membership.md).
func (p *Proposer) changeChosen(out *ProposerOutput, now time.Time) {
	at, next := p.changeAt, p.changeNext
	p.changeAt, p.changeNext = 0, nil
	old := p.members
	for _, id := range append(p.voters[:len(p.voters):len(p.voters)], p.learners...) {
		if MemberOf(next, id) == nil && id != p.cfg.ID {
			// A removed member is sent nothing from now on: this last
			// notice lets it learn the change that removed it (its status
			// then says so).
			out.Messages = append(out.Messages, Envelope{To: id, Msg: &messages.Chosen{
				From: p.cfg.ID, Ballot: p.ballot, ChosenUpto: p.noticeUpto}})
		}
	}
	p.setMembers(next)
	if ChangesQuorum(old, next) && p.cfg.Planted != BugQuorumFromStaleConfig {
		p.reprepareFrom = at + 1
		p.startBoost(out, now, at+1)
		return
	}
	if p.cfg.Planted == BugQuorumFromStaleConfig && ChangesQuorum(old, next) {
		p.setMembers(old) // the bug: go on counting with the configuration it was elected under
	}
	if p.epochPending {
		p.broadcastAccept(out, []*messages.Entry{p.startEpoch(now)}, nil, now)
	}
}

// watchChange notes a membership value put in flight at e: until it is
// chosen, nothing is proposed after it (only its own configuration is
// certain for the instances in flight).
func (p *Proposer) watchChange(e *messages.Entry) {
	if next := FoldMembership(p.members, e.Value); next != p.members {
		p.changeAt, p.changeNext = e.Instance, next
	}
}

// MembershipApplied tells the proposer that the local learner applied the
// configuration m at instance at (or installed a snapshot of it): m
// governs every instance after at (§5.4). A follower takes it at once. A
// master or candidate keeps its own view, which its own proposals carry
// ahead, unless m is newer than that view: then another master chose a
// change this one never proposed, its view is stale, and it adopts m if
// only learners differ, or else steps down (its campaign or its
// instances in flight were counted under the wrong voters).
func (p *Proposer) MembershipApplied(m *messages.Membership, at uint64, now time.Time) ProposerOutput {
	var out ProposerOutput
	if at < p.appliedMembersAt {
		return out
	}
	p.appliedMembers, p.appliedMembersAt = m, at
	p.LearnerProgress(at)
	switch {
	case p.state == stateFollower:
		p.setMembers(m)
		p.membersFrom = at + 1
	case m.GetVersion() <= p.members.GetVersion():
	case p.state == stateMaster && !ChangesQuorum(p.members, m):
		p.setMembers(m)
		p.membersFrom = at + 1
	default:
		p.stepDown(&out, now)
		p.resetElection(now)
	}
	return out
}

// AcceptorProven tells the proposer that its own acceptor is no longer
// fresh (a request named its incarnation).
func (p *Proposer) AcceptorProven() { p.acceptorProven = true }

// unproven reports whether this node started on an empty directory, heard
// from a master that records another incarnation of it, and has not yet
// applied a configuration that records its own (ProposerConfig.Fresh).
func (p *Proposer) unproven() bool {
	return p.cfg.Fresh && !p.acceptorProven && p.replacedSeen &&
		MemberOf(p.appliedMembers, p.cfg.ID).GetIncarnation() != p.cfg.Incarnation
}

// noteIncarnation remembers the incarnation a voter answered with: a vote,
// or a fresh acceptor's refusal (it answers nothing until a request names
// its incarnation), from one the configuration does not record yet is
// recorded (registered), and a refusal from another incarnation than the
// recorded one (the acceptor lost its disk and starts again, §5.1) asks
// for it to be replaced, by maybeReconfigure. Only answers to this
// proposer's current ballots are taken: a delayed one may come from an
// incarnation that is gone.
func (p *Proposer) noteIncarnation(id uint32, inc uint64, ok, fresh bool, ballot uint64) {
	if inc == 0 || p.state == stateFollower || (ballot != p.ballot && ballot != p.boostBallot) {
		return
	}
	mem := MemberOf(p.members, id)
	if mem == nil || mem.Role == LearnerRole {
		return
	}
	switch {
	case (ok || fresh) && mem.Incarnation == 0:
		p.incarnations[id] = inc
	case !ok && mem.Incarnation != 0 && mem.Incarnation != inc:
		p.replaced[id] = inc
	}
}

// maybeReconfigure has the master record the incarnations of voters the
// configuration does not record yet (all at once), or else replace one
// voter's incarnation by the one it answers with now, through the log like
// any membership change (§5.1). Until the replacement is chosen, the
// replica's new incarnation neither votes nor is counted; from then on
// only it is.
func (p *Proposer) maybeReconfigure() {
	if !p.proposing() || p.pendingChange != nil || p.applied < p.epoch {
		return
	}
	next := proto.Clone(p.members).(*messages.Membership)
	changed := false
	for _, mem := range next.Members {
		if inc := p.incarnations[mem.Id]; mem.Role == VoterRole && mem.Incarnation == 0 && inc != 0 {
			mem.Incarnation, changed = inc, true
		}
	}
	if !changed {
		for _, id := range p.voters {
			if inc := p.replaced[id]; inc != 0 && inc != MemberOf(next, id).Incarnation {
				MemberOf(next, id).Incarnation, changed = inc, true
				break
			}
		}
	}
	if !changed {
		return
	}
	next.Version++
	if CheckMembershipChange(p.members, next) != nil {
		return
	}
	payload, _ := proto.Marshal(next)
	p.pendingChange = &messages.Command{Origin: p.cfg.ID, Membership: true, Payload: payload}
}

// stuckBelowTruncation reports whether so many acceptors let go of their
// log past an instance still in flight that no majority can accept it any
// more. The instance is chosen (they applied it from a snapshot), but not
// necessarily with this master's value, and this master cannot learn which
// through phase 2: it steps down, catches up, and may campaign again from
// past the truncation (§5.5). It happens only to a master elected from
// promises given just before the truncation.
func (p *Proposer) stuckBelowTruncation() bool {
	low := uint64(0)
	for i := range p.inflight {
		if low == 0 || i < low {
			low = i
		}
	}
	if low == 0 {
		return false
	}
	gone := 0
	for _, id := range p.voters {
		// A voter that lost its disk cannot accept for its old
		// incarnation either (§5.1).
		if p.truncatedAt[id] >= low || p.replaced[id] != 0 {
			gone++
		}
	}
	return gone > len(p.voters)-p.quorum()
}
