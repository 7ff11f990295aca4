package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/db"
)

// TestNodeRefusesBadInput checks that bad requests and bad node flags are
// refused with a clear message and the right exit status, and change
// nothing: not the replicated log, not a data directory.
func TestNodeRefusesBadInput(t *testing.T) {
	t.Parallel()
	// Default --max-value-bytes (1 MiB). A long lease: an idle master renews
	// its lease through the log every half lease (§5.2), which would move
	// the log this test watches for refused requests.
	c, _ := newWritableCluster(t, 3, "--lease-timeout", "10m", "--boost-interval", "10m")
	eps := strings.Join(c.endpoints(), ",")

	// logUnchanged fails if any node's log moved since before: a refused
	// request must not take a log slot.
	before := c.waitConverged(10 * time.Second)
	logUnchanged := func(what string) {
		t.Helper()
		for id := 1; id <= 3; id++ {
			st, err := c.status(id)
			if err != nil {
				t.Fatalf("%s: status of node %d: %v", what, id, err)
			}
			if st.LastChosen != before || st.LastApplied != before {
				t.Errorf("%s: node %d log moved from %d to chosen=%d applied=%d", what, id, before, st.LastChosen, st.LastApplied)
			}
		}
	}
	absent := func(key string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, found, err := c.cl.Get(ctx, []byte(key))
		if err != nil {
			t.Fatalf("get %q: %v", key, err)
		}
		if found {
			t.Errorf("key %q exists after its put was refused", key)
		}
	}

	t.Run("empty key", func(t *testing.T) {
		r := runCLI(t, c.bin, nil, "put", "--endpoints", eps, "", "v")
		if r.code == 0 || !strings.Contains(r.stderr, "empty key") {
			t.Errorf("put with an empty key: exit %d, stderr %q; want nonzero and a message saying the key is empty", r.code, r.stderr)
		}
		logUnchanged("put with an empty key")
	})

	t.Run("value over the limit", func(t *testing.T) {
		big := bytes.Repeat([]byte("x"), db.DefaultMaxValueBytes+1)
		r := runCLI(t, c.bin, big, "put", "--endpoints", eps, "big", "-")
		if r.code == 0 || !strings.Contains(r.stderr, "too large") || !strings.Contains(r.stderr, strconv.Itoa(len(big))) {
			t.Errorf("put of %d bytes: exit %d, stderr %q; want nonzero and the size in the message", len(big), r.code, r.stderr)
		}
		logUnchanged("CLI put over the limit")

		// The CLI checked before sending. The node must refuse too, for a
		// client whose own limit is looser.
		loose, err := client.New(client.Config{Endpoints: c.endpoints(), Limits: db.Limits{MaxValueBytes: 2 << 20}})
		if err != nil {
			t.Fatal(err)
		}
		defer loose.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = loose.Put(ctx, []byte("big"), big)
		if !errors.Is(err, client.ErrValueTooLarge) {
			t.Errorf("put of %d bytes from a client with a 2 MiB limit: %v, want ErrValueTooLarge from the node", len(big), err)
		}
		logUnchanged("client put over the node's limit")
		absent("big")

		// Exactly the limit is fine.
		r = runCLI(t, c.bin, big[:db.DefaultMaxValueBytes], "put", "--endpoints", eps, "max", "-")
		if r.code != 0 {
			t.Fatalf("put of exactly %d bytes: exit %d, stderr %q", db.DefaultMaxValueBytes, r.code, r.stderr)
		}
		v, found, err := c.cl.Get(ctx, []byte("max"))
		if err != nil || !found || !bytes.Equal(v, big[:db.DefaultMaxValueBytes]) {
			t.Errorf("get of the 1 MiB value: found=%v len=%d err=%v", found, len(v), err)
		}
	})

	t.Run("unknown flag", func(t *testing.T) {
		r := runCLI(t, c.bin, nil, "put", "--nope")
		if r.code != 2 || !strings.Contains(r.stderr, "--nope") {
			t.Errorf("put --nope: exit %d, stderr %q; want exit 2 naming the flag", r.code, r.stderr)
		}
	})

	t.Run("malformed peers", func(t *testing.T) {
		for _, tc := range []struct{ peers, want string }{
			{"1=a", `"1=a"`},
			{"x=127.0.0.1:1", `"x"`},
			{"1=127.0.0.1:99999", "99999"},
			{"", "--peers"},
			{"1=127.0.0.1:7001,1=127.0.0.1:7002", "duplicate id 1"},
		} {
			data := filepath.Join(t.TempDir(), "data")
			r := runCLI(t, c.bin, nil, "node", "--id", "1", "--peers", tc.peers, "--data", data)
			if r.code != 2 || !strings.Contains(r.stderr, "--peers") || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("node --peers %q: exit %d, stderr %q; want exit 2 and a message about --peers naming %s",
					tc.peers, r.code, r.stderr, tc.want)
			}
			if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("node --peers %q created its data directory (stat: %v)", tc.peers, err)
			}
		}
	})

	t.Run("data directory of another node", func(t *testing.T) {
		c.stop(1)
		dir := c.node(1).dataDir
		snap := snapshotDir(t, dir)
		if len(snap) == 0 {
			t.Fatalf("node 1 left nothing in %s", dir)
		}
		other := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePorts(t, 1)[0]))
		otherPeers := fmt.Sprintf("1=%s,2=%s", c.node(1).addr, c.node(2).addr)
		for _, tc := range []struct {
			name string
			args []string
		}{
			{"node 2 of the same cluster", []string{"--id", "2", "--peers", c.peers, "--listen", other}},
			{"node 1 of another --cluster-id", []string{"--id", "1", "--peers", c.peers, "--cluster-id", "another"}},
			{"node 1 of another --peers", []string{"--id", "1", "--peers", otherPeers}},
		} {
			args := append([]string{"node", "--data", dir, "--log-level", "info"}, tc.args...)
			r := runCLI(t, c.bin, nil, args...)
			if r.code == 0 || !strings.Contains(r.stderr, "belongs to") {
				t.Errorf("%s on node 1's directory: exit %d, stderr tail %q; want nonzero and \"belongs to\"",
					tc.name, r.code, lastLines(r.stderr, 3))
			}
			if d := diffSnapshots(snap, snapshotDir(t, dir)); d != "" {
				t.Errorf("%s was refused but changed node 1's directory: %s", tc.name, d)
			}
		}

		// The rightful owner still starts from it and rejoins.
		c.start(1)
		c.waitServing(1, 10*time.Second)
		l := c.written("after-refusals", 20, 4)
		if acked, unknown, failed := l.counts(); acked != 20 {
			t.Errorf("after node 1 came back: %d of 20 writes acknowledged (unknown=%d failed=%d, errors %s)",
				acked, unknown, failed, l.topErrors())
		}
		c.waitConverged(20 * time.Second)
	})
}
