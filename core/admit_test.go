package core

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// testClusterHash is the cluster hash of the in-memory test groups.
var testClusterHash = messages.ClusterHash("core-test")

// newWorkingGroup is a 3-node group (seed) whose master was given commands
// one-letter commands and 200 ms to get them chosen; it returns the master
// and a follower.
func newWorkingGroup(t *testing.T, seed uint64, commands int) (c *testCluster, master, follower *node) {
	c = newTestCluster(t, 3, seed)
	master = c.waitMaster()
	for i := range commands {
		c.submit(master, string(rune('a'+i)))
	}
	c.advance(200 * time.Millisecond)
	return c, master, c.others(master)[0]
}

// TestHostilePeerMessagesChangeNothing sends a follower of a working group
// messages no honest member sends: from another cluster, from a stranger or
// from itself, with a ballot its sender does not own, near the top of the
// ballot space, for instance 2^50, entries without a value, a forged
// checksum report. Each is dropped and counted under its reason before
// any role sees it: the follower's promise, its view of the chosen log and
// its master are what they were, and the group goes on choosing.
func TestHostilePeerMessagesChangeNothing(t *testing.T) {
	c, m, f := newWorkingGroup(t, 7, 5)
	b := m.r().Ballot()
	above := paxos.NextBallot(b, m.id) // a ballot the master owns, above its own
	value := &messages.Value{Noop: true}
	entry := func(instance uint64) *messages.Entry {
		return &messages.Entry{Instance: instance, Ballot: b, Value: value}
	}
	cases := []struct {
		name string
		to   *node
		msg  proto.Message
		why  DropReason
	}{
		{"another cluster", f, &messages.Prepare{From: m.id, Ballot: above, Cluster: messages.ClusterHash("other")}, DropCluster},
		{"no cluster", f, &messages.Prepare{From: m.id, Ballot: above}, DropCluster},
		{"a stranger", f, &messages.Prepare{From: 9, Ballot: paxos.NextBallot(b, 9), Cluster: testClusterHash}, DropNotMember},
		{"itself", f, &messages.Prepare{From: f.id, Ballot: paxos.NextBallot(b, f.id), Cluster: testClusterHash}, DropNotMember},
		{"a ballot another node owns", f, &messages.Prepare{From: m.id, Ballot: paxos.NextBallot(b, 9), Cluster: testClusterHash}, DropBallotOwner},
		{"a heartbeat under another's ballot", f, &messages.Heartbeat{From: m.id, Ballot: paxos.NextBallot(b, 9), ChosenUpto: 1 << 40, Cluster: testClusterHash}, DropBallotOwner},
		{"a ballot at the top", f, &messages.Prepare{From: m.id, Ballot: paxos.NextBallot(paxos.MaxBallot, m.id), Cluster: testClusterHash}, DropBounds},
		{"an instance 2^50", f, &messages.Accept{From: m.id, Ballot: above, Entries: []*messages.Entry{entry(1 << 50)}, Cluster: testClusterHash}, DropBounds},
		{"an entry without a value", f, &messages.Accept{From: m.id, Ballot: above, Entries: []*messages.Entry{{Instance: 100, Ballot: above}}, Cluster: testClusterHash}, DropBounds},
		{"an entry without an instance", f, &messages.Accept{From: m.id, Ballot: above, Entries: []*messages.Entry{entry(0)}, Cluster: testClusterHash}, DropBounds},
		{"a catch-up answer without values", f, &messages.CatchupResponse{From: m.id, Entries: []*messages.Entry{{Instance: 100}}, ChosenUpto: 100, Cluster: testClusterHash}, DropBounds},
		{"a stranger's catch-up answer", f, &messages.CatchupResponse{From: 9, Entries: []*messages.Entry{entry(100)}, ChosenUpto: 100, Cluster: testClusterHash}, DropNotMember},
		{"a stranger's checksum", f, &messages.ChecksumReport{From: 9, Instance: 1, Checksum: []byte{1}, Cluster: testClusterHash}, DropNotMember},
		{"a promise of the top ballot", m, &messages.Promise{From: f.id, Ballot: b, Ok: true, Promised: paxos.MaxBallot + 1, Cluster: testClusterHash}, DropBounds},
		{"a promise page that ends before it begins", m, &messages.Promise{From: f.id, Ballot: b, Ok: true, Promised: b,
			FirstInstance: 10, AcceptedUpto: 9, Cluster: testClusterHash}, DropBounds},
		{"a promise page that names no beginning", m, &messages.Promise{From: f.id, Ballot: b, Ok: true, Promised: b,
			AcceptedUpto: 9, Cluster: testClusterHash}, DropBounds},
		{"a promise page with an entry past its end", m, &messages.Promise{From: f.id, Ballot: b, Ok: true, Promised: b,
			FirstInstance: 10, AcceptedUpto: 12, Accepted: []*messages.Entry{entry(11), entry(13)}, Cluster: testClusterHash}, DropBounds},
		{"a promise with an entry below its first instance", m, &messages.Promise{From: f.id, Ballot: b, Ok: true, Promised: b,
			FirstInstance: 10, Accepted: []*messages.Entry{entry(9)}, Cluster: testClusterHash}, DropBounds},
		{"a promise that lists an instance twice", m, &messages.Promise{From: f.id, Ballot: b, Ok: true, Promised: b,
			FirstInstance: 10, Accepted: []*messages.Entry{entry(11), entry(11)}, Cluster: testClusterHash}, DropBounds},
		{"a promise with a lease of days", m, &messages.Promise{From: f.id, Ballot: b, Leased: true, LeaseRemainingUs: uint64(48 * time.Hour / time.Microsecond), Cluster: testClusterHash}, DropBounds},
	}
	for _, tc := range cases {
		promised, known, master := tc.to.r().Promised(), tc.to.r().KnownChosen(), tc.to.r().MasterID()
		before := tc.to.r().PeerDrops()[tc.why]
		tc.to.d.Step(tc.msg)
		c.run()
		if got := tc.to.r().PeerDrops()[tc.why]; got != before+1 {
			t.Errorf("%s: %q drops %d, want %d (drops: %v)", tc.name, tc.why, got, before+1, tc.to.r().PeerDrops())
		}
		if tc.to.r().Promised() != promised || tc.to.r().KnownChosen() != known || tc.to.r().MasterID() != master {
			t.Errorf("%s changed node %d: promised %d->%d, known chosen %d->%d, master %d->%d", tc.name, tc.to.id,
				promised, tc.to.r().Promised(), known, tc.to.r().KnownChosen(), master, tc.to.r().MasterID())
		}
	}
	// The same kind of message, well formed, is taken: the checks above
	// refuse what is wrong, not the kind.
	drops := f.r().PeerDrops()
	f.d.Step(&messages.Heartbeat{From: m.id, Ballot: b, ChosenUpto: m.r().KnownChosen(), Cluster: testClusterHash})
	c.run()
	if got := f.r().PeerDrops(); len(got) != len(drops) || f.r().MasterID() != m.id {
		t.Fatalf("a well-formed heartbeat was dropped: %v (before %v)", got, drops)
	}
	if st := f.r().Status(c.now); st.PeerDrops[string(DropBounds)] == 0 {
		t.Fatalf("status reports no drops: %v", st.PeerDrops)
	}
	n := len(f.entries)
	c.submit(m, "after")
	c.advance(200 * time.Millisecond)
	if len(f.entries) <= n || c.master() != m {
		t.Fatalf("the group stopped: %d entries applied on node %d (before %d), master %v", len(f.entries), f.id, n, c.master())
	}
}

