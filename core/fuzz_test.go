package core

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// peerKinds are the messages a replica takes from the network, by the
// index a fuzz input names.
var peerKinds = []func() proto.Message{
	func() proto.Message { return &messages.Prepare{} },
	func() proto.Message { return &messages.Promise{} },
	func() proto.Message { return &messages.Accept{} },
	func() proto.Message { return &messages.Accepted{} },
	func() proto.Message { return &messages.Confirm{} },
	func() proto.Message { return &messages.Confirmed{} },
	func() proto.Message { return &messages.Chosen{} },
	func() proto.Message { return &messages.Heartbeat{} },
	func() proto.Message { return &messages.CatchupRequest{} },
	func() proto.Message { return &messages.CatchupResponse{} },
	func() proto.Message { return &messages.ChecksumReport{} },
}

// FuzzReplicaStep hands a replica of a working group (master or
// follower) arbitrary bytes decoded as each role's messages, stamped with
// the group's cluster hash or not. No input may panic or loop; a message
// the admission checks drop changes nothing (promise, chosen log, master);
// and one a replica takes may stop it (a forged conflicting value is
// refused so) but never stops the test's bookkeeping.
func FuzzReplicaStep(f *testing.F) {
	seeds := []proto.Message{
		&messages.Prepare{From: 1, Ballot: 1<<16 + 1, FirstInstance: 1},
		&messages.Promise{From: 2, Ballot: 1<<16 + 1, Ok: true, Promised: 1<<16 + 1},
		&messages.Accept{From: 1, Ballot: 65537, Entries: []*messages.Entry{{Instance: 3, Ballot: 65537, Value: &messages.Value{Noop: true}}}},
		&messages.Accepted{From: 2, Ballot: 65537, Ok: true, Instances: []uint64{3}},
		&messages.Confirm{From: 1, Ballot: 65537, Seq: 9},
		&messages.Confirmed{From: 2, Ballot: 65537, Ok: true, Seq: 9},
		&messages.Chosen{From: 1, Ballot: 65537, ChosenUpto: 3},
		&messages.Heartbeat{From: 1, Ballot: 65537, ChosenUpto: 3},
		&messages.CatchupRequest{From: 2, FirstInstance: 1, MaxEntries: 10},
		&messages.CatchupResponse{From: 2, ChosenUpto: 3, Entries: []*messages.Entry{{Instance: 2, Value: &messages.Value{Noop: true}}}},
		&messages.ChecksumReport{From: 2, Instance: 1, Checksum: []byte{1, 2, 3, 4}},
	}
	for i, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), uint8(0), true, b)
		f.Add(uint8(i), uint8(1), true, b)
	}
	f.Fuzz(func(t *testing.T, kind, to uint8, stamp bool, raw []byte) {
		msg := peerKinds[int(kind)%len(peerKinds)]()
		if proto.Unmarshal(raw, msg) != nil {
			return
		}
		if stamp {
			messages.StampCluster(msg, testClusterHash)
		}
		c := newTestCluster(t, 3, 1)
		c.stopsAllowed = true
		m := c.waitMaster()
		c.submit(m, "before")
		c.advance(100 * time.Millisecond)
		n := m // to 0: the master; otherwise a follower
		if to%3 != 0 {
			n = c.others(m)[int(to)%2]
		}
		r := n.r()
		promised, known, master, drops := r.Promised(), r.KnownChosen(), r.MasterID(), totalDrops(r)
		n.d.Step(msg)
		if totalDrops(r) > drops && (r.Promised() != promised || r.KnownChosen() != known || r.MasterID() != master) {
			t.Fatalf("a dropped %T changed node %d: promised %d->%d, known chosen %d->%d, master %d->%d",
				msg, n.id, promised, r.Promised(), known, r.KnownChosen(), master, r.MasterID())
		}
		c.run()
		c.advance(300 * time.Millisecond)
	})
}

func totalDrops(r *Replica) (n uint64) {
	for _, d := range r.PeerDrops() {
		n += d
	}
	return n
}
