package paxos

import (
	"time"

	"github.com/livepaxos/livepaxos/messages"
)

var t0 = time.Unix(1_000_000, 0)

func cmd(origin uint32, id uint64, payload string) *messages.Command {
	return &messages.Command{Origin: origin, ReplyAddress: "client", ReplyId: "c", RequestId: id, Payload: []byte(payload)}
}

func value(payloads ...string) *messages.Value {
	v := &messages.Value{}
	for i, p := range payloads {
		v.Commands = append(v.Commands, cmd(9, uint64(i), p))
	}
	return v
}

// payloads flattens a value into its commands' payloads ("<noop>" for a
// no-op), for readable comparisons.
func payloads(v *messages.Value) []string {
	if v.GetNoop() {
		return []string{"<noop>"}
	}
	var out []string
	for _, c := range v.GetCommands() {
		out = append(out, string(c.Payload))
	}
	return out
}

// The lease the tests' roles use (§5.2).
const (
	testLease = 2 * time.Second
	testDrift = 100 * time.Millisecond
)

// campaignTick ticks a follower past its election timeout and, if it asks
// for a pre-vote, answers yes from the first other voter, so that it
// campaigns: the output holds its prepares.
func campaignTick(p *Proposer, now time.Time) ProposerOutput {
	out := p.Tick(now)
	for _, e := range out.Messages {
		if m, ok := e.Msg.(*messages.PreVote); ok {
			return p.Step(&messages.PreVoted{From: e.To, Ballot: m.Ballot, Ok: true}, now)
		}
	}
	return out
}
