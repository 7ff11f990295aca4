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
)

// A data directory written by the build of 2026-12-07 (format 1,
// testdata/datadir-v1: a snapshot and a log after it) opens in this build
// with every key it held: no later build may stop reading an older format
// without saying so.
func TestDataDirectoryOfFormat1StillOpens(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n1")
	if err := os.CopyFS(dir, os.DirFS("testdata/datadir-v1/n1")); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 2)
	peer := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	client := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	bin := livepaxosBin(t)
	node := startProcess(t, bin, filepath.Join(t.TempDir(), "node.log"), "node", "--id", "1", "--peers", "1="+peer,
		"--client-listen", client, "--cluster-id", "fixture-v1", "--data", dir, "--log-level", "info")
	want := map[string]string{"k-last": "last", "key3": ""}
	for i := 1; i <= 20; i++ {
		if i != 3 {
			want[fmt.Sprintf("key%d", i)] = fmt.Sprintf("value%d", i)
		}
	}
	waitFor(t, 20*time.Second, "the node on the old directory to serve", func() error {
		if r := runCLI(t, bin, nil, "get", "--endpoints", client, "k-last"); r.code != 0 {
			return fmt.Errorf("exit %d: %s (log: %s)", r.code, strings.TrimSpace(r.stderr), node.tail(5))
		}
		return nil
	})
	for k, v := range want {
		r := runCLI(t, bin, nil, "get", "--endpoints", client, k)
		if got := strings.TrimSpace(r.stdout); (v == "" && r.code == 0) || (v != "" && got != v) {
			t.Errorf("get %s on the format-1 directory: %q (exit %d, %s), want %q", k, got, r.code, strings.TrimSpace(r.stderr), v)
		}
	}
}
