package sim

import (
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// The checker's rule for the configuration an instance is governed by
// (expectConfig) is written apart from the rule the replicas run
// (paxos.FoldMembership): here the two must agree on many random changes,
// valid and not, so that a change to one that is not made to the other
// fails this test, and the simulator, not silently both.
func TestCheckerMembershipRuleAgreesWithTheReplicas(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	randomMembership := func(version uint64, malformed bool) *messages.Membership {
		m := &messages.Membership{Version: version}
		for id := uint32(1); id <= 6; id++ {
			switch r.IntN(4) {
			case 0: // not a member
			case 1:
				m.Members = append(m.Members, &messages.Member{Id: id, Role: paxos.LearnerRole})
			default:
				m.Members = append(m.Members, &messages.Member{Id: id, Role: paxos.VoterRole, Incarnation: uint64(r.IntN(3))})
			}
		}
		if !malformed {
			return m
		}
		switch r.IntN(20) { // now and then, malformed
		case 0:
			m.Members = append(m.Members, &messages.Member{Id: 0, Role: paxos.VoterRole})
		case 1:
			if len(m.Members) > 0 {
				m.Members = append(m.Members, proto.Clone(m.Members[0]).(*messages.Member))
			}
		case 2:
			m.Members = append(m.Members, &messages.Member{Id: 9, Role: "observer"})
		}
		return m
	}
	differ, changed := 0, 0
	for range 20000 {
		// The configuration in force is well formed, with a voter: only
		// such a one ever takes effect.
		cur := randomMembership(uint64(1+r.IntN(3)), false)
		if len(paxos.MembershipVoters(cur)) == 0 {
			continue
		}
		v := &messages.Value{}
		for range 1 + r.IntN(3) {
			next := randomMembership(cur.Version+uint64(r.IntN(3)), true)
			if r.IntN(3) == 0 { // a small change of cur, more likely valid
				next = proto.Clone(cur).(*messages.Membership)
				next.Version++
				if len(next.Members) > 0 {
					next.Members[r.IntN(len(next.Members))].Role = []string{paxos.VoterRole, paxos.LearnerRole}[r.IntN(2)]
				}
			}
			payload, _ := proto.Marshal(next)
			v.Commands = append(v.Commands, &messages.Command{Membership: r.IntN(8) != 0, Payload: payload})
		}
		want, got := paxos.FoldMembership(cur, v), expectConfig(cur, v)
		if got != cur {
			changed++
		}
		if !proto.Equal(want, got) {
			differ++
			if differ < 5 {
				t.Errorf("from %v by %v: the replicas' rule gives %v, the checker's %v", cur, v, want, got)
			}
		}
	}
	if changed < 1000 {
		t.Fatalf("only %d of the random changes took effect: the test exercises too little", changed)
	}
	t.Logf("%d random changes, %d took effect, %d disagreements", 20000, changed, differ)
}

// The simulator runs the replica core, not copies of its wiring: nothing
// in sim/ (tests aside) builds or calls a proposer, an acceptor or a
// learner, nor uses the replicas' own membership rule.
func TestSimulatorRunsTheReplicaCoreOnly(t *testing.T) {
	forbidden := map[string]bool{
		"NewProposer": true, "NewAcceptor": true, "NewLearner": true, "Proposer": true, "Acceptor": true, "Learner": true,
		"ProposerOutput": true, "AcceptorOutput": true, "LearnerOutput": true, "EpochTracker": true,
		"FoldMembership": true, "CheckMembershipChange": true, "CountsVote": true, "NewChecksumTally": true,
	}
	files, _ := filepath.Glob("*.go")
	seen := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		seen++
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "paxos" && forbidden[sel.Sel.Name] {
					t.Errorf("%s uses paxos.%s: the simulator must drive the replica core (package core)", f, sel.Sel.Name)
				}
			}
			return true
		})
	}
	if seen < 10 {
		t.Fatalf("read only %d files", seen)
	}
}
