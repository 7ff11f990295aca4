package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

func run(args ...string) (string, error) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestUsageErrorsAreExitStatusTwo(t *testing.T) {
	for _, args := range [][]string{
		{"put", "--nope"},
		{"put", "only-a-key"},
		{"node", "--id", "1", "--peers", "1=127.0.0.1:7001,1=127.0.0.1:7002", "--data", t.TempDir()},
		{"node", "--id", "4", "--peers", "1=127.0.0.1:7001", "--data", t.TempDir()},
		{"node", "--peers", "1=127.0.0.1:7001"},
		{"node", "--id", "1", "--peers", "1=127.0.0.1:7001", "--data", t.TempDir(), "--log-level", "loud"},
		{"bench", "--op", "scan"},
		{"txn", "--guard", "nokey"},
		{"txn", "--then", "put:k"},
		{"cas", "k", "v"},
		{"status", "--endpoints", ","},
		{"get", "--consistency", "eventual", "k"},
		{"bench", "--op", "get", "--consistency", "sometimes"},
		{"node", "--id", "1", "--peers", "1=127.0.0.1:7001", "--data", t.TempDir(), "--lease-timeout", "100ms", "--clock-drift-max", "200ms"},
		{"node", "--id", "1", "--peers", "1=127.0.0.1:7001", "--data", t.TempDir(), "--lease-timeout", "0s"},
		{"txn", "--guard", "epoch:zero", "--then", "put:k=v"},
		{"node", "--id", "1", "--peers", "1=127.0.0.1:7001", "--data", t.TempDir(), "--snapshot-every", "-1"},
		{"node", "--id", "1", "--peers", "1=127.0.0.1:7001", "--data", t.TempDir(), "--check-interval", "-1s"},
		{"node", "--id", "1", "--peers", "1=127.0.0.1:7001", "--learners", "1=127.0.0.1:7002", "--data", t.TempDir()},
		{"node", "--id", "1", "--peers", "1=127.0.0.1:7001", "--learners", "2=nowhere", "--data", t.TempDir()},
		{"snapshot", "--endpoints", ","},
		{"check", "--endpoints", ","},
		{"members", "list", "--endpoints", ","},
		{"cas", "k"},
		{"cas", "k", "a", "b", "c"},
		{"members", "remove"},
		{"members", "promote", "1", "2"},
		{"members", "remove", "65536"},
		{"members", "add", "70000=127.0.0.1:7004"},
		{"node", "--id", "65536", "--peers", "65536=127.0.0.1:7001", "--data", t.TempDir()},
		{"node", "--id", "1", "--peers", "1=127.0.0.1:7001", "--data", t.TempDir(), "--log-format", "xml"},
		{"node", "--config", "/nonexistent/livepaxos.yaml"},
		{"snapshot", "save"},
		{"restore", "backup.lps"},
		{"restore", "backup.lps", "--id", "1", "--peers", "1=nowhere", "--data", t.TempDir()},
		{"restore", "backup.lps", "--id", "70000", "--peers", "1=127.0.0.1:7001", "--data", t.TempDir()},
	} {
		if _, err := run(args...); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error (exit status 2)", args, err)
		}
	}
}

func TestTxnFlagsBuildMultiOp(t *testing.T) {
	g, err := parseItems([]string{"absent:a", "equals:b=x=y", "present:c"}, true)
	if err != nil {
		t.Fatal(err)
	}
	th, _ := parseItems([]string{"put:a=1", "del:b", "get:c"}, false)
	op, err := txnJSON{Guard: g, Then: th}.multiOp()
	if err != nil {
		t.Fatal(err)
	}
	if len(op.Guard) != 3 || op.Guard[1].Kind != messages.Test_KIND_EQUALS || string(op.Guard[1].Value) != "x=y" {
		t.Fatalf("guard %v", op.Guard)
	}
	if len(op.TOp) != 3 || op.TOp[0].Kind != messages.Op_KIND_PUT || op.TOp[1].Kind != messages.Op_KIND_DELETE {
		t.Fatalf("then %v", op.TOp)
	}
	g, _ = parseItems([]string{"epoch:42"}, true)
	if op, err := (txnJSON{Guard: g, Then: th}).multiOp(); err != nil || op.Guard[0].Kind != messages.Test_KIND_EPOCH || op.Guard[0].Epoch != 42 {
		t.Fatalf("epoch guard: %v %v", op, err)
	}
	if _, err := (txnJSON{Guard: []txnItem{{Op: "maybe", Key: "k"}}}).multiOp(); !errors.Is(err, errUsage) {
		t.Fatalf("unknown test kind: %v", err)
	}
}

func TestHelpListsSubcommands(t *testing.T) {
	out, err := run("--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"node", "put", "get", "del", "cas", "txn", "status", "members", "snapshot", "check", "bench"} {
		if !strings.Contains(out, sub) {
			t.Errorf("help does not mention %q", sub)
		}
	}
}

// A node id beyond what ballots can tell apart is a usage error, and the
// limit is the ballot stride's.
func TestNodeIDLimit(t *testing.T) {
	if cluster.MaxNodeID+1 != paxos.BallotStride {
		t.Fatalf("cluster.MaxNodeID %d does not match paxos.BallotStride %d", cluster.MaxNodeID, paxos.BallotStride)
	}
	err := runNode(nodeFlags{id: 65537, peers: "65537=127.0.0.1:7001", data: t.TempDir()})
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "65535") {
		t.Fatalf("node --id 65537: %v, want a usage error naming the limit", err)
	}
}

// txn --json takes one MultiOp and refuses anything after it.
func TestTxnJSONRefusesTrailingInput(t *testing.T) {
	root := newRootCmd()
	root.SetIn(strings.NewReader(`{"then":[{"op":"put","key":"k","value":"v"}]} {"then":[]}`))
	root.SetArgs([]string{"txn", "--json", "-", "--endpoints", "127.0.0.1:1"})
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	if err := root.Execute(); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "trailing input") {
		t.Fatalf("txn --json with a second object: %v, want a usage error about trailing input", err)
	}
}

// No flag's usage text has back quotes: cobra takes a back-quoted word as
// the flag's type name (node --help once rendered "--join livepaxos
// members add").
func TestFlagUsageHasNoBackQuotes(t *testing.T) {
	var visit func(*cobra.Command)
	visit = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s: usage has a back quote: %q", c.CommandPath(), f.Name, f.Usage)
			}
		})
		for _, sub := range c.Commands() {
			visit(sub)
		}
	}
	visit(newRootCmd())
	out, _ := run("node", "--help")
	if !strings.Contains(out, "--join ") || strings.Contains(out, "--join livepaxos") {
		t.Fatalf("node --help renders --join wrongly:\n%s", out)
	}
}
