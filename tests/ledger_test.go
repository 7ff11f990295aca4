package tests

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/client"
)

// ledger records the outcome of every write a test issues. Only a write
// whose call returned nil is acknowledged, and only acknowledged writes must
// survive; a write that returned client.ErrOutcomeUnknown may or may not have
// happened, and any other error means the client knows it was not applied.
type ledger struct {
	mu      sync.Mutex
	acked   map[string]ackedWrite
	unknown int
	maybe   map[string]string // the writes with an unknown outcome
	failed  int
	errs    map[string]int // failures by message, for the log
}

type ackedWrite struct {
	value      string
	start, end time.Time
}

func newLedger() *ledger {
	return &ledger{acked: map[string]ackedWrite{}, maybe: map[string]string{}, errs: map[string]int{}}
}

func (l *ledger) record(key, value string, start, end time.Time, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil:
		l.acked[key] = ackedWrite{value: value, start: start, end: end}
	case errors.Is(err, client.ErrOutcomeUnknown):
		l.unknown++
		l.maybe[key] = value
	default:
		l.failed++
	}
	if err != nil {
		msg := err.Error()
		if len(msg) > 100 {
			msg = msg[:100]
		}
		l.errs[msg]++
	}
}

func (l *ledger) counts() (acked, unknown, failed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked), l.unknown, l.failed
}

// firstAckStartedAfter returns when the first write under prefix that was
// sent after t was acknowledged. A write sent after a master was killed
// cannot have been served by it, so this is the first write served by its
// successor.
func (l *ledger) firstAckStartedAfter(t time.Time, prefix string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for k, w := range l.acked {
		if strings.HasPrefix(k, prefix) && w.start.After(t) && (first.IsZero() || w.end.Before(first)) {
			first = w.end
		}
	}
	return first, !first.IsZero()
}

func (l *ledger) ackedSnapshot() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]string, len(l.acked))
	for k, w := range l.acked {
		m[k] = w.value
	}
	return m
}

func (l *ledger) unknownSnapshot() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]string, len(l.maybe))
	for k, v := range l.maybe {
		m[k] = v
	}
	return m
}

func (l *ledger) topErrors() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	type kv struct {
		msg string
		n   int
	}
	var all []kv
	for m, n := range l.errs {
		all = append(all, kv{m, n})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n })
	if len(all) > 3 {
		all = all[:3]
	}
	return fmt.Sprint(all)
}

func valueFor(key string) string { return "value-of-" + key }

// written is a new ledger holding n writes (writeKeys) made to c.
func (c *testCluster) written(prefix string, n, workers int) *ledger {
	l := newLedger()
	writeKeys(c.cl, l, prefix, n, workers)
	return l
}

// writeKeys writes keys prefix/0 .. prefix/n-1 from workers goroutines and
// waits for all of them.
func writeKeys(c *client.Client, l *ledger, prefix string, n, workers int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				key := fmt.Sprintf("%s/%06d", prefix, i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				start := time.Now()
				err := c.Put(ctx, []byte(key), []byte(valueFor(key)))
				l.record(key, valueFor(key), start, time.Now(), err)
				cancel()
			}
		}()
	}
	wg.Wait()
}

// writeLoad keeps workers goroutines writing unique keys under prefix until
// stop is called, each write bounded by perWrite.
type writeLoad struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	issued atomic.Int64
}

func startLoad(c *client.Client, l *ledger, prefix string, workers int, perWrite time.Duration) *writeLoad {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writeLoad{cancel: cancel}
	for g := range workers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("%s/w%02d/%06d", prefix, g, i)
				// The write's own context is not the load's: stopping the
				// load must not turn writes in flight into failures.
				wctx, wcancel := context.WithTimeout(context.Background(), perWrite)
				start := time.Now()
				err := c.Put(wctx, []byte(key), []byte(valueFor(key)))
				l.record(key, valueFor(key), start, time.Now(), err)
				wcancel()
				w.issued.Add(1)
				if err != nil && !errors.Is(err, client.ErrOutcomeUnknown) {
					// Do not spin while no master is reachable.
					select {
					case <-ctx.Done():
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
		}()
	}
	return w
}

func (w *writeLoad) stop() {
	w.cancel()
	w.wg.Wait()
}

// verifyAcked reads every acknowledged key back (reads go through the log)
// and returns how many are missing or hold another value, failing the test
// if any is.
func verifyAcked(t *testing.T, c *client.Client, want map[string]string) (lost int) {
	t.Helper()
	missing, wrong, examples := readBack(t, c, want)
	if lost = missing + wrong; lost > 0 {
		t.Errorf("%d of %d acknowledged writes lost (%d missing, %d with another value), e.g. %v",
			lost, len(want), missing, wrong, examples)
	}
	return lost
}

// checkUnknown reads back the writes whose outcome was unknown: each may
// have happened or not, but a key (every key is written once) must never
// hold anything but its one value. It returns how many happened.
func checkUnknown(t *testing.T, c *client.Client, maybe map[string]string) (applied int) {
	t.Helper()
	missing, wrong, examples := readBack(t, c, maybe)
	if wrong > 0 {
		t.Errorf("%d writes with an unknown outcome left a value that was never written, e.g. %v", wrong, examples)
	}
	return len(maybe) - missing - wrong
}

// readBack reads every key of want with 16 readers and counts the keys that
// are absent and those that hold another value.
func readBack(t *testing.T, c *client.Client, want map[string]string) (missing, wrong int, examples []string) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	var readErr error
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(keys)) {
					return
				}
				k := keys[i]
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				v, found, err := c.Get(ctx, []byte(k))
				cancel()
				mu.Lock()
				switch {
				case err != nil:
					if readErr == nil {
						readErr = fmt.Errorf("get %q: %w", k, err)
					}
				case !found:
					missing++
					if len(examples) < 5 {
						examples = append(examples, fmt.Sprintf("%q absent", k))
					}
				case string(v) != want[k]:
					wrong++
					if len(examples) < 5 {
						examples = append(examples, fmt.Sprintf("%q = %q, want %q", k, v, want[k]))
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if readErr != nil {
		t.Fatalf("reading keys back: %v", readErr)
	}
	return missing, wrong, examples
}
