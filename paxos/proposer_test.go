package paxos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

func newTestProposer(id uint32, maxBatch, window int) *Proposer {
	return NewProposer(ProposerConfig{ID: id, Peers: []uint32{1, 2, 3}, MaxBatchCommands: maxBatch,
		MaxInflight: window, Rand: rand.New(rand.NewPCG(1, 2))}, t0)
}

// elect drives a proposer through phase 1 with the given promises.
func elect(t *testing.T, p *Proposer, promises func(ballot uint64) []*messages.Promise) ProposerOutput {
	t.Helper()
	prep := prepareOf(campaignTick(p, t0.Add(10*time.Second)))
	if prep == nil {
		t.Fatal("no prepare after the election timeout")
	}
	var last ProposerOutput
	for _, pr := range promises(prep.Ballot) {
		last = p.Step(pr, t0.Add(10*time.Second))
	}
	// Its own acceptor's promise, which a master waits for (its ballot is
	// then durable at home), last, so the peers' promises above all count.
	last = p.Step(&messages.Promise{From: p.cfg.ID, Ballot: prep.Ballot, Ok: true}, t0.Add(10*time.Second))
	if !p.IsMaster() {
		t.Fatal("not master after a quorum of promises")
	}
	return last
}

// electBy12 elects p with empty promises from voters 1 and 2.
func electBy12(t *testing.T, p *Proposer) ProposerOutput {
	t.Helper()
	return elect(t, p, func(b uint64) []*messages.Promise {
		return []*messages.Promise{{From: 1, Ballot: b, Ok: true}, {From: 2, Ballot: b, Ok: true}}
	})
}

// prepareOf returns the Prepare among out's messages, or nil.
func prepareOf(out ProposerOutput) *messages.Prepare {
	for _, e := range out.Messages {
		if m, ok := e.Msg.(*messages.Prepare); ok {
			return m
		}
	}
	return nil
}

// ackEpochStart has voters 1 and 2 accept a new master's first instance (the
// start of its epoch), so the pipeline is empty again.
func ackEpochStart(p *Proposer) {
	for _, from := range []uint32{1, 2} {
		p.Step(&messages.Accepted{From: from, Ballot: p.Ballot(), Ok: true, Promised: p.Ballot(), Instances: []uint64{p.Epoch()}}, t0)
	}
}

func accepts(out ProposerOutput, to uint32) []*messages.Entry {
	var es []*messages.Entry
	for _, e := range out.Messages {
		if m, ok := e.Msg.(*messages.Accept); ok && e.To == to {
			es = append(es, m.Entries...)
		}
	}
	return es
}

func TestPaper4_PromiseCarryingAcceptedValueForcesReproposal(t *testing.T) {
	p := newTestProposer(1, 8, 8)
	older, newer := NextBallot(0, 2), NextBallot(BallotStride, 3)
	out := elect(t, p, func(b uint64) []*messages.Promise {
		return []*messages.Promise{
			{From: 2, Ballot: b, Ok: true, Accepted: []*messages.Entry{
				entry(1, older, "stale"), entry(3, older, "only-at-2")}},
			{From: 3, Ballot: b, Ok: true, Accepted: []*messages.Entry{entry(1, newer, "winner")}},
		}
	})
	es := accepts(out, 2)
	if len(es) != 4 {
		t.Fatalf("proposed %d instances, want 4 (1..3 re-proposed, 4 starts the epoch)", len(es))
	}
	if !es[3].Value.StartsEpoch || p.Epoch() != 4 {
		t.Fatalf("instance 4 = %v, epoch %d: want the epoch's start at 4", es[3].Value, p.Epoch())
	}
	es = es[:3]
	want := [][]string{{"winner"}, {"<noop>"}, {"only-at-2"}}
	for i, e := range es {
		if e.Instance != uint64(i+1) || e.Ballot != p.Ballot() || !slices.Equal(payloads(e.Value), want[i]) {
			t.Fatalf("instance %d: %v under ballot %d, want %v under %d", e.Instance, payloads(e.Value), e.Ballot, want[i], p.Ballot())
		}
	}
	// New commands go after the re-proposed instances.
	p.Submit(cmd(1, 1, "fresh"))
	out = p.Flush(t0.Add(10 * time.Second))
	if es := accepts(out, 2); len(es) != 1 || es[0].Instance != 5 || es[0].Value.Commands[0].Epoch != 4 {
		t.Fatalf("fresh command proposed at %v", instancesOf(es))
	}
}

