package paxos

import (
	"testing"

	"github.com/livepaxos/livepaxos/messages"
)

// BenchmarkCommitBatch measures the role logic (no disk or network, but the
// in-memory wire copies every message as the real one would) committing
// one batch of 64 commands on a 3-replica group: the master's flushes, three
// acceptors, the acknowledgements, the chosen notice and three learners.
func BenchmarkCommitBatch(b *testing.B) {
	c := newTestCluster(&testing.T{}, 3, 1)
	m := c.waitMaster()
	payload := make([]byte, 128)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range 64 {
			c.proposerOut(m, m.p.Submit(&messages.Command{Origin: m.id, RequestId: uint64(j), Payload: payload}))
		}
		c.run()
	}
	b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "commands/s")
}
