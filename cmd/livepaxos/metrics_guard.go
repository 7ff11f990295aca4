package main

import (
	"maps"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/messages"
)

// guardCollector exports what the peer port's guard dropped, by reason
// (cluster.GuardStats), and what the replica core refused after it
// (StatusResponse.PeerDrops, core.DropReason): hostile or broken input
// shows on a dashboard. It also exports what this node's endpoint writers
// did not send (GuardStats.UnsentBy): a slow peer, or a message too large.
type guardCollector struct {
	sys     *actor.ActorSystem
	status  func() *messages.StatusResponse
	dropped *prometheus.Desc
	panics  *prometheus.Desc
	unsent  *prometheus.Desc
}

func guardMetrics(reg prometheus.Registerer, sys *actor.ActorSystem, status func() *messages.StatusResponse) {
	reg.MustRegister(&guardCollector{sys: sys, status: status,
		dropped: prometheus.NewDesc("livepaxos_peer_messages_dropped_total",
			"Messages from the peer port dropped before any actor saw them, by reason: malformed, wrong_target, unknown_type, lifecycle (protoactor's system messages: no remote may stop or watch an actor here), not_allowed (not a livepaxos message); then, by the replica: cluster (another group's), not_member, not_voter, ballot_owner (a ballot its sender does not own), bounds (a field out of bounds), rate (catch-up requests over their sender's rate), mailbox_full (the core's or snapshot device's mailbox was at its bound).",
			[]string{"reason"}, nil),
		panics: prometheus.NewDesc("livepaxos_peer_handler_panics_total",
			"Panics recovered in the peer port's gRPC handlers.", nil, nil),
		unsent: prometheus.NewDesc("livepaxos_peer_messages_unsent_total",
			"Outgoing peer messages this node dropped instead of sending, by reason: queue_full (the peer's send queue was at its bound), too_large (one message over a batch's byte budget).",
			[]string{"reason"}, nil),
	})
}

func (c *guardCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.dropped
	ch <- c.panics
	ch <- c.unsent
}

func (c *guardCollector) Collect(ch chan<- prometheus.Metric) {
	st := cluster.StatsOf(c.sys)
	dropped := maps.Clone(st.DroppedBy)
	if dropped == nil {
		dropped = make(map[string]uint64)
	}
	for reason, n := range c.status().GetPeerDrops() {
		dropped[reason] += n
	}
	for reason, n := range dropped {
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(c.panics, prometheus.CounterValue, float64(st.Panics))
	for reason, n := range st.UnsentBy {
		ch <- prometheus.MustNewConstMetric(c.unsent, prometheus.CounterValue, float64(n), reason)
	}
}
