package cluster

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/livepaxos/livepaxos/messages"
)

// logLines parses the JSON lines written to buf.
func logLines(t *testing.T, buf *lockedBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// countLines counts the lines with the given level and message about addr
// ("" matches any address).
func countLines(lines []map[string]any, level, msg, addr string) int {
	n := 0
	for _, l := range lines {
		if l["level"] == level && l["msg"] == msg && (addr == "" || l["address"] == addr) {
			n++
		}
	}
	return n
}

// TestWatchPeersOverRealRemote stops a peer that a node keeps sending to,
// then restarts it on the same port. At the node's log level, protoactor's
// reconnect errors must not show; the watcher must say the peer is down once
// with a reason, repeat at most once per interval, and say when it is back.
func TestWatchPeersOverRealRemote(t *testing.T) {
	logs := &lockedBuffer{}
	// Info rather than the default warn, to see "reachable again"; the
	// assertions on protoactor's lines cover warn and above.
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sysA, _ := startNode(t, Options{Logger: logger})
	const every = 300 * time.Millisecond
	stop := WatchPeers(sysA, logger, every)
	defer stop()

	sysB, remB, addrB, err := NewSystem(Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	var stopB sync.Once
	shutdownB := func() { stopB.Do(func() { remB.Shutdown(false); sysB.Shutdown() }) }
	t.Cleanup(shutdownB)
	_, prepares := spawnProbe(t, sysB, "probe")
	target := actor.NewPID(addrB, "probe")
	eventually(t, 5*time.Second, "first message to reach B", func() bool {
		sysA.Root.Send(target, &messages.Prepare{})
		return prepares.Load() > 0
	})

	shutdownB()
	downAt := time.Now()
	// A keeps sending, as a replica does, so that protoactor keeps trying to
	// reconnect (one attempt per 2 s) and turns messages into dead letters.
	sending := make(chan struct{})
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		for {
			select {
			case <-sending:
				return
			case <-time.After(5 * time.Millisecond):
				sysA.Root.Send(target, &messages.Prepare{})
			}
		}
	}()
	defer func() {
		select {
		case <-sending:
		default:
			close(sending)
		}
		<-senderDone
	}()

	// A repeat line needs news after the first: a failed reconnect attempt
	// (2 s) or the dead letters it flushes.
	eventually(t, 6*time.Second, "a \"peer still unreachable\" line", func() bool {
		return countLines(logLines(t, logs), "WARN", "peer still unreachable", addrB) >= 1
	})
	downFor := time.Since(downAt)

	sysB2, _ := startNode(t, Options{Listen: addrB})
	_, prepares2 := spawnProbe(t, sysB2, "probe")
	eventually(t, 5*time.Second, "\"peer reachable again\" after B restarts", func() bool {
		return countLines(logLines(t, logs), "INFO", "peer reachable again", addrB) == 1 && prepares2.Load() > 0
	})
	close(sending)
	<-senderDone

	lines := logLines(t, logs)
	if n := countLines(lines, "WARN", "peer unreachable", ""); n != 1 {
		t.Errorf("%d \"peer unreachable\" lines, want 1", n)
	}
	var repeats int
	for _, l := range lines {
		switch {
		case l["msg"] == "peer unreachable":
			if r, _ := l["reason"].(string); r == "" || r == "connection lost" {
				t.Errorf("\"peer unreachable\" without protoactor's reason: %v", l)
			}
		case l["msg"] == "peer still unreachable":
			repeats++
			if l["level"] != "WARN" || l["reason"] == "" || l["down_for"] == nil {
				t.Errorf("bad repeat line: %v", l)
			}
		case l["lib"] == "protoactor" && (l["level"] == "WARN" || l["level"] == "ERROR"):
			t.Errorf("protoactor line at %s: %v", l["level"], l)
		}
	}
	// Repeats happen while B is down (and perhaps one more during the
	// restart); at most one per interval.
	if limit := int(time.Since(downAt)/every) + 1; repeats > limit {
		t.Errorf("%d repeat lines in %v (down for %v), want at most %d", repeats, time.Since(downAt), downFor, limit)
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs.String())
	}
}

// watchLog builds a system whose logs, like the watcher's, go to a JSON
// buffer at level.
func watchLog(level slog.Level) (*actor.ActorSystem, *slog.Logger, *lockedBuffer) {
	buf := &lockedBuffer{}
	l := slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: level}))
	return actor.NewActorSystem(actor.WithLoggerFactory(loggerFactory(l))), l, buf
}

