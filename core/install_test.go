package core

import (
	"errors"
	"testing"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// §5.5, hostile peers (issue 15): a peer's snapshot is installed only if
// its handle is one this replica could come to: a well-formed
// configuration no older than the one applied here (the same version
// being the same configuration) and an epoch no older. Anything else is
// refused before the state machine's state is replaced.
func TestPaper5_5_SnapshotWithAnImpossibleHandleIsRefused(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	d := c.nodes[1].d
	for _, tc := range []struct {
		name string
		meta *messages.SnapshotMeta
		ok   bool
	}{
		{"same configuration", &messages.SnapshotMeta{Instance: 50, MembershipVersion: 1, Members: voters(1, 2, 3)}, true},
		{"a later configuration", &messages.SnapshotMeta{Instance: 60, MembershipVersion: 2, Members: voters(1, 2, 3, 4)}, true},
		{"the same version, other members", &messages.SnapshotMeta{Instance: 70, MembershipVersion: 2, Members: voters(1, 2, 5)}, false},
		{"an older version", &messages.SnapshotMeta{Instance: 70, MembershipVersion: 1, Members: voters(1, 2, 3)}, false},
		{"no voter", &messages.SnapshotMeta{Instance: 70, MembershipVersion: 3, Members: []*messages.Member{{Id: 1, Role: paxos.LearnerRole}}}, false},
		{"a member twice", &messages.SnapshotMeta{Instance: 70, MembershipVersion: 3, Members: voters(1, 2, 2)}, false},
		{"an id beyond the ballot stride", &messages.SnapshotMeta{Instance: 70, MembershipVersion: 3, Members: voters(1, 2, 70000)}, false},
		{"an older epoch", &messages.SnapshotMeta{Instance: 70, Epoch: 0, MembershipVersion: 2, Members: voters(1, 2, 3, 4)}, false},
	} {
		if tc.name == "an older epoch" {
			d.run(func() { d.r.epochs.Reset(65, 2) })
		}
		restored := false
		err := d.Install(tc.meta, func(Snapshotter) error { restored = true; return nil })
		switch {
		case tc.ok && (err != nil || !restored):
			t.Fatalf("%s: %v (restored %v), want installed", tc.name, err, restored)
		case !tc.ok && (!errors.Is(err, ErrSnapshotHandle) || restored):
			t.Fatalf("%s: %v (restored %v), want ErrSnapshotHandle and nothing restored", tc.name, err, restored)
		}
	}
}
