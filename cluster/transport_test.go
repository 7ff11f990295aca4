package cluster

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/livepaxos/livepaxos/messages"
)

// sizeCounter counts the Commands it receives whose payload is size bytes.
type sizeCounter struct {
	size int
	n    *atomic.Int64
}

func (c *sizeCounter) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*messages.Command); ok && len(m.Payload) == c.size {
		c.n.Add(1)
	}
}

func spawnCounter(t *testing.T, sys *actor.ActorSystem, name string, size int) (*actor.PID, *atomic.Int64) {
	t.Helper()
	n := new(atomic.Int64)
	pid, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &sizeCounter{size: size, n: n} }), name)
	if err != nil {
		t.Fatalf("spawn %s: %v", name, err)
	}
	t.Cleanup(func() { sys.Root.Stop(pid) })
	return pid, n
}

// A burst of large messages queues in the endpoint writer while it
// connects, and upstream protoactor packs WriterBatchSize of them into one
// gRPC message whatever their size: 64 x 512 KiB is 32 MiB, eight times the
// 4 MiB limit both ends use here, so gRPC refuses the batch, the writer
// stops, and the burst is lost (as a master's burst of 4 MiB Accepts would
// be under the default 64 MiB). The patched writer cuts batches at
// BatchBytes: all arrive.
func TestWriterCutsBatchesByBytes(t *testing.T) {
	const (
		limit = 4 << 20
		size  = 512 << 10
		count = 64
	)
	opts := Options{MaxMessageBytes: limit}
	sysA, _ := startNode(t, opts)
	sysB, _ := startNode(t, opts)
	pid, n := spawnCounter(t, sysB, "counter", size)
	payload := make([]byte, size)
	for i := range count {
		sysA.Root.Send(pid, &messages.Command{RequestId: uint64(i), Payload: payload})
	}
	eventually(t, 20*time.Second, "all 64 large messages delivered", func() bool { return n.Load() == count })
	if st := StatsOf(sysA); st.Unsent != 0 {
		t.Errorf("dropped %v outgoing messages, want none", st.UnsentBy)
	}
}

// A message over BatchBytes alone fits in no batch: the writer drops and
// counts it, and what follows still goes through (upstream sends it, gRPC
// refuses it, and the writer stops with the messages after it).
func TestWriterDropsMessageTooLargeForAnyBatch(t *testing.T) {
	const limit = 4 << 20
	opts := Options{MaxMessageBytes: limit}
	sysA, _ := startNode(t, opts)
	sysB, _ := startNode(t, opts)
	big, bigN := spawnCounter(t, sysB, "big", limit)
	small, smallN := spawnCounter(t, sysB, "small", 10)
	sysA.Root.Send(small, &messages.Command{Payload: make([]byte, 10)})
	sysA.Root.Send(big, &messages.Command{Payload: make([]byte, limit)})
	sysA.Root.Send(small, &messages.Command{Payload: make([]byte, 10)})
	eventually(t, 10*time.Second, "both small messages delivered", func() bool { return smallN.Load() == 2 })
	if got := StatsOf(sysA).UnsentBy["too_large"]; got != 1 {
		t.Errorf("too_large drops = %d, want 1", got)
	}
	if bigN.Load() != 0 {
		t.Errorf("the oversized message arrived")
	}
}

// blackHole accepts TCP connections and never speaks, so an endpoint
// writer dialling it stays in its connect (its Started) while messages
// queue. Closing it fails the connect.
func blackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// A peer that does not take what is sent to it must cost bounded memory:
// past WriterQueueSize, messages to it are dropped and counted, and Send
// does not block.
func TestWriterQueueIsBounded(t *testing.T) {
	const (
		queue = 8
		sent  = 1000
	)
	sys, _ := startNode(t, Options{WriterQueueSize: queue})
	// After startNode: cleanups run last first, so the black hole closes
	// (ending the writer's connect) before the system shuts down.
	pid := actor.NewPID(blackHole(t), "nobody")
	start := time.Now()
	for range sent {
		sys.Root.Send(pid, &messages.Prepare{Ballot: 1})
	}
	st := StatsOf(sys)
	// The writer takes nothing from its queue while it connects, so all
	// but queue of them were dropped as they were sent.
	if got := st.UnsentBy["queue_full"]; got != sent-queue {
		t.Errorf("queue_full drops = %d, want %d", got, sent-queue)
	}
	if st.Unsent != st.UnsentBy["queue_full"] {
		t.Errorf("Unsent = %d, want the queue_full count %d", st.Unsent, st.UnsentBy["queue_full"])
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("sending took %v: Send blocked on a full queue", d)
	}
}

// The queue to a peer is bounded in bytes as well: a count alone lets a
// slow peer hold WriterQueueSize messages of up to 4 MiB each. Past
// WriterQueueBytes a message is dropped and counted like one past the
// count; the first always queues, whatever its size.
func TestWriterQueueIsBoundedInBytes(t *testing.T) {
	const (
		maxBytes = 1 << 20
		sent     = 10
	)
	sys, _ := startNode(t, Options{WriterQueueBytes: maxBytes})
	pid := actor.NewPID(blackHole(t), "nobody")
	for range sent {
		sys.Root.Send(pid, &messages.Command{Payload: make([]byte, 300<<10)})
	}
	// 300 KiB each: three fit under 1 MiB while the writer connects.
	if got := StatsOf(sys).UnsentBy["queue_full"]; got != sent-3 {
		t.Errorf("queue_full drops = %d, want %d", got, sent-3)
	}
	sys2, _ := startNode(t, Options{WriterQueueBytes: 1 << 10})
	pid2 := actor.NewPID(blackHole(t), "nobody")
	sys2.Root.Send(pid2, &messages.Command{Payload: make([]byte, 300<<10)})
	if got := StatsOf(sys2).UnsentBy["queue_full"]; got != 0 {
		t.Errorf("a message alone over the byte bound was dropped (%d): it must queue", got)
	}
}