// TestWatchPeersRepeatsAtMostOncePerInterval floods the event stream with
// failures for one address, which must give one line per interval, not one
// per event, while a second address is tracked on its own.
func TestWatchPeersRepeatsAtMostOncePerInterval(t *testing.T) {
	sys, logger, logs := watchLog(slog.LevelInfo)
	const every = 100 * time.Millisecond
	stop := WatchPeers(sys, logger, every)
	defer stop()
	es := sys.EventStream

	const a, b = "10.0.0.1:7001", "10.0.0.2:7002"
	// What protoactor logs before it publishes the event.
	sys.Logger().Error("EndpointWriter failed to connect", slog.String("address", a), slog.Any("error", errors.New("dial tcp 10.0.0.1:7001: connect: connection refused")), slog.Int("retry", 0))
	start := time.Now()
	es.Publish(&remote.EndpointTerminatedEvent{Address: a})
	es.Publish(&remote.EndpointTerminatedEvent{Address: b})
	for time.Since(start) < 6*every {
		es.Publish(&remote.EndpointTerminatedEvent{Address: a})
		for range 50 {
			es.Publish(&actor.DeadLetterEvent{PID: actor.NewPID(a, "acceptor"), Message: &messages.Prepare{}})
		}
		time.Sleep(time.Millisecond) // pacing the flood, not waiting for a result
	}
	elapsed := time.Since(start)
	es.Publish(&remote.EndpointConnectedEvent{Address: a})
	eventually(t, time.Second, "reachable again", func() bool {
		return countLines(logLines(t, logs), "INFO", "peer reachable again", a) == 1
	})

	lines := logLines(t, logs)
	if n := countLines(lines, "WARN", "peer unreachable", a); n != 1 {
		t.Errorf("%d \"peer unreachable\" lines for %s, want 1", n, a)
	}
	if n := countLines(lines, "WARN", "peer unreachable", b); n != 1 {
		t.Errorf("%d \"peer unreachable\" lines for %s, want 1", n, b)
	}
	repeats := countLines(lines, "WARN", "peer still unreachable", a)
	if limit := int(elapsed/every) + 1; repeats < 2 || repeats > limit {
		t.Errorf("%d repeat lines for %s in %v, want 2..%d", repeats, a, elapsed, limit)
	}
	// b had no news after going down: nothing to repeat.
	if n := countLines(lines, "WARN", "peer still unreachable", b); n != 0 {
		t.Errorf("%d repeat lines for %s, which had no new failures", n, b)
	}
	for _, l := range lines {
		switch {
		case l["msg"] == "peer unreachable" && l["address"] == a:
			if l["reason"] != "dial tcp 10.0.0.1:7001: connect: connection refused" {
				t.Errorf("reason = %v, want the error protoactor logged", l["reason"])
			}
		case l["msg"] == "peer unreachable" && l["address"] == b:
			if l["reason"] != "connection lost" {
				t.Errorf("reason = %v, want \"connection lost\" when protoactor logged none", l["reason"])
			}
		case l["msg"] == "peer reachable again":
			if d, _ := l["dead_letters"].(float64); d < 50 {
				t.Errorf("reachable again with dead_letters %v, want the count", l["dead_letters"])
			}
		case l["msg"] == "EndpointWriter failed to connect":
			t.Errorf("protoactor's connect error not demoted: %v", l)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs.String())
	}
}

// TestWatchPeersMatching ignores addresses that are not peers, such as a
// client that has gone away, and stops logging once stopped.
func TestWatchPeersMatching(t *testing.T) {
	sys, logger, logs := watchLog(slog.LevelInfo)
	const peer, client = "10.0.0.1:7001", "10.0.0.9:40000"
	stop := WatchPeersMatching(sys, logger, time.Hour, func(addr string) bool { return addr == peer })
	sys.EventStream.Publish(&remote.EndpointTerminatedEvent{Address: client})
	sys.EventStream.Publish(&remote.EndpointTerminatedEvent{Address: peer})
	stop()
	stop()
	sys.EventStream.Publish(&remote.EndpointConnectedEvent{Address: peer})

	lines := logLines(t, logs)
	if n := countLines(lines, "WARN", "peer unreachable", peer); n != 1 {
		t.Errorf("%d lines for the peer, want 1", n)
	}
	if n := countLines(lines, "WARN", "peer unreachable", client); n != 0 {
		t.Errorf("%d lines for a non-peer, want 0", n)
	}
	if n := countLines(lines, "INFO", "peer reachable again", ""); n != 0 {
		t.Errorf("logged after stop: %s", logs.String())
	}
}
