package actors_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/messages"
)

// §5.4: a non-voting member (a learner) is sent the log and holds the same
// database, but never votes or becomes master: with the master gone, a new
// master comes only from the voters.
func TestPaper5_4_LearnerLearnsTheLogAndNeverVotes(t *testing.T) {
	g := newTestGroupWith(t, 4, func(cfg *actors.Config) {
		voters := map[uint32]string{}
		for id, addr := range cfg.Peers {
			if id != 4 {
				voters[id] = addr
			}
		}
		cfg.Learners = map[uint32]string{4: cfg.Peers[4]}
		cfg.Peers = voters
	})
	putKeys(t, g, 0, 50)
	g.sameState(50)
	waitFor(t, 5*time.Second, func() error {
		st := g.hosts[4].replica.Status()
		if st.Role != "learner" || st.MasterId == 0 || st.MasterId == 4 {
			return fmt.Errorf("learner status: role %q, master %d", st.Role, st.MasterId)
		}
		return nil
	})
	old := g.master()
	g.stop(old)
	waitFor(t, 10*time.Second, func() error {
		if m := g.master(); m == 0 || m == old {
			return fmt.Errorf("master is %d", m)
		}
		return nil
	})
	if m := g.master(); m == 4 {
		t.Fatal("the learner became master")
	}
	putKeys(t, g, 50, 60)
	g.sameState(60)
}

// §5.4, first step of membership changes: a node started with Join (in no
// member list) is added through the log as a learner, catches up and
// follows the log; it is then removed. Every replica applies the same
// membership versions, and a voter that restarts finds them in its log.
func TestPaper5_4_LearnerAddedAndRemovedThroughTheLog(t *testing.T) {
	var addr4 string
	g := newTestGroupWith(t, 4, func(cfg *actors.Config) {
		voters := map[uint32]string{}
		for id, addr := range cfg.Peers {
			if id != 4 {
				voters[id] = addr
			}
		}
		addr4 = cfg.Peers[4]
		if cfg.NodeID == 4 {
			cfg.Join, cfg.SelfAddress = true, addr4
		}
		cfg.Peers = voters
	})
	putKeys(t, g, 0, 30)
	if n := g.hosts[4].kv.Len(); n != 0 {
		t.Fatalf("the joining node holds %d keys before it was added", n)
	}
	change := func(req *messages.MembersRequest) uint64 {
		t.Helper()
		var v uint64
		waitFor(t, 10*time.Second, func() error {
			h := g.hosts[g.master()]
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			var err error
			v, err = h.replica.ChangeMembers(ctx, h.sys.Root, proto.Clone(req).(*messages.MembersRequest))
			return err
		})
		return v
	}
	if v := change(&messages.MembersRequest{Add: &messages.Member{Id: 4, Address: addr4}}); v != 2 {
		t.Fatalf("add: version %d, want 2", v)
	}
	putKeys(t, g, 30, 40)
	g.sameState(40) // node 4 caught up and follows
	waitFor(t, 5*time.Second, func() error {
		for id, h := range g.hosts {
			if st := h.replica.Status(); st.MembershipVersion != 2 || len(st.Members) != 4 {
				return fmt.Errorf("node %d: version %d, %d members", id, st.MembershipVersion, len(st.Members))
			}
		}
		if st := g.hosts[4].replica.Status(); st.Role != "learner" {
			return fmt.Errorf("node 4 role %q", st.Role)
		}
		return nil
	})
	// Changes that are not allowed change nothing.
	h := g.hosts[g.master()]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := h.replica.ChangeMembers(ctx, h.sys.Root, &messages.MembersRequest{Remove: 1}); !errors.Is(err, actors.ErrMembership) {
		t.Fatalf("removing a voter: %v, want ErrMembership", err)
	}
	if v := change(&messages.MembersRequest{Remove: 4}); v != 3 {
		t.Fatalf("remove: version %d, want 3", v)
	}
	putKeys(t, g, 40, 45)
	g.stop(2)
	g.start(2) // replays the membership changes from its log
	waitFor(t, 10*time.Second, func() error {
		if st := g.hosts[2].replica.Status(); st.MembershipVersion != 3 || len(st.Members) != 3 {
			return fmt.Errorf("restarted node 2: version %d, %d members", st.MembershipVersion, len(st.Members))
		}
		return nil
	})
}
