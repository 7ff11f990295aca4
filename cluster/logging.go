package cluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

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

// discardLogger is the default for protoactor: its stock logger prints
// coloured Info lines to stderr for every connection, which drowns a node's
// own logs and costs time on the hot path.
func discardLogger() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}

// loggerFactory routes protoactor's logs (actor system and remote alike) to
// base, tagged so that they can be told from the node's own lines.
func loggerFactory(base *slog.Logger) func(*actor.ActorSystem) *slog.Logger {
	return func(sys *actor.ActorSystem) *slog.Logger {
		return base.With(slog.String("lib", "protoactor"), slog.String("system", sys.ID))
	}
}
