package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/server"
	"github.com/livepaxos/livepaxos/storage"
)

// A consistency-check failure shows in the metrics as well as in status
// and the log (§6.2).
func TestMetricsReportDivergence(t *testing.T) {
	st := &messages.StatusResponse{IsMaster: true, LastApplied: 42, Checks: 3}
	reg := prometheus.NewRegistry()
	nodeMetrics(reg, func() *messages.StatusResponse { return st }, func() storage.Stats { return storage.Stats{Fsyncs: 7} })
	want := `
# HELP livepaxos_consistency_divergence 1 once a consistency check found a replica whose state differs from the majority's (§6.2).
# TYPE livepaxos_consistency_divergence gauge
livepaxos_consistency_divergence 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "livepaxos_consistency_divergence"); err != nil {
		t.Fatal(err)
	}
	st = &messages.StatusResponse{Divergence: "node 3's state diverged from the majority's at instance 9"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(strings.Replace(want, "divergence 0", "divergence 1", 1)),
		"livepaxos_consistency_divergence"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n < 15 {
		t.Fatalf("%d metrics, %v", n, err)
	}
}

// The Grafana dashboard (deploy/grafana) asks only for metrics a node
// serves: a renamed metric would leave a panel silently empty.
func TestDashboardUsesServedMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	nodeMetrics(reg, func() *messages.StatusResponse { return &messages.StatusResponse{} }, func() storage.Stats { return storage.Stats{} })
	h := newHistograms(reg)
	h.Request("Put", "ok", time.Millisecond) // a vector shows once it has a child
	readyMetrics(reg, func() (bool, []server.Check) { return true, nil }, t.TempDir())
	served := map[string]bool{"livepaxos_peer_messages_dropped_total": true, "livepaxos_peer_messages_unsent_total": true} // guardMetrics: needs an actor system
	descs := make(chan *prometheus.Desc, 256)
	go func() { reg.Describe(descs); close(descs) }()
	for d := range descs {
		name := regexp.MustCompile(`fqName: "([^"]+)"`).FindStringSubmatch(d.String())[1]
		served[name] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			served[name+suffix] = true
		}
	}
	b, err := os.ReadFile("../../deploy/grafana/livepaxos.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	used := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range regexp.MustCompile(`livepaxos_[a-z_]+`).FindAllString(tg.Expr, -1) {
				used++
				if !served[m] {
					t.Errorf("panel %q asks for %s, which no node serves", p.Title, m)
				}
			}
		}
	}
	if used < 20 {
		t.Fatalf("the dashboard uses %d metrics", used)
	}
}
