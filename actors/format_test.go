package actors

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/storage"
)

// A data directory records its format. One of a newer format than this
// binary reads is refused with a message naming both, before anything in
// it is touched; one of a known format, or of none recorded (made before
// formats were), opens.
func TestDataDirectoryFormatIsChecked(t *testing.T) {
	for _, tc := range []struct {
		format uint32
		ok     bool
	}{{0, true}, {DataFormat, true}, {DataFormat + 1, false}, {1 << 20, false}} {
		dir := t.TempDir()
		meta := &messages.MetaRecord{ClusterId: "c", NodeId: 1, Incarnation: 7, Fresh: true, Format: tc.format}
		if err := writeIdentity(filepath.Join(dir, identityFile), meta); err != nil {
			t.Fatal(err)
		}
		_, err := checkIdentity(dir, "c", 1, false)
		if tc.ok != (err == nil) {
			t.Fatalf("format %d: %v", tc.format, err)
		}
		if !tc.ok && (!errors.Is(err, ErrDataFormat) || !strings.Contains(err.Error(), "format") ||
			!strings.Contains(err.Error(), "formats 1 to 1")) {
			t.Fatalf("format %d refused with %v: not ErrDataFormat naming both formats", tc.format, err)
		}
	}
}

// A directory whose identity file says its node has voted, but whose log
// segments are gone, is refused as corrupt (so --on-corruption rebuild
// moves it aside): starting on an empty log would forget its promises.
func TestVotedDirectoryWithoutItsLogIsRefused(t *testing.T) {
	dir := t.TempDir()
	meta := &messages.MetaRecord{ClusterId: "c", NodeId: 1, Incarnation: 7, Fresh: false, Format: DataFormat}
	if err := writeIdentity(filepath.Join(dir, identityFile), meta); err != nil {
		t.Fatal(err)
	}
	if _, err := checkIdentity(dir, "c", 1, false); !errors.Is(err, ErrLogMissing) || !errors.Is(err, storage.ErrSegmentMissing) ||
		!errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("a voted directory without segments: %v, want ErrLogMissing wrapping storage.ErrSegmentMissing and ErrCorrupt", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "0000000000000001.wal"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := checkIdentity(dir, "c", 1, false); err != nil {
		t.Fatalf("with its segment back: %v", err)
	}
}