func TestPaper4_GapsAreFilledWithNoops(t *testing.T) {
	p := newTestProposer(1, 8, 8)
	b := NextBallot(0, 2)
	out := elect(t, p, func(bal uint64) []*messages.Promise {
		return []*messages.Promise{{From: 2, Ballot: bal, Ok: true, Accepted: []*messages.Entry{entry(4, b, "x")}},
			{From: 3, Ballot: bal, Ok: true}}
	})
	es := accepts(out, 3)
	for i, e := range es[:3] {
		if e.Instance != uint64(i+1) || !e.Value.Noop {
			t.Fatalf("instance %d = %v, want a no-op", e.Instance, payloads(e.Value))
		}
	}
	if payloads(es[3].Value)[0] != "x" {
		t.Fatalf("instance 4 = %v", payloads(es[3].Value))
	}
}

func TestPaper4_BatchingAndBoundedPipeline(t *testing.T) {
	p := newTestProposer(1, 4, 2)
	electBy12(t, p)
	ackEpochStart(p)
	for i := range 10 {
		p.Submit(cmd(1, uint64(i), fmt.Sprint(i)))
	}
	out := p.Flush(t0)
	es := accepts(out, 2)
	if len(es) != 2 || len(es[0].Value.Commands) != 4 || len(es[1].Value.Commands) != 4 {
		t.Fatalf("proposed %d instances of %v commands; want 2 of 4 (window 2, batch 4)", len(es), len(es[0].Value.Commands))
	}
	if p.InflightLen() != 2 || p.QueueLen() != 2 {
		t.Fatalf("inflight %d queue %d", p.InflightLen(), p.QueueLen())
	}
	// Nothing more until an instance is chosen.
	if es := accepts(p.Flush(t0), 2); len(es) != 0 {
		t.Fatal("proposed beyond the pipeline window")
	}
	for _, from := range []uint32{1, 2} {
		p.Step(&messages.Accepted{From: from, Ballot: p.Ballot(), Ok: true, Promised: p.Ballot(), Instances: []uint64{2}}, t0)
	}
	if p.ChosenUpto() != 2 || !p.NeedsFlush() {
		t.Fatalf("chosenUpto %d needsFlush %v", p.ChosenUpto(), p.NeedsFlush())
	}
	out = p.Flush(t0)
	if es := accepts(out, 2); len(es) != 1 || len(es[0].Value.Commands) != 2 || es[0].Instance != 4 {
		t.Fatalf("after a slot freed: %v", instancesOf(es))
	}
	var notice *messages.Chosen
	for _, e := range out.Messages {
		if m, ok := e.Msg.(*messages.Chosen); ok {
			notice = m
		}
	}
	if notice == nil || notice.ChosenUpto != 2 {
		t.Fatalf("chosen notice %v", notice)
	}
}

func TestProposerQueueIsBounded(t *testing.T) {
	p := NewProposer(ProposerConfig{ID: 1, Peers: []uint32{1, 2, 3}, MaxQueue: 2}, t0)
	electBy12(t, p)
	p.Submit(cmd(1, 1, "a"))
	p.Submit(cmd(1, 2, "b"))
	out := p.Submit(cmd(1, 3, "c"))
	if len(out.Replies) != 1 || out.Replies[0].Response.Code != messages.ErrorCode_ERROR_CODE_OVERLOADED {
		t.Fatalf("third submit: %v", out.Replies)
	}
}

