package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// histograms are a node's latency and size distributions, for dashboards
// (a p99 needs buckets): it is the replica's actors.Metrics and the client
// API's request observer.
type histograms struct {
	request       *prometheus.HistogramVec
	commit        prometheus.Histogram
	fsync         prometheus.Histogram
	batchRecords  prometheus.Histogram
	batchBytes    prometheus.Histogram
	apply         prometheus.Histogram
	applyCommands prometheus.Histogram
	snapshot      prometheus.Histogram
	snapshotBytes prometheus.Histogram
}

// Latency buckets from 100 µs to 10 s: an fsync, a lease read and a
// fail-over all land inside.
var latencyBuckets = prometheus.ExponentialBucketsRange(0.0001, 10, 16)

func newHistograms(reg prometheus.Registerer) *histograms {
	h := func(name, help string, buckets []float64) prometheus.Histogram {
		x := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "livepaxos", Name: name, Help: help, Buckets: buckets})
		reg.MustRegister(x)
		return x
	}
	hs := &histograms{
		request: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "livepaxos", Name: "client_request_duration_seconds",
			Help:    "Client API requests by method (Put, Get, Txn, ...; a Stream's calls as write, read_lease, read_quorum, read_stale) and outcome (ok or the error code: not_master, outcome_unknown, overloaded, ...): the count of each outcome counts refusals by reason.",
			Buckets: latencyBuckets}, []string{"method", "outcome"}),
		commit: h("commit_duration_seconds", "Master only: from an instance's first Accept to chosen (a majority durably accepted it).", latencyBuckets),
		fsync:  h("wal_fsync_duration_seconds", "Writing and fsyncing one group commit of the log.", latencyBuckets),
		batchRecords: h("wal_batch_records", "Log records per group commit (one fsync).",
			prometheus.ExponentialBuckets(1, 2, 14)),
		batchBytes: h("wal_batch_bytes", "Framed log bytes per group commit.", prometheus.ExponentialBuckets(64, 4, 12)),
		apply:      h("apply_duration_seconds", "Applying the commands of chosen entries handed over at once to the database.", latencyBuckets),
		applyCommands: h("apply_batch_commands", "Commands applied at once.",
			prometheus.ExponentialBuckets(1, 2, 14)),
		snapshot:      h("snapshot_duration_seconds", "Writing and syncing one snapshot (§5.5).", prometheus.ExponentialBucketsRange(0.001, 600, 16)),
		snapshotBytes: h("snapshot_bytes", "Size of each snapshot written.", prometheus.ExponentialBuckets(1024, 4, 14)),
	}
	reg.MustRegister(hs.request)
	return hs
}

func (h *histograms) Synced(d time.Duration, records, bytes int) {
	h.fsync.Observe(d.Seconds())
	h.batchRecords.Observe(float64(records))
	h.batchBytes.Observe(float64(bytes))
}

func (h *histograms) Committed(d time.Duration) { h.commit.Observe(d.Seconds()) }

func (h *histograms) AppliedBatch(d time.Duration, commands int) {
	h.apply.Observe(d.Seconds())
	h.applyCommands.Observe(float64(commands))
}

func (h *histograms) Snapshotted(d time.Duration, bytes int64) {
	h.snapshot.Observe(d.Seconds())
	h.snapshotBytes.Observe(float64(bytes))
}

// Request is the client API's Config.ObserveRequest.
func (h *histograms) Request(method, outcome string, d time.Duration) {
	h.request.WithLabelValues(method, outcome).Observe(d.Seconds())
}
