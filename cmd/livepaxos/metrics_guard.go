package main

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livepaxos/livepaxos/cluster"
)

// guardCollector exports what the peer port's guard dropped, by reason
// (cluster.GuardStats): hostile or broken input shows on a dashboard.
type guardCollector struct {
	sys     *actor.ActorSystem
	dropped *prometheus.Desc
	panics  *prometheus.Desc
}

func guardMetrics(reg prometheus.Registerer, sys *actor.ActorSystem) {
	reg.MustRegister(&guardCollector{sys: sys,
		dropped: prometheus.NewDesc("livepaxos_peer_messages_dropped_total",
			"Messages from the peer port dropped before any actor saw them, by reason: malformed, wrong_target, unknown_type, lifecycle (protoactor's system messages: no remote may stop or watch an actor here), not_allowed (not a livepaxos message).",
			[]string{"reason"}, nil),
		panics: prometheus.NewDesc("livepaxos_peer_handler_panics_total",
			"Panics recovered in the peer port's gRPC handlers.", nil, nil),
	})
}

func (c *guardCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.dropped
	ch <- c.panics
}

func (c *guardCollector) Collect(ch chan<- prometheus.Metric) {
	st := cluster.StatsOf(c.sys)
	for reason, n := range st.DroppedBy {
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(c.panics, prometheus.CounterValue, float64(st.Panics))
}
