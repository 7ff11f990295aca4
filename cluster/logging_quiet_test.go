package cluster

import (
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"
)

// protoactorLogger is the logger loggerFactory gives a system, writing JSON
// lines at level to a buffer.
func protoactorLogger(level slog.Level) (*slog.Logger, *lockedBuffer) {
	buf := &lockedBuffer{}
	base := slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: level}))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(loggerFactory(base)))
	return sys.Logger(), buf
}

// TestQuietHandlerDemotesReconnectChatter writes each line of quietRules the
// way protoactor does: none may show at warn, and all show at debug as
// Debug. Other lines, and the same text at another level, keep their level.
func TestQuietHandlerDemotesReconnectChatter(t *testing.T) {
	warn, warnBuf := protoactorLogger(slog.LevelWarn)
	debug, debugBuf := protoactorLogger(slog.LevelDebug)
	for msg, rule := range quietRules {
		for _, l := range []*slog.Logger{warn, debug} {
			l.Log(t.Context(), rule.level, msg, slog.String("address", "10.0.0.1:7001"), slog.Any("error", errors.New("boom")))
		}
	}
	warnLines, debugLines := logLines(t, warnBuf), logLines(t, debugBuf)
	var afterStart []map[string]any
	for _, l := range warnLines {
		if l["msg"] != "actor system started" {
			afterStart = append(afterStart, l)
		}
	}
	if len(afterStart) != 0 {
		t.Errorf("at warn, demoted lines were written: %v", afterStart)
	}
	for msg := range quietRules {
		if n := countLines(debugLines, "DEBUG", msg, ""); n != 1 {
			t.Errorf("at debug, %q written %d times at DEBUG, want once", msg, n)
		}
	}

	warn.Error("EndpointReader failed to deserialize", slog.Any("error", errors.New("bad")))
	warn.Warn("EndpointWriter lost connection", slog.String("address", "10.0.0.1:7001"))
	lines := logLines(t, warnBuf)
	if countLines(lines, "ERROR", "EndpointReader failed to deserialize", "") != 1 {
		t.Errorf("a line outside quietRules lost its level:\n%s", warnBuf.String())
	}
	if countLines(lines, "WARN", "EndpointWriter lost connection", "10.0.0.1:7001") != 1 {
		t.Errorf("a quietRules text at another level was demoted:\n%s", warnBuf.String())
	}
	for _, l := range lines {
		if l["lib"] != "protoactor" {
			t.Errorf("line without lib=protoactor: %v", l)
		}
	}
}

// TestQuietHandlerNotesReasons checks the reasons WatchPeers reports: the
// error of a connection failure, a fixed text for a peer's goodbye (an Info
// line, noted even when the node logs at warn), per address.
func TestQuietHandlerNotesReasons(t *testing.T) {
	buf := &lockedBuffer{}
	base := slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(loggerFactory(base)))
	reasons := reasonsOf(sys)
	if reasons == nil {
		t.Fatal("reasonsOf found no quietHandler behind loggerFactory")
	}
	// protoactor calls With on its logger in places; the table is shared.
	l := sys.Logger().With(slog.String("extra", "x"))
	l.Error("EndpointWriter failed to connect", slog.String("address", "a:1"), slog.Any("error", errors.New("connection refused")), slog.Int("retry", 0))
	l.Error("EndpointWriter lost connection", slog.String("address", "b:1"), slog.Any("error", errors.New("EOF")))
	l.Info("EndpointWriter got DisconnectRequest form remote", slog.String("address", "c:1"))
	l.Error("EndpointWriter error when closing the stream", slog.Any("error", errors.New("closing")))
	l.Error("something else", slog.String("address", "d:1"), slog.Any("error", errors.New("other")))

	for addr, want := range map[string]string{
		"a:1": "connection refused",
		"b:1": "EOF",
		"c:1": "peer is shutting down",
		"d:1": "",
	} {
		if got := reasons.get(addr); got != want {
			t.Errorf("reason for %s = %q, want %q", addr, got, want)
		}
	}
	if reasonsOf(actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discardLogger() }))) != nil {
		t.Error("reasonsOf found a table on a system with another logger")
	}
}

// TestConnReasonsBounded: addresses and error texts come from outside.
func TestConnReasonsBounded(t *testing.T) {
	c := newConnReasons(3)
	for _, a := range []string{"a:1", "b:1", "c:1", "d:1", "e:1"} {
		c.set(a, "r")
	}
	if n := len(c.m); n != 3 {
		t.Errorf("table holds %d addresses, want the bound 3", n)
	}
	if c.get("e:1") != "r" {
		t.Error("newest address evicted")
	}
	long := strings.Repeat("é", maxReasonLen) // 2 bytes each: the cut splits one
	c.set("e:1", long)
	if got := c.get("e:1"); len(got) > maxReasonLen+3 || !utf8.ValidString(got) || !strings.HasSuffix(got, "...") {
		t.Errorf("long reason stored as %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
	c.set(strings.Repeat("h", maxAddressLen+1)+":1", "r")
	if len(c.m) != 3 {
		t.Error("an over-long address was stored")
	}
	var none *connReasons
	if none.get("a:1") != "" {
		t.Error("nil table returned a reason")
	}
}

// logCall matches protoactor's log calls: Logger().Error("text", ...).
var logCall = regexp.MustCompile(`Logger\(\)\.(Debug|Info|Warn|Error)\(\s*"((?:[^"\\]|\\.)*)"`)

// TestQuietRulesMatchProtoactorSource reads protoactor's source from the
// module cache: every quietRules text must be logged there at the rule's
// level. After an upgrade that rewords a line, this fails instead of the
// line coming back at Error on every reconnect.
func TestQuietRulesMatchProtoactorSource(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/asynkron/protoactor-go").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Skipf("protoactor source not found (go list: %v)", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "remote", "*.go"))
	files = append(files, filepath.Join(dir, "actor", "deadletter.go"))
	logged := map[string]map[string]bool{} // text -> levels
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range logCall.FindAllStringSubmatch(string(src), -1) {
			if logged[m[2]] == nil {
				logged[m[2]] = map[string]bool{}
			}
			logged[m[2]][strings.ToUpper(m[1])] = true
		}
	}
	if len(logged) < 20 {
		t.Fatalf("found only %d log calls in %s: pattern out of date?", len(logged), dir)
	}
	for msg, rule := range quietRules {
		if !logged[msg][rule.level.String()] {
			t.Errorf("protoactor does not log %q at %s (found at %v)", msg, rule.level, logged[msg])
		}
	}
}

// BenchmarkQuietHandler measures the lines protoactor writes on its hot
// paths (Debug, dropped at warn) and per connection event (a demoted Error
// whose reason is noted).
func BenchmarkQuietHandler(b *testing.B) {
	base := slog.New(slog.NewJSONHandler(&lockedBuffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	l := actor.NewActorSystem(actor.WithLoggerFactory(loggerFactory(base))).Logger()
	err := errors.New("connection refused")
	b.Run("debug", func(b *testing.B) {
		for b.Loop() {
			l.Debug("gRPC Failed to send", slog.String("address", "10.0.0.1:7001"), slog.Any("error", err))
		}
	})
	b.Run("demoted-error", func(b *testing.B) {
		for b.Loop() {
			l.Error("EndpointWriter failed to connect", slog.String("address", "10.0.0.1:7001"), slog.Any("error", err), slog.Int("retry", 0))
		}
	})
}
