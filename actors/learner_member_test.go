package actors_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// §5.4: the group grows and shrinks through the log. A node started with
// Join (in no member list) is added as a learner, catches up, and is
// promoted to voter (3 to 4 voters); then the master itself is removed: it
// hands mastership over first, and the new master proposes the removal.
// Every replica applies the same membership versions, writes go on
// throughout, and a voter that restarts finds the membership in its log.
func TestPaper5_4_GrowAndShrinkThroughTheLog(t *testing.T) {
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
		waitFor(t, 15*time.Second, func() error {
			h := g.hosts[g.master()]
			if h == nil || h.replica == nil {
				var b strings.Builder
				for id, h := range g.hosts {
					if h.replica != nil {
						st := h.replica.Status()
						fmt.Fprintf(&b, "[n%d %s master=%d v%d applied=%d chosen=%d ballot=%d] ", id, st.Role, st.MasterId, st.MembershipVersion, st.LastApplied, st.LastChosen, st.Ballot)
					}
				}
				return errors.New("no master: " + b.String())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			var err error
			v, err = h.replica.ChangeMembers(ctx, h.sys.Root, proto.Clone(req).(*messages.MembersRequest))
			return err
		})
		return v
	}
	base := g.hosts[g.master()].replica.Status().MembershipVersion
	added := change(&messages.MembersRequest{Add: &messages.Member{Id: 4, Address: addr4}})
	if added <= base {
		t.Fatalf("add: version %d after %d", added, base)
	}
	putKeys(t, g, 30, 40)
	g.sameState(40) // node 4 caught up and follows
	waitFor(t, 5*time.Second, func() error {
		if st := g.hosts[4].replica.Status(); st.Role != "learner" || st.MembershipVersion < added || len(st.Members) != 4 {
			return fmt.Errorf("node 4: role %q, version %d, %d members", st.Role, st.MembershipVersion, len(st.Members))
		}
		return nil
	})
	promoted := change(&messages.MembersRequest{Promote: 4})
	waitFor(t, 5*time.Second, func() error {
		for id, h := range g.hosts {
			st := h.replica.Status()
			voters := 0
			for _, m := range st.Members {
				if m.Role == "voter" {
					voters++
				}
			}
			if st.MembershipVersion < promoted || voters != 4 {
				return fmt.Errorf("node %d: version %d (want %d), %d voters", id, st.MembershipVersion, promoted, voters)
			}
		}
		if st := g.hosts[4].replica.Status(); st.Role != "voter" {
			return fmt.Errorf("node 4 role %q", st.Role)
		}
		return nil
	})
	// A change the rules refuse changes nothing.
	h := g.hosts[g.master()]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := h.replica.ChangeMembers(ctx, h.sys.Root, &messages.MembersRequest{Promote: 4}); !errors.Is(err, actors.ErrMembership) {
		t.Fatalf("promoting a voter: %v, want ErrMembership", err)
	}
	putKeys(t, g, 40, 45)
	old := g.master()
	removed := change(&messages.MembersRequest{Remove: old})
	if m := g.master(); m == old {
		t.Fatalf("node %d is still master after its removal (version %d)", old, removed)
	}
	putKeys(t, g, 45, 50)
	g.stop(old) // no longer a member: it is sent nothing
	g.sameState(50)
	var other uint32
	for id := range g.hosts {
		if id != old && id != g.master() && g.hosts[id].replica != nil {
			other = id
		}
	}
	g.stop(other)
	g.start(other) // replays the membership changes from its log
	waitFor(t, 10*time.Second, func() error {
		st := g.hosts[other].replica.Status()
		if st.MembershipVersion < removed || len(st.Members) != 3 {
			return fmt.Errorf("restarted node %d: version %d (want %d), %d members", other, st.MembershipVersion, removed, len(st.Members))
		}
		return nil
	})
	putKeys(t, g, 50, 55)
}