// The queue is bounded in bytes too: commands whose payloads would pass
// MaxQueueBytes are refused as overloaded, whatever their number.
func TestProposerQueueIsBoundedInBytes(t *testing.T) {
	p := NewProposer(ProposerConfig{ID: 1, Peers: []uint32{1, 2, 3}, MaxQueueBytes: 10}, t0)
	electBy12(t, p)
	p.Submit(cmd(1, 1, "123456"))
	if out := p.Submit(cmd(1, 2, "12345")); len(out.Replies) != 1 || out.Replies[0].Response.Code != messages.ErrorCode_ERROR_CODE_OVERLOADED {
		t.Fatalf("a command past the byte bound: %v", out.Replies)
	}
	if out := p.Submit(cmd(1, 3, "1234")); len(out.Replies) != 0 || p.QueueLen() != 2 {
		t.Fatalf("a command within the byte bound: %v, queue %d", out.Replies, p.QueueLen())
	}
}

func TestProposerRefusesWhenNotMaster(t *testing.T) {
	p := newTestProposer(2, 4, 4)
	p.Step(&messages.Heartbeat{From: 1, Ballot: NextBallot(0, 1)}, t0)
	out := p.Submit(cmd(2, 7, "x"))
	if len(out.Replies) != 1 || out.Replies[0].Response.Code != messages.ErrorCode_ERROR_CODE_NOT_MASTER ||
		out.Replies[0].Response.MasterId != 1 {
		t.Fatalf("submit to a follower: %v", out.Replies)
	}
}

func TestProposerStepsDownOnHigherBallot(t *testing.T) {
	p := newTestProposer(1, 4, 4)
	electBy12(t, p)
	p.Submit(cmd(1, 1, "queued-a"))
	p.Flush(t0)
	p.Submit(cmd(1, 2, "queued-b"))
	higher := NextBallot(p.Ballot(), 3)
	out := p.Step(&messages.Accepted{From: 2, Ballot: p.Ballot(), Promised: higher}, t0)
	if p.IsMaster() {
		t.Fatal("still master after a higher ballot")
	}
	codes := map[messages.ErrorCode]int{}
	for _, r := range out.Replies {
		codes[r.Response.Code]++
	}
	if codes[messages.ErrorCode_ERROR_CODE_NOT_MASTER] != 1 || codes[messages.ErrorCode_ERROR_CODE_OUTCOME_UNKNOWN] != 1 {
		t.Fatalf("replies on step-down: %v (queued: not master; in flight: outcome unknown)", codes)
	}
	if p.Ballot() < higher {
		t.Fatal("the higher ballot was not remembered")
	}
}

func TestProposerRetransmitsToSilentPeers(t *testing.T) {
	p := newTestProposer(1, 4, 4)
	electBy12(t, p)
	p.Submit(cmd(1, 1, "x"))
	p.Flush(t0)
	p.Step(&messages.Accepted{From: 1, Ballot: p.Ballot(), Ok: true, Promised: p.Ballot(), Instances: []uint64{1, 2}}, t0)
	out := p.Tick(t0.Add(time.Second))
	if len(accepts(out, 1)) != 0 || len(accepts(out, 2)) != 1 || len(accepts(out, 3)) != 1 {
		t.Fatalf("retransmission went to the wrong peers: %v", out.Messages)
	}
}

func TestProposerDuplicateAndLateMessagesChangeNothing(t *testing.T) {
	p := newTestProposer(1, 4, 4)
	var bal uint64
	elect(t, p, func(b uint64) []*messages.Promise {
		bal = b
		return []*messages.Promise{{From: 1, Ballot: b, Ok: true}, {From: 2, Ballot: b, Ok: true}}
	})
	p.Submit(cmd(1, 1, "x"))
	p.Flush(t0)
	ack := &messages.Accepted{From: 2, Ballot: bal, Ok: true, Promised: bal, Instances: []uint64{1}}
	p.Step(ack, t0)
	p.Step(proto.Clone(ack).(*messages.Accepted), t0) // duplicate: still one vote
	if p.ChosenUpto() != 0 {
		t.Fatal("a duplicate acknowledgement counted twice")
	}
	// A late promise for the finished campaign does nothing.
	if out := p.Step(&messages.Promise{From: 3, Ballot: bal, Ok: true}, t0); len(out.Messages) != 0 || !p.IsMaster() {
		t.Fatalf("late promise: %v", out)
	}
}

