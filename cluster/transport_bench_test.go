package cluster

import (
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/messages"
)

// BenchmarkRemoteSend measures one-way throughput of small protocol
// messages between two systems on loopback: the path the endpoint writer's
// queue bound and batch byte budget (third_party/README.md) sit on.
func BenchmarkRemoteSend(b *testing.B) {
	sysA, rem, _, err := NewSystem(Options{Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { rem.Shutdown(false); sysA.Shutdown() }()
	sysB, remB, _, err := NewSystem(Options{Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { remB.Shutdown(false); sysB.Shutdown() }()
	pid, n := spawnProbe(b, sysB, "probe")
	msg := &messages.Prepare{Ballot: 7, From: 1}
	// Warm the connection.
	sysA.Root.Send(pid, msg)
	for n.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	b.ResetTimer()
	start := n.Load()
	for i := 0; i < b.N; i++ {
		sysA.Root.Send(pid, msg)
		if i%4096 == 4095 { // stay under the writer's queue bound
			for n.Load()-start < int64(i)-8192 {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	deadline := time.Now().Add(time.Minute)
	for n.Load()-start < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d arrived", n.Load()-start, b.N)
		}
		time.Sleep(100 * time.Microsecond)
	}
}
