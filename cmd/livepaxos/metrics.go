package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/server"
	"github.com/livepaxos/livepaxos/storage"
)

// nodeMetrics registers a node's metrics on reg. Every value is read from
// the replica's published status (and its log's counters) when scraped:
// nothing is added to the paths that handle messages.
func nodeMetrics(reg prometheus.Registerer, status func() *messages.StatusResponse, wal func() storage.Stats) {
	gauge := func(name, help string, f func(*messages.StatusResponse) float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "livepaxos", Name: name, Help: help},
			func() float64 { return f(status()) }))
	}
	counter := func(name, help string, f func(*messages.StatusResponse) float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "livepaxos", Name: name, Help: help},
			func() float64 { return f(status()) }))
	}
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	gauge("is_master", "1 while this node is master and accepts writes.", func(s *messages.StatusResponse) float64 { return flag(s.IsMaster) })
	gauge("master_id", "The node this node believes is master (0: none).", func(s *messages.StatusResponse) float64 { return float64(s.MasterId) })
	gauge("last_chosen_instance", "Highest instance known chosen.", func(s *messages.StatusResponse) float64 { return float64(s.LastChosen) })
	gauge("last_applied_instance", "Highest instance applied to the database.", func(s *messages.StatusResponse) float64 { return float64(s.LastApplied) })
	gauge("epoch", "Current epoch (§5.3).", func(s *messages.StatusResponse) float64 { return float64(s.Epoch) })
	gauge("lease_remaining_seconds", "Master only: how long its lease still holds (§5.2).", func(s *messages.StatusResponse) float64 {
		return float64(s.LeaseRemainingUs) / 1e6
	})
	counter("ballot_boosts_total", "Ballot boosts made as master (§5.2).", func(s *messages.StatusResponse) float64 { return float64(s.Boosts) })
	gauge("snapshot_instance", "Instance of the newest snapshot (§5.5).", func(s *messages.StatusResponse) float64 { return float64(s.SnapshotInstance) })
	gauge("log_truncated_instance", "The log is let go of up to here (§5.5).", func(s *messages.StatusResponse) float64 { return float64(s.LogTruncated) })
	gauge("log_segments", "Write-ahead log segment files on disk.", func(s *messages.StatusResponse) float64 { return float64(s.LogSegments) })
	counter("snapshots_total", "Snapshots taken since start.", func(s *messages.StatusResponse) float64 { return float64(s.Snapshots) })
	counter("snapshot_installs_total", "Peers' snapshots installed since start.", func(s *messages.StatusResponse) float64 { return float64(s.Installs) })
	counter("consistency_checks_total", "Consistency checks this node compared with a majority (§6.2).", func(s *messages.StatusResponse) float64 {
		return float64(s.Checks)
	})
	gauge("consistency_checked_instance", "Last instance at which this node's checksum agreed with the majority's.", func(s *messages.StatusResponse) float64 {
		return float64(s.CheckedInstance)
	})
	gauge("consistency_divergence", "1 once a consistency check found a replica whose state differs from the majority's (§6.2).", func(s *messages.StatusResponse) float64 {
		return flag(s.Divergence != "")
	})
	gauge("catching_up", "1 while this node has stayed behind the chosen log for seconds (§6.3).", func(s *messages.StatusResponse) float64 {
		return flag(s.CatchingUp)
	})
	gauge("queue_depth", "Master only: client commands waiting for an instance.", func(s *messages.StatusResponse) float64 { return float64(s.QueueLen) })
	gauge("inflight_instances", "Master only: instances proposed and not yet chosen (phase 2).", func(s *messages.StatusResponse) float64 {
		return float64(s.Inflight)
	})
	gauge("lag_instances", "Instances this node knows chosen and has not applied.", func(s *messages.StatusResponse) float64 {
		if s.LastChosen > s.LastApplied {
			return float64(s.LastChosen - s.LastApplied)
		}
		return 0
	})
	walCounter := func(name, help string, f func(storage.Stats) float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "livepaxos", Subsystem: "wal", Name: name, Help: help},
			func() float64 { return f(wal()) }))
	}
	walCounter("records_total", "Log records made durable.", func(s storage.Stats) float64 { return float64(s.Records) })
	walCounter("bytes_total", "Framed log bytes written.", func(s storage.Stats) float64 { return float64(s.Bytes) })
	walCounter("fsyncs_total", "fsync/fdatasync calls on the log.", func(s storage.Stats) float64 { return float64(s.Fsyncs) })
}

// readyMetrics registers readiness (/readyz as a gauge) and the data
// directory's free disk space.
func readyMetrics(reg prometheus.Registerer, ready func() (bool, []server.Check), dataDir string) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "livepaxos", Name: "ready",
		Help: "1 while the node is ready for traffic (/readyz answers 200)."}, func() float64 {
		if ok, _ := ready(); ok {
			return 1
		}
		return 0
	}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "livepaxos", Name: "disk_free_bytes",
		Help: "Bytes free to the node on its data directory's file system."}, func() float64 {
		return float64(server.DiskFree(dataDir))
	}))
}

// serveMetrics serves reg on addr at /metrics, with the Go runtime's and
// the process's collectors, and health's /livez and /readyz.
func serveMetrics(addr string, reg *prometheus.Registry, health http.Handler) *http.Server {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/livez", health)
	mux.Handle("/readyz", health)
	return &http.Server{Addr: addr, Handler: mux}
}