func TestProposerCountsOnlyVoters(t *testing.T) {
	p := newTestProposer(1, 4, 4)
	out := campaignTick(p, t0.Add(10*time.Second))
	b := out.Messages[0].Msg.(*messages.Prepare).Ballot
	p.Step(&messages.Promise{From: 1, Ballot: b, Ok: true}, t0)
	p.Step(&messages.Promise{From: 9, Ballot: b, Ok: true}, t0) // not a member
	if p.IsMaster() {
		t.Fatal("a promise from outside the group completed a quorum")
	}
}

func lazyTo(out ProposerOutput) map[uint32]bool {
	lazy := map[uint32]bool{}
	for _, e := range out.Messages {
		if m, ok := e.Msg.(*messages.Accept); ok {
			lazy[e.To] = m.Lazy
		}
	}
	return lazy
}

// Only a majority is asked to accept durably: the master and the follower
// that answered last. When that follower falls silent, the retransmission
// asks the other durably, and from then on it is the one chosen.
func TestPaper4_ThriftyAcceptAsksOnlyAMajorityToSync(t *testing.T) {
	p := newTestProposer(1, 1, 8)
	electBy12(t, p)
	now := t0.Add(10 * time.Second)
	ack := func(from uint32, i uint64, at time.Time) {
		p.Step(&messages.Accepted{From: from, Ballot: p.Ballot(), Ok: true, Promised: p.Ballot(), Instances: []uint64{i}}, at)
	}
	p.Submit(cmd(1, 1, "a"))
	if lazy := lazyTo(p.Flush(now)); lazy[1] || lazy[2] || lazy[3] {
		t.Fatalf("before any follower answered, everyone must sync: %v", lazy)
	}
	ack(1, 1, now)
	ack(3, 1, now)
	ack(2, 1, now.Add(time.Millisecond)) // 2 answered last
	p.Submit(cmd(1, 2, "b"))
	if lazy := lazyTo(p.Flush(now)); lazy[1] || lazy[2] || !lazy[3] {
		t.Fatalf("want master and follower 2 durable, follower 3 lazy: %v", lazy)
	}
	// Follower 2 falls silent: instance 2 waits for a retransmission,
	// which asks follower 3 durably.
	ack(1, 2, now)
	later := now.Add(400 * time.Millisecond) // past the retransmit interval, within the quorum timeout
	if lazy, ok := lazyTo(p.Tick(later))[3]; !ok || lazy {
		t.Fatalf("retransmission to follower 3: sent=%v lazy=%v", ok, lazy)
	}
	ack(3, 2, later)
	if p.ChosenUpto() != 2 {
		t.Fatalf("chosen up to %d", p.ChosenUpto())
	}
	p.Submit(cmd(1, 3, "c"))
	if lazy := lazyTo(p.Flush(later)); lazy[3] || !lazy[2] {
		t.Fatalf("after the switch, want follower 3 durable and 2 lazy: %v", lazy)
	}
}

