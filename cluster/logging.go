package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// ErrBadLogLevel is wrapped by LoggerForLevel when the level is not one of
// debug, info, warn, error, off.
var ErrBadLogLevel = errors.New("cluster: unknown log level")

// LoggerForLevel builds the logger behind the CLI's --log-level flag: a text
// logger writing to w at the given level, or a logger that discards
// everything for "off". Level names are case-insensitive.
func LoggerForLevel(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "debug":
		l = slog.LevelDebug
	case "info":
		l = slog.LevelInfo
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	case "off":
		return discardLogger(), nil
	default:
		return nil, fmt.Errorf("%w %q (want debug, info, warn, error or off)", ErrBadLogLevel, level)
	}
	if w == nil {
		return nil, fmt.Errorf("cluster: LoggerForLevel(%q): nil writer", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// LoggerFor is LoggerForLevel with a format: "text" (key=value lines) or
// "json" (one JSON object a line, for a log collector).
func LoggerFor(level, format string, w io.Writer) (*slog.Logger, error) {
	l, err := LoggerForLevel(level, w)
	if err != nil || strings.ToLower(strings.TrimSpace(level)) == "off" {
		return l, err
	}
	switch strings.ToLower(strings.TrimSpace(format)) {
	case "", "text":
		return l, nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: levelOf(l)})), nil
	}
	return nil, fmt.Errorf("%w %q (want text or json)", ErrBadLogFormat, format)
}

// ErrBadLogFormat is wrapped by LoggerFor when the format is not text or
// json.
var ErrBadLogFormat = errors.New("cluster: unknown log format")

// levelOf is the lowest level l logs.
func levelOf(l *slog.Logger) slog.Level {
	for _, lv := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		if l.Enabled(context.Background(), lv) {
			return lv
		}
	}
	return slog.LevelError
}

// discardLogger is the default for protoactor: its stock logger prints
// coloured Info lines to stderr for every connection, which drowns a node's
// own logs and costs time on the hot path.
func discardLogger() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}

// loggerFactory routes protoactor's logs (actor system and remote alike) to
// base, tagged so that they can be told from the node's own lines, through a
// quietHandler: a dead peer makes protoactor log errors on every reconnect
// attempt, which WatchPeers replaces with one line per interval.
func loggerFactory(base *slog.Logger) func(*actor.ActorSystem) *slog.Logger {
	return func(sys *actor.ActorSystem) *slog.Logger {
		next := base.Handler().WithAttrs([]slog.Attr{
			slog.String("lib", "protoactor"),
			slog.String("system", sys.ID),
		})
		return slog.New(&quietHandler{next: next, reasons: newConnReasons(maxRecordedAddresses)})
	}
}

// peerNote says what a protoactor line tells about the remote address in its
// "address" attribute.
type peerNote uint8

const (
	noteNothing peerNote = iota
	// noteError: the connection failed; the line's "error" attribute is why.
	noteError
	// noteFixed: the connection ended for the rule's fixed reason.
	noteFixed
)

// quietRule is what quietHandler does with one of protoactor's lines.
type quietRule struct {
	// level is the level protoactor logs the line at; the same text at
	// another level is some other line and is left alone.
	level  slog.Level
	note   peerNote
	reason string // for noteFixed
}

