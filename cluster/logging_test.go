package cluster

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestLoggerForLevel(t *testing.T) {
	for _, tc := range []struct {
		level      string
		debug, err bool // whether a Debug line and an Error line are written
	}{
		{"debug", true, true},
		{"INFO", false, true},
		{"warn", false, true},
		{"error", false, true},
		{"off", false, false},
	} {
		var buf bytes.Buffer
		l, err := LoggerForLevel(tc.level, &buf)
		if err != nil {
			t.Fatalf("LoggerForLevel(%q): %v", tc.level, err)
		}
		l.Debug("d-line")
		l.Error("e-line")
		if got := strings.Contains(buf.String(), "d-line"); got != tc.debug {
			t.Errorf("%s: debug written = %v", tc.level, got)
		}
		if got := strings.Contains(buf.String(), "e-line"); got != tc.err {
			t.Errorf("%s: error written = %v", tc.level, got)
		}
	}
	var buf bytes.Buffer
	l, _ := LoggerForLevel("warn", &buf)
	l.Info("i-line")
	if buf.Len() != 0 {
		t.Errorf("warn logger wrote an Info line: %q", buf.String())
	}

	for _, bad := range []string{"", "verbose", "trace", "2"} {
		if _, err := LoggerForLevel(bad, &buf); !errors.Is(err, ErrBadLogLevel) || !strings.Contains(err.Error(), "want debug, info, warn, error or off") {
			t.Errorf("LoggerForLevel(%q): %v, want ErrBadLogLevel listing the choices", bad, err)
		}
	}
}
