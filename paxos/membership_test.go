package paxos

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

func membership(version uint64, voters []uint32, learners ...uint32) *messages.Membership {
	m := &messages.Membership{Version: version}
	for _, id := range voters {
		m.Members = append(m.Members, &messages.Member{Id: id, Role: VoterRole})
	}
	for _, id := range learners {
		m.Members = append(m.Members, &messages.Member{Id: id, Role: LearnerRole})
	}
	return m
}

func withInc(m *messages.Membership, id uint32, inc uint64) *messages.Membership {
	m = proto.Clone(m).(*messages.Membership)
	MemberOf(m, id).Incarnation = inc
	return m
}

func TestCheckMembershipChangeRules(t *testing.T) {
	cur := withInc(membership(3, []uint32{1, 2, 3}, 4), 1, 11) // voter 1 recorded, 2 and 3 not yet
	next := func(edit func(m *messages.Membership)) *messages.Membership {
		m := proto.Clone(cur).(*messages.Membership)
		m.Version++
		edit(m)
		return m
	}
	role := func(id uint32, r string) func(*messages.Membership) {
		return func(m *messages.Membership) { MemberOf(m, id).Role = r }
	}
	add := func(id uint32, r string) func(*messages.Membership) {
		return func(m *messages.Membership) { m.Members = append(m.Members, &messages.Member{Id: id, Role: r}) }
	}
	inc := func(id uint32, v uint64) func(*messages.Membership) {
		return func(m *messages.Membership) { MemberOf(m, id).Incarnation = v }
	}
	both := func(f, g func(*messages.Membership)) func(*messages.Membership) {
		return func(m *messages.Membership) { f(m); g(m) }
	}
	for _, tc := range []struct {
		name string
		next *messages.Membership
		ok   bool
	}{
		{"learner added", next(add(5, LearnerRole)), true},
		{"learner promoted", next(role(4, VoterRole)), true},
		{"voter demoted", next(role(3, LearnerRole)), true},
		{"version skipped", func() *messages.Membership { m := next(add(5, LearnerRole)); m.Version++; return m }(), false},
		{"two voters added", next(both(role(4, VoterRole), add(5, VoterRole))), false},
		{"one out, one in", next(both(role(4, VoterRole), role(3, LearnerRole))), false},
		{"incarnations recorded", next(both(inc(2, 22), inc(3, 33))), true},
		{"one incarnation replaced", next(inc(1, 12)), true},
		{"replaced and demoted", next(both(inc(1, 12), role(3, LearnerRole))), false},
		{"no voter left", next(func(m *messages.Membership) {
			for _, mem := range m.Members {
				mem.Role = LearnerRole
			}
		}), false},
		{"id twice", next(add(2, LearnerRole)), false},
	} {
		err := CheckMembershipChange(cur, tc.next)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrMembership)) {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// §5.1: an acceptor started on an empty disk answers only requests that
// name its own incarnation; the first one ends its freshness, and from then
// on it answers like any other. A request naming another incarnation (the
// one the group recorded before the disk was lost) is refused, naming its
// own.
func TestPaper5_1_FreshAcceptorAnswersOnlyItsIncarnation(t *testing.T) {
	a := NewAcceptor(2)
	a.SetIncarnation(7, true)
	prepare := func(ballot, to uint64) (*messages.Promise, AcceptorOutput) {
		out := a.HandlePrepare(&messages.Prepare{From: 1, Ballot: ballot, FirstInstance: 1, ToIncarnation: to}, t0)
		return out.Reply.Msg.(*messages.Promise), out
	}
	if pr, _ := prepare(NextBallot(0, 1), 0); pr.Ok || !pr.Fresh || !pr.Empty || pr.Incarnation != 7 {
		t.Fatalf("fresh acceptor, request naming none: %v", pr)
	}
	if pr, _ := prepare(NextBallot(0, 1), 8); pr.Ok || pr.Incarnation != 7 {
		t.Fatalf("request naming another incarnation: %v", pr)
	}
	pr, out := prepare(NextBallot(0, 1), 7)
	if !pr.Ok || pr.Fresh || !out.Proven || a.Fresh() {
		t.Fatalf("request naming its incarnation: %v, proven %v", pr, out.Proven)
	}
	if pr, _ := prepare(NextBallot(NextBallot(0, 1), 3), 0); !pr.Ok {
		t.Fatalf("no longer fresh, request naming none: %v", pr)
	}
	if pr, _ := prepare(NextBallot(NextBallot(NextBallot(0, 1), 3), 1), 8); pr.Ok {
		t.Fatalf("proven, request naming another incarnation: %v", pr)
	}
}

// §5.1: a candidate of a brand-new group (every voter fresh and empty)
// names their incarnations in its prepare once every one has refused as
// fresh and empty, and carries them as the bootstrap set.
func TestPaper5_1_BootstrapPollNamesIncarnations(t *testing.T) {
	p := NewProposer(ProposerConfig{ID: 1, Peers: []uint32{1, 2, 3}, Incarnation: 101, Fresh: true}, t0)
	out := campaignTick(p, t0.Add(5*time.Second))
	if p.State() != "candidate" || len(out.Messages) != 3 {
		t.Fatalf("no campaign: %s, %d messages", p.State(), len(out.Messages))
	}
	b := p.Ballot()
	var again []Envelope
	for id, inc := range map[uint32]uint64{1: 101, 2: 102, 3: 103} {
		o := p.Step(&messages.Promise{From: id, Ballot: b, Incarnation: inc, Fresh: true, Empty: true}, t0.Add(5*time.Second))
		again = append(again, o.Messages...)
	}
	if len(again) != 3 {
		t.Fatalf("after the poll: %d prepares, want 3", len(again))
	}
	for _, e := range again {
		pr := e.Msg.(*messages.Prepare)
		if pr.ToIncarnation != 100+uint64(e.To) || len(pr.Bootstrap) != 3 {
			t.Fatalf("prepare to %d: names %d, bootstrap %v", e.To, pr.ToIncarnation, pr.Bootstrap)
		}
	}
}

// §5.1 for a group restored from a backup at instance 57 (`livepaxos
// restore`): every voter holds the backup's state and has voted for
// nothing, so the brand-new-group poll runs from instance 58. A candidate
// that was not restored (BootstrapFrom unset) never polls from there: an
// ordinary group whose voters all lost their disks must wait.
func TestPaper5_1_RestoredGroupPollsFromAfterTheBackup(t *testing.T) {
	for _, tc := range []struct {
		bootstrapFrom uint64
		polls         bool
	}{{58, true}, {0, false}} {
		p := NewProposer(ProposerConfig{ID: 1, Peers: []uint32{1, 2, 3}, Incarnation: 101, Fresh: true, BootstrapFrom: tc.bootstrapFrom}, t0)
		p.LearnerProgress(57)
		out := campaignTick(p, t0.Add(5*time.Second))
		if p.State() != "candidate" || len(out.Messages) != 3 {
			t.Fatalf("no campaign: %s, %d messages", p.State(), len(out.Messages))
		}
		if first := out.Messages[0].Msg.(*messages.Prepare).FirstInstance; first != 58 {
			t.Fatalf("prepare from %d, want 58", first)
		}
		var again []Envelope
		for id, inc := range map[uint32]uint64{1: 101, 2: 102, 3: 103} {
			o := p.Step(&messages.Promise{From: id, Ballot: p.Ballot(), Incarnation: inc, Fresh: true, Empty: true}, t0.Add(5*time.Second))
			again = append(again, o.Messages...)
		}
		if !tc.polls {
			if len(again) != 0 {
				t.Fatalf("BootstrapFrom %d: %d prepares after fresh refusals at 58; a group not restored must not poll there", tc.bootstrapFrom, len(again))
			}
			continue
		}
		if len(again) != 3 {
			t.Fatalf("after the poll: %d prepares, want 3", len(again))
		}
		for _, e := range again {
			pr := e.Msg.(*messages.Prepare)
			if pr.ToIncarnation != 100+uint64(e.To) || len(pr.Bootstrap) != 3 || pr.FirstInstance != 58 {
				t.Fatalf("prepare to %d: names %d, bootstrap %v, from %d", e.To, pr.ToIncarnation, pr.Bootstrap, pr.FirstInstance)
			}
		}
	}
}

// §5.4: a candidate whose promises report a change of quorum at instance 1
// re-proposes up to it only, with no epoch start; once it is chosen, it
// runs phase 1 again from instance 2 with the new voters, and only then
// re-proposes what they report and starts its epoch.
func TestPaper5_4_CandidateStopsAtChangeOfQuorum(t *testing.T) {
	now := t0.Add(5 * time.Second)
	p := NewProposer(ProposerConfig{ID: 1, Peers: []uint32{1, 2, 3}}, t0)
	campaignTick(p, now)
	b := p.Ballot()
	next, _ := proto.Marshal(membership(2, []uint32{1, 2, 3, 4}))
	change := &messages.Value{Commands: []*messages.Command{{Origin: 2, Membership: true, Payload: next}}}
	old := NextBallot(0, 2)
	out := p.Step(&messages.Promise{From: 1, Ballot: b, Ok: true}, now)
	out = p.Step(&messages.Promise{From: 2, Ballot: b, Ok: true, Accepted: []*messages.Entry{
		{Instance: 1, Ballot: old, Value: change}, {Instance: 2, Ballot: old, Value: value("x")}}}, now)
	if !p.IsMaster() {
		t.Fatal("not master after a majority of promises")
	}
	var accepted []uint64
	for _, e := range out.Messages {
		if acc, ok := e.Msg.(*messages.Accept); ok && e.To == 2 {
			for _, en := range acc.Entries {
				accepted = append(accepted, en.Instance)
			}
		}
	}
	if len(accepted) != 1 || accepted[0] != 1 {
		t.Fatalf("re-proposed %v, want only instance 1 (the change)", accepted)
	}
	if _, ok := p.LeaseUntil(now); ok || p.Epoch() != 0 && p.applied >= p.Epoch() {
		t.Fatal("serves before its epoch started")
	}
	out = p.Step(&messages.Accepted{From: 1, Ballot: b, Ok: true, Instances: []uint64{1}}, now)
	out = p.Step(&messages.Accepted{From: 2, Ballot: b, Ok: true, Instances: []uint64{1}}, now)
	to := map[uint32]bool{}
	var boost uint64
	for _, e := range out.Messages {
		if pr, ok := e.Msg.(*messages.Prepare); ok {
			to[e.To], boost = true, pr.Ballot
			if pr.FirstInstance != 2 {
				t.Fatalf("phase 1 again from %d, want 2", pr.FirstInstance)
			}
		}
	}
	if len(to) != 4 || !to[4] || boost <= b {
		t.Fatalf("phase 1 again to %v under %d, want the four new voters under a ballot above %d", to, boost, b)
	}
	// Three of the four new voters promise; node 4 reports x at 2.
	for _, id := range []uint32{1, 2} {
		p.Step(&messages.Promise{From: id, Ballot: boost, Ok: true}, now)
	}
	out = p.Step(&messages.Promise{From: 4, Ballot: boost, Ok: true, Accepted: []*messages.Entry{
		{Instance: 2, Ballot: old, Value: value("x")}}}, now)
	var got []string
	for _, e := range out.Messages {
		if acc, ok := e.Msg.(*messages.Accept); ok && e.To == 4 {
			for _, en := range acc.Entries {
				switch {
				case en.Value.GetStartsEpoch():
					got = append(got, "epoch-start")
				default:
					got = append(got, payloads(en.Value)...)
				}
			}
		}
	}
	if len(got) != 2 || got[0] != "x" || got[1] != "epoch-start" {
		t.Fatalf("after phase 1 with the new voters: %v, want [x epoch-start]", got)
	}
}

// §5.4: a master whose learner applies a configuration newer than its own
// view, chosen by another master, knows its view is stale: it adopts the
// change if only learners differ, and steps down if the voters differ (its
// instances in flight were counted under the wrong voters). Played as a
// script since sim seed 413 (found as 78226) stopped reaching the moment.
func TestPaper5_4_MasterAppliesAChangeAnotherMasterChose(t *testing.T) {
	p := newTestProposer(1, 4, 4)
	electBy12(t, p)
	now := t0.Add(10 * time.Second)
	p.MembershipApplied(membership(2, []uint32{1, 2, 3}, 4), 5, now)
	if !p.IsMaster() {
		t.Fatal("stepped down for a change that only added a learner")
	}
	if MemberOf(p.members, 4) == nil {
		t.Fatal("the added learner is not in the master's view")
	}
	p.MembershipApplied(membership(2, []uint32{1, 2, 3}, 4), 6, now) // the same version again
	if !p.IsMaster() {
		t.Fatal("stepped down for a configuration it already had")
	}
	p.MembershipApplied(membership(3, []uint32{1, 2, 3, 4}), 7, now)
	if p.IsMaster() {
		t.Fatal("still master after applying another master's change of voters")
	}
}