// Catch-up requests are served at most CatchupRequestsPerSecond a second
// to each member, and to all non-members together: a flood from forged ids
// costs a bounded number of answers and takes nothing from the members'
// share.
func TestCatchupRequestsAreRateLimited(t *testing.T) {
	c := newTestCluster(t, 3, 7)
	m := c.waitMaster()
	f := c.others(m)[0]
	ask := func(from uint32) {
		f.d.Step(&messages.CatchupRequest{From: from, FirstInstance: 1, MaxEntries: 1, Cluster: testClusterHash})
	}
	for i := range 3 * CatchupRequestsPerSecond {
		ask(uint32(100 + i)) // strangers, each a new id
	}
	if got := f.r().PeerDrops()[DropRate]; got != 2*CatchupRequestsPerSecond {
		t.Fatalf("%d of %d strangers' catch-up requests dropped, want %d", got, 3*CatchupRequestsPerSecond, 2*CatchupRequestsPerSecond)
	}
	before := f.r().PeerDrops()[DropRate]
	for range CatchupRequestsPerSecond {
		ask(m.id)
	}
	if got := f.r().PeerDrops()[DropRate]; got != before {
		t.Fatalf("a member's catch-up requests were dropped (%d) after a strangers' flood", got-before)
	}
	c.advance(time.Second) // the bucket refills with time
	before = f.r().PeerDrops()[DropRate]
	ask(200)
	if got := f.r().PeerDrops()[DropRate]; got != before {
		t.Fatal("a stranger's request a second after the flood was dropped")
	}
}

