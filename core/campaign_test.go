package core

import (
	"testing"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// Issue 14: a follower holds its own election off only for a campaign its
// acceptor takes part in: one it promised, or refused only for the lease it
// still holds. A candidate refused for being behind the log's truncation
// (it must catch up first, maybe a long snapshot transfer), for a lower
// ballot, or its own Prepare, must not keep this node from electing anyone.
func TestFollowerDefersOnlyToACampaignItsAcceptorSupports(t *testing.T) {
	prep := &messages.Prepare{From: 3, Ballot: 20, FirstInstance: 898}
	answer := func(pr *messages.Promise) *paxos.Envelope { return &paxos.Envelope{To: 3, Msg: pr} }
	for _, tc := range []struct {
		what  string
		self  uint32
		reply *paxos.Envelope
		want  bool
	}{
		{"promised", 1, answer(&messages.Promise{Ok: true, Promised: 20}), true},
		{"refused for a lease held", 1, answer(&messages.Promise{Leased: true, Promised: 11, Truncated: 500}), true},
		{"refused as behind the truncation", 1, answer(&messages.Promise{Promised: 11, Truncated: 899}), false},
		{"refused for a lease, but also behind", 1, answer(&messages.Promise{Leased: true, Promised: 11, Truncated: 898}), false},
		{"refused for a higher promise", 1, answer(&messages.Promise{Promised: 25}), false},
		{"refused for a lease at a higher promise", 1, answer(&messages.Promise{Leased: true, Promised: 25}), false},
		{"its own Prepare", 3, answer(&messages.Promise{Ok: true, Promised: 20}), false},
		{"no answer", 1, nil, false},
	} {
		if got := supportsCampaign(tc.self, prep, tc.reply); got != tc.want {
			t.Errorf("%s: supports %v, want %v", tc.what, got, tc.want)
		}
	}
}
