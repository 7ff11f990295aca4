package tests

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/client"
)

// Issue 16, item 4, with real processes: a watcher of a prefix sees every
// acknowledged put once, in log order, while each node in turn is killed
// and restarted under it (the watch resumes at another node from the
// instance after the last it saw); a put whose outcome was unknown is seen
// at most once. The CLI's watch --from prints the same changes.
func TestWatchEveryChangeOnceAcrossNodeFailures(t *testing.T) {
	t.Parallel()
	c, _ := newWritableCluster(t, 3)
	ctx := testContext(t, 90*time.Second)
	wctx, stopWatch := context.WithCancel(ctx)
	updates := c.cl.Watch(wctx, []byte("lpk-w/"), client.WatchOptions{Prefix: true, From: 1})
	type seen struct {
		instance uint64
		value    int
	}
	var mu sync.Mutex
	var got []seen
	done := make(chan struct{})
	go func() {
		defer close(done)
		for u := range updates {
			mu.Lock()
			if u.Reset {
				t.Errorf("a reset at %d: the changes were held", u.Instance)
			}
			for _, e := range u.Events {
				v, _ := strconv.Atoi(string(e.Value))
				got = append(got, seen{e.Instance, v})
			}
			mu.Unlock()
		}
	}()

	const writes = 300
	acked := map[int]bool{}
	unknown := map[int]bool{}
	next := 0
	write := func(n int) {
		for ; n > 0; n-- {
			next++
			err := c.cl.Put(ctx, []byte(fmt.Sprintf("lpk-w/%d", next%17)), []byte(strconv.Itoa(next)))
			switch {
			case err == nil:
				acked[next] = true
			case errors.Is(err, client.ErrOutcomeUnknown), errors.Is(err, client.ErrMasterChanged):
				unknown[next] = true
			default:
				t.Fatalf("put %d: %v", next, err)
			}
		}
	}
	for id := 1; id <= 3; id++ {
		write(writes / 4)
		c.kill(id)
		write(writes / 12)
		c.start(id)
		c.waitServing(id, 20*time.Second)
	}
	write(writes / 4)
	c.waitConverged(20 * time.Second)
	waitFor(t, 20*time.Second, "the watcher to see the last acknowledged put", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) == 0 || got[len(got)-1].value < next && acked[next] {
			return fmt.Errorf("%d changes seen", len(got))
		}
		return nil
	})
	stopWatch()
	<-done
	mu.Lock()
	defer mu.Unlock()
	count := map[int]int{}
	for i, s := range got {
		count[s.value]++
		if i > 0 && (s.instance < got[i-1].instance || s.value <= got[i-1].value) {
			t.Fatalf("change %d (instance %d, put %d) after (instance %d, put %d): out of order",
				i, s.instance, s.value, got[i-1].instance, got[i-1].value)
		}
	}
	for v := range acked {
		if count[v] != 1 {
			t.Fatalf("acknowledged put %d seen %d times", v, count[v])
		}
	}
	for v, n := range count {
		if n != 1 || (!acked[v] && !unknown[v]) {
			t.Fatalf("put %d seen %d times (acknowledged %v)", v, n, acked[v])
		}
	}
	t.Logf("%d puts (%d acknowledged, %d unknown): %d changes seen once each, in order, across 3 node failures",
		next, len(acked), len(unknown), len(got))

	// The CLI from an instance: the first changes, as lines.
	r := runCLI(t, c.bin, nil, "watch", "--endpoints", strings.Join(c.endpoints(), ","), "--prefix", "lpk-w/",
		"--from", "1", "--count", "3")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); r.code != 0 || len(lines) != 3 ||
		lines[0] != fmt.Sprintf("%d put lpk-w/%d %d", got[0].instance, got[0].value%17, got[0].value) {
		t.Fatalf("watch --from 1 --count 3: %d %q %q", r.code, r.stdout, r.stderr)
	}
}
