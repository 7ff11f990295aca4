package main

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/livepaxos/livepaxos/messages"
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
