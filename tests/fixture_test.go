package tests

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// A data directory written by the build of 2026-12-07 (format 1,
// testdata/datadir-v1: a snapshot and a log after it, no LOGRANGE) opens
// in this build with every key it held, and is upgraded in place to
// format 2 (LOGRANGE written, the format recorded): no later build may
// stop reading an older format without saying so.
func TestDataDirectoryOfFormat1StillOpens(t *testing.T) {
	t.Parallel()
	dir := openFixture(t, "datadir-v1", "fixture-v1")
	if _, err := os.Stat(filepath.Join(dir, "LOGRANGE")); err != nil {
		t.Errorf("the format-1 directory was not given its LOGRANGE: %v", err)
	}
	if f := identityFormat(t, dir); f != 2 {
		t.Errorf("the format-1 directory records format %d once opened, want 2", f)
	}
}

// A data directory of format 2 (testdata/datadir-v2, written by the build
// of 2026-12-07 that introduced it: LOGRANGE always there) opens in this
// build with every key it held.
func TestDataDirectoryOfFormat2StillOpens(t *testing.T) {
	t.Parallel()
	dir := openFixture(t, "datadir-v2", "fixture-v2")
	if f := identityFormat(t, dir); f != 2 {
		t.Errorf("the format-2 directory records format %d once opened, want 2", f)
	}
}

// openFixture starts a one-node group on a copy of testdata/name/n1 and
// reads back the keys every fixture holds (see its README.md): key1 to
// key20 but key3, and k-last. It returns the copy, the node still running.
func openFixture(t *testing.T, name, clusterID string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "n1")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", name, "n1"))); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 2)
	peer := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	client := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	bin := livepaxosBin(t)
	node := startProcess(t, bin, filepath.Join(t.TempDir(), "node.log"), "node", "--id", "1", "--peers", "1="+peer,
		"--client-listen", client, "--cluster-id", clusterID, "--data", dir, "--log-level", "info")
	want := map[string]string{"k-last": "last", "key3": ""}
	for i := 1; i <= 20; i++ {
		if i != 3 {
			want[fmt.Sprintf("key%d", i)] = fmt.Sprintf("value%d", i)
		}
	}
	waitFor(t, 20*time.Second, "the node on "+name+" to serve", func() error {
		if r := runCLI(t, bin, nil, "get", "--endpoints", client, "k-last"); r.code != 0 {
			return fmt.Errorf("exit %d: %s (log: %s)", r.code, strings.TrimSpace(r.stderr), node.tail(5))
		}
		return nil
	})
	for k, v := range want {
		r := runCLI(t, bin, nil, "get", "--endpoints", client, k)
		if got := strings.TrimSpace(r.stdout); (v == "" && r.code == 0) || (v != "" && got != v) {
			t.Errorf("get %s on %s: %q (exit %d, %s), want %q", k, name, got, r.code, strings.TrimSpace(r.stderr), v)
		}
	}
	return dir
}

// identityFormat is the data format dir's IDENTITY records (a MetaRecord
// followed by its CRC-32C; see actors/identity.go).
func identityFormat(t *testing.T, dir string) uint32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "IDENTITY"))
	if err != nil || len(b) < 4 {
		t.Fatalf("IDENTITY: %v (%d bytes)", err, len(b))
	}
	meta := &messages.MetaRecord{}
	if err := proto.Unmarshal(b[:len(b)-4], meta); err != nil {
		t.Fatal(err)
	}
	return meta.Format
}
