package tests

import (
	"context"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/client"
)

// TestPaper5_2_FailoverTime measures, over LIVEPAXOS_FAILOVER_RUNS runs
// (skipped when unset; `make failover` sets 10), the time from kill -9 of
// the master to the first write and the first lease read that a new
// master answers, with default settings: the old lease (800 ms) must run out
// at the acceptors before anyone else can be elected. Each run is a fresh
// 3-node cluster. It reports the medians; the bound it checks is the 3 s
// fail-over of the foundation issue.
func TestPaper5_2_FailoverTime(t *testing.T) {
	t.Parallel()
	runs, _ := strconv.Atoi(os.Getenv("LIVEPAXOS_FAILOVER_RUNS"))
	if runs <= 0 {
		t.Skip("set LIVEPAXOS_FAILOVER_RUNS (make failover) to measure fail-over times")
	}
	var writes, reads []time.Duration
	for run := range runs {
		w, r := failoverOnce(t)
		t.Logf("run %d: first write after %v, first lease read after %v", run+1, w.Round(time.Millisecond), r.Round(time.Millisecond))
		writes, reads = append(writes, w), append(reads, r)
	}
	slices.Sort(writes)
	slices.Sort(reads)
	mw, mr := writes[len(writes)/2], reads[len(reads)/2]
	t.Logf("median of %d: kill -9 to first write %v (min %v, max %v); to first lease read %v (min %v, max %v)", runs,
		mw.Round(time.Millisecond), writes[0].Round(time.Millisecond), writes[len(writes)-1].Round(time.Millisecond),
		mr.Round(time.Millisecond), reads[0].Round(time.Millisecond), reads[len(reads)-1].Round(time.Millisecond))
	if mw > maxFailover || mr > maxFailover {
		t.Errorf("median fail-over %v (write) / %v (read), want < %v", mw, mr, maxFailover)
	}
}

// failoverOnce kills the master of a fresh cluster under a light load of
// writes and lease reads, and returns how long until each kind first
// succeeded again (counting only operations started after the kill).
func failoverOnce(t *testing.T) (write, read time.Duration) {
	c := newCluster(t, 3)
	defer c.stopAll()
	c.waitWritable(20 * time.Second)
	old := c.waitMaster(5 * time.Second)
	probe, err := client.New(client.Config{Endpoints: c.endpoints(), AttemptTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	var mu sync.Mutex
	var firstWrite, firstRead time.Time
	reached := 0                        // operations answered before the kill
	killed := time.Now().Add(time.Hour) // set below
	stop := make(chan struct{})
	var wg sync.WaitGroup
	loop := func(op func(ctx context.Context) error, first *time.Time) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			err := op(ctx)
			cancel()
			mu.Lock()
			if err == nil && !start.Before(killed) && first.IsZero() {
				*first = time.Now()
			}
			if err == nil && start.Before(killed) {
				reached++
			}
			mu.Unlock()
			if err != nil {
				time.Sleep(5 * time.Millisecond) // back off a little between failed attempts
			}
		}
	}
	for i := range 2 {
		wg.Add(2)
		key := []byte("failover-" + strconv.Itoa(i))
		go loop(func(ctx context.Context) error { return probe.Put(ctx, key, []byte("v")) }, &firstWrite)
		go loop(func(ctx context.Context) error { _, _, err := probe.Get(ctx, key); return err }, &firstRead)
	}
	waitFor(t, 10*time.Second, "the load to reach the old master", func() error {
		mu.Lock()
		defer mu.Unlock()
		if reached < 4 { // a few operations answered by the old master
			return errNotYet
		}
		return nil
	})
	mu.Lock()
	killed = time.Now()
	mu.Unlock()
	c.kill(old)
	waitFor(t, 15*time.Second, "a write and a lease read after the kill", func() error {
		mu.Lock()
		defer mu.Unlock()
		if firstWrite.IsZero() || firstRead.IsZero() {
			return errNotYet
		}
		return nil
	})
	close(stop)
	wg.Wait()
	return firstWrite.Sub(killed), firstRead.Sub(killed)
}