// quietRules are the lines protoactor (v0.0.0-20240822202345-3c0e61ca19c9)
// writes while a peer is down or flapping, keyed by their exact text. Each
// is written once per connection or reconnect attempt (every 2 s while the
// node keeps sending to a dead peer), or per dead letter; all are demoted to
// Debug. WatchPeers reports the peer's state instead, with the reason noted
// here.
var quietRules = map[string]quietRule{
	// remote/endpoint_writer.go: connecting, losing the connection, and
	// tearing the endpoint down.
	"EndpointWriter failed to connect":                          {level: slog.LevelError, note: noteError},
	"EndpointWriter failed to create receive stream":            {level: slog.LevelError, note: noteError},
	"EndpointWriter failed to send connect request":             {level: slog.LevelError, note: noteError},
	"EndpointWriter failed to receive connect response":         {level: slog.LevelError, note: noteError},
	"EndpointWriter got invalid connect response":               {level: slog.LevelError, note: noteFixed, reason: "invalid connect response"},
	"EndpointWriter lost connection":                            {level: slog.LevelError, note: noteError},
	"EndpointWriter got DisconnectRequest form remote":          {level: slog.LevelInfo, note: noteFixed, reason: "peer is shutting down"},
	"EndpointWriter error when closing the stream":              {level: slog.LevelError},
	"EndpointWriter error when closing the client conn":         {level: slog.LevelError},
	"Started EndpointWriter. connecting":                        {level: slog.LevelInfo},
	"EndpointWriter received EndpointTerminatedEvent, stopping": {level: slog.LevelInfo},
	"EndpointWriter closing client connection":                  {level: slog.LevelInfo},
	// remote/endpoint_watcher.go: one watcher per endpoint, restarted with it.
	"Started EndpointWatcher":                                         {level: slog.LevelInfo},
	"EndpointWatcher handling terminated":                             {level: slog.LevelInfo},
	"EndpointWatcher handling restart":                                {level: slog.LevelInfo},
	"EndpointWatcher receive message for already terminated endpoint": {level: slog.LevelError},
	// remote/endpoint_reader.go: the inbound side of a connection ending.
	"EndpointReader failed to read": {level: slog.LevelInfo},
	"EndpointReader stream closed":  {level: slog.LevelInfo},
	"EndpointReader is closing":     {level: slog.LevelInfo},
	// actor/deadletter.go: every message to a dead peer becomes a dead
	// letter; both the sampled lines and the "throttled" count.
	"[DeadLetter]": {level: slog.LevelInfo},
}

// quietHandler sits between protoactor and the node's handler. It demotes
// the lines in quietRules to Debug and notes, per remote address, why the
// last connection failed, for WatchPeers. Every other line passes unchanged.
//
// protoactor logs on hot paths only at Debug; lines at Info and above come
// once per connection event, so inspecting them costs nothing that matters.
type quietHandler struct {
	next    slog.Handler
	reasons *connReasons
}

// Enabled admits Info and above even when next would drop them, so that
// the reasons are noted at any log level; Handle drops them afterwards.
func (h *quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if rule, ok := quietRules[r.Message]; ok && rule.level == r.Level {
		h.note(rule, r)
		r.Level = slog.LevelDebug
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *quietHandler) note(rule quietRule, r slog.Record) {
	if rule.note == noteNothing {
		return
	}
	var addr, reason string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "address":
			addr = a.Value.String()
		case "error":
			if rule.note == noteError {
				reason = a.Value.String()
			}
		}
		return true
	})
	if rule.note == noteFixed {
		reason = rule.reason
	}
	if addr != "" && reason != "" {
		h.reasons.set(addr, reason)
	}
}

func (h *quietHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &quietHandler{next: h.next.WithAttrs(attrs), reasons: h.reasons}
}

func (h *quietHandler) WithGroup(name string) slog.Handler {
	return &quietHandler{next: h.next.WithGroup(name), reasons: h.reasons}
}

// Bounds on what connReasons keeps. The addresses a node dials include its
// clients' (to answer them), and error texts can carry a remote server's
// status message: neither may grow memory without bound.
const (
	maxRecordedAddresses = 1024
	maxAddressLen        = 256
	maxReasonLen         = 256
)

// connReasons holds the last connection error seen per remote address.
type connReasons struct {
	mu  sync.Mutex
	m   map[string]string
	max int
}

func newConnReasons(max int) *connReasons {
	return &connReasons{m: make(map[string]string), max: max}
}

// set records reason for addr, truncated; when the table is full, an
// arbitrary other address is forgotten to make room.
func (c *connReasons) set(addr, reason string) {
	if len(addr) > maxAddressLen {
		return
	}
	if len(reason) > maxReasonLen {
		reason = strings.ToValidUTF8(reason[:maxReasonLen], "") + "..."
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[addr]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[addr] = reason
}

// get returns the last reason recorded for addr, or "".
func (c *connReasons) get(addr string) string {
	if c == nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[addr]
}

// reasonsOf returns the connection errors noted by sys's logger, or nil
// when sys was not built with loggerFactory.
func reasonsOf(sys *actor.ActorSystem) *connReasons {
	if l := sys.Logger(); l != nil {
		if h, ok := l.Handler().(*quietHandler); ok {
			return h.reasons
		}
	}
	return nil
}