// A catch-up response is taken only as the answer to a request, and only
// if it agrees with what the replica knows a quorum chose: its learner
// applies the entries as chosen, so a forged one, even from a member, must
// be refused (and counted), never applied, never a reason to stop.
func TestCatchupResponsesAreCheckedAgainstWhatAQuorumChose(t *testing.T) {
	c, m, f := newWorkingGroup(t, 11, 3)
	held := f.r().l.ChosenAt(1)
	if held == nil {
		t.Fatal("the follower holds no chosen value at instance 1")
	}
	forged := &messages.Value{Commands: []*messages.Command{{Payload: []byte("forged")}}}
	response := func(from uint32, upto uint64, entries ...*messages.Entry) *messages.CatchupResponse {
		return &messages.CatchupResponse{From: from, ChosenUpto: upto, Entries: entries, Cluster: testClusterHash}
	}
	step := func(name string, msg *messages.CatchupResponse, why DropReason) {
		t.Helper()
		before, contiguous := f.r().PeerDrops()[why], f.r().l.Contiguous()
		f.d.Step(msg)
		c.run()
		if got := f.r().PeerDrops()[why]; got != before+1 {
			t.Errorf("%s: %q drops %d, want %d (drops: %v)", name, why, got, before+1, f.r().PeerDrops())
		}
		if f.down || f.r().l.Contiguous() != contiguous || !proto.Equal(f.r().l.ChosenAt(1).Value, held.Value) {
			t.Errorf("%s changed the follower: down %v, contiguous %d -> %d", name, f.down, contiguous, f.r().l.Contiguous())
		}
	}
	if f.r().l.Asked(m.id) {
		t.Fatal("the follower has a catch-up request to the master outstanding already")
	}
	step("an answer to no request", response(m.id, 100, &messages.Entry{Instance: 100, Ballot: 1, Value: forged}), DropUnsolicited)

	// Cut the follower's inbound links: its idle learner asks each peer in
	// turn (CatchupInterval), and no answer comes back.
	for _, o := range c.others(f) {
		c.cut[[2]uint32{o.id, f.id}] = true
	}
	for end := c.now.Add(10 * time.Second); !(f.r().l.Asked(m.id)); {
		if !c.now.Before(end) {
			t.Fatal("the follower never asked the master for catch-up")
		}
		c.advance(100 * time.Millisecond)
	}
	step("another value for an instance it holds chosen", response(m.id, 1, &messages.Entry{Instance: 1, Ballot: held.Ballot, Value: forged}), DropContradicts)
	step("entries with a gap", response(m.id, 1000, &messages.Entry{Instance: 500, Ballot: 1, Value: forged}, &messages.Entry{Instance: 502, Ballot: 1, Value: forged}), DropBounds)
	step("an entry past the chosen prefix it claims", response(m.id, 10, &messages.Entry{Instance: 11, Ballot: 1, Value: forged}), DropBounds)
	if !f.r().l.Asked(m.id) {
		t.Fatal("refused answers counted as the answer to the request")
	}

	// An answer that contradicts nothing the follower knows, from a member
	// that is not the master it follows, is admitted but not applied on
	// that member's word alone: the learner waits for another peer to
	// send the same value (paxos.Learner.confirmedBy).
	other := c.others(f)[0]
	if other == m {
		other = c.others(f)[1]
	}
	for end := c.now.Add(10 * time.Second); !f.r().l.Asked(other.id); {
		if !c.now.Before(end) {
			t.Fatalf("the follower never asked node %d for catch-up", other.id)
		}
		c.advance(100 * time.Millisecond)
	}
	next := f.r().l.Contiguous() + 1
	f.d.Step(response(other.id, next, &messages.Entry{Instance: next, Ballot: held.Ballot + 1, Value: forged}))
	c.run()
	if f.r().l.Contiguous() >= next || f.r().l.ChosenAt(next) != nil {
		t.Fatalf("one member's unconfirmed word was applied at instance %d", next)
	}
}