// §5.5 and §4: a candidate whose learner installed a snapshot while it
// campaigned (past where its phase 1 began) re-proposes only after what
// its learner applied. Those instances are chosen; its own acceptor, whose
// log the snapshot let go of, would acknowledge none of them, and with one
// other voter cut off the chosen prefix never passed them (sim seed
// 24766). The Chosen notices claim nothing at or below them either.
func TestPaper5_5_NewMasterSkipsWhatItsLearnerAppliedWhileCampaigning(t *testing.T) {
	p := newTestProposer(1, 8, 8)
	now := t0.Add(10 * time.Second)
	prep := prepareOf(campaignTick(p, now))
	if prep == nil || prep.FirstInstance != 1 {
		t.Fatalf("prepare %v, want one from instance 1", prep)
	}
	b, older := prep.Ballot, NextBallot(0, 2)
	p.LearnerProgress(5) // a snapshot of instance 5 installed meanwhile
	p.Step(&messages.Promise{From: 2, Ballot: b, Ok: true, Accepted: []*messages.Entry{
		entry(4, older, "in-the-snapshot"), entry(7, older, "after-it")}}, now)
	out := p.Step(&messages.Promise{From: 1, Ballot: b, Ok: true}, now)
	if !p.IsMaster() {
		t.Fatal("not master after a quorum of promises")
	}
	es := accepts(out, 2)
	want := [][]string{{"<noop>"}, {"after-it"}}
	if len(es) != 3 || !es[2].Value.StartsEpoch || p.Epoch() != 8 {
		t.Fatalf("proposed %v (epoch %d), want 6 and 7 re-proposed and the epoch's start at 8", instancesOf(es), p.Epoch())
	}
	for i, e := range es[:2] {
		if e.Instance != uint64(6+i) || !slices.Equal(payloads(e.Value), want[i]) {
			t.Fatalf("instance %d: %v, want %v at %d", e.Instance, payloads(e.Value), want[i], 6+i)
		}
	}
	for _, from := range []uint32{1, 2} {
		p.Step(&messages.Accepted{From: from, Ballot: b, Ok: true, Promised: b, Instances: []uint64{6, 7, 8}}, now)
	}
	if p.ChosenUpto() != 8 {
		t.Fatalf("chosen up to %d after a quorum acknowledged 6 to 8, want 8", p.ChosenUpto())
	}
}

// §5.5: a peer refuses a candidate's Prepare because it let go of its log
// past where the candidate's phase 1 begins. Once the candidate's learner
// has installed that snapshot, it asks again at once, under the same
// ballot, from after it, and wins on the peer's promise (sim seed 1231:
// it asked from the same instance until its election timeout, and writes
// stopped for 3.05 s with the master cut off). The learner is pointed at
// the peer that refused: it knows the chosen prefix and just answered.
func TestPaper5_5_CandidateRefusedBelowAPeersSnapshotAsksAgainOnceCaughtUp(t *testing.T) {
	p := newTestProposer(3, 8, 8)
	p.LearnerProgress(897)
	now := t0.Add(10 * time.Second)
	prep := prepareOf(campaignTick(p, now))
	if prep == nil || prep.FirstInstance != 898 {
		t.Fatalf("prepare %v, want one from 898", prep)
	}
	b := prep.Ballot
	p.Step(&messages.Promise{From: 3, Ballot: b, Ok: true}, now)
	p.Step(&messages.Promise{From: 1, Ballot: b, Promised: b - 1, ChosenUpto: 899, Truncated: 899}, now)
	if again := prepareOf(p.Tick(now.Add(time.Millisecond))); again != nil {
		t.Fatalf("asked again (%v) before its learner caught up", again)
	}
	l := NewLearner(LearnerConfig{ID: 3, Peers: []uint32{1, 2, 3}})
	l.HandleChosen(&messages.Chosen{From: 2, Ballot: NextBallot(0, 2), ChosenUpto: 899}, now) // the old master, cut off since
	l.NoteChosenAt(899, 1, now)
	var asked uint32
	for _, e := range l.Tick(now.Add(200 * time.Millisecond)).Messages {
		if _, ok := e.Msg.(*messages.CatchupRequest); ok {
			asked = e.To
		}
	}
	if asked != 1 {
		t.Fatalf("the learner asked node %d to catch up, want node 1, which refused the prepare", asked)
	}
	p.LearnerProgress(899) // node 1's snapshot installed
	out := p.Tick(now.Add(2 * time.Millisecond))
	again := prepareOf(out)
	if again == nil || again.FirstInstance != 900 || again.Ballot != b {
		t.Fatalf("after catching up: prepare %v, want one from 900 under ballot %d at once", again, b)
	}
	p.Step(&messages.Promise{From: 1, Ballot: b, Ok: true, Promised: b, ChosenUpto: 899, Truncated: 899}, now)
	p.Step(&messages.Promise{From: 3, Ballot: b, Ok: true, Truncated: 899}, now)
	if !p.IsMaster() || p.Epoch() != 900 {
		t.Fatalf("master %v, epoch %d: want master with its epoch starting at 900", p.IsMaster(), p.Epoch())
	}
}
