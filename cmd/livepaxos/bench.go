package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/livepaxos/livepaxos/client"
)

// benchOptions follow the load contract of ../shared/peerbench: a closed
// loop of Clients workers, each with one request outstanding, spread over
// Conns client connections, keys uniform over Keys, an unmeasured warm-up,
// and only requests completing inside the window counted.
type benchOptions struct {
	op        string
	clients   int
	conns     int
	valueSize int
	keys      int
	seconds   float64
	warmup    float64
	timeout   time.Duration
	prefill   bool
	// consistency of --op get: lease (default), quorum or stale.
	consistency string
	cons        client.Consistency
	cpuProfile  string
	// total, when positive, ends the run once that many requests were
	// issued (the measured window still ends after seconds at the latest).
	total int64
	// sequential: keys in order (each written once per pass) instead of
	// uniformly at random, to build a database of a known size.
	sequential bool
	// timeline, when set, is a CSV file of completed requests and the
	// slowest one per 100 ms, to see throughput change over a run.
	timeline string
}

// benchResult is the one JSON line bench prints.
type benchResult struct {
	System    string  `json:"system"`
	Op        string  `json:"op"`
	Clients   int     `json:"clients"`
	Conns     int     `json:"conns"`
	ValueSize int     `json:"value_size"`
	OpsPerS   float64 `json:"ops_per_s"`
	P50       float64 `json:"p50_ms"`
	P99       float64 `json:"p99_ms"`
	P999      float64 `json:"p999_ms"`
	Mean      float64 `json:"mean_ms"`
	Max       float64 `json:"max_ms"`
	// MaxGap is the longest time in the window between two requests
	// completing successfully, one after the other: how long the cluster
	// stalled (a restart, a fail-over, a handover).
	MaxGap     float64 `json:"max_gap_ms"`
	Errors     int64   `json:"errors"`
	Ops        int64   `json:"ops"`
	Seconds    float64 `json:"seconds"`
	Keys       int     `json:"keys"`
	Read       string  `json:"read,omitempty"`
	FirstError string  `json:"first_error,omitempty"`
	Time       string  `json:"time"`
	Host       string  `json:"host"`
}

func newBenchCmd() *cobra.Command {
	var f clientFlags
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Closed-loop load against a cluster; prints one JSON line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			c, err := f.dial(o.conns)
			if err != nil {
				return err
			}
			defer c.Close()
			if o.cpuProfile != "" {
				pf, err := os.Create(o.cpuProfile)
				if err != nil {
					return err
				}
				defer pf.Close()
				if err := pprof.StartCPUProfile(pf); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			res, err := runBench(c, o)
			if err != nil {
				return err
			}
			b, err := json.Marshal(res)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.op, "op", "put", "put or get")
	fl.IntVar(&o.clients, "clients", 1, "closed-loop clients, one request outstanding each")
	fl.IntVar(&o.conns, "conns", 1, "client connections (client i uses connection i%conns)")
	fl.IntVar(&o.valueSize, "value-size", 128, "value size in bytes")
	fl.IntVar(&o.keys, "keys", 10000, "keys, drawn uniformly")
	fl.Float64Var(&o.seconds, "seconds", 10, "measured seconds")
	fl.Float64Var(&o.warmup, "warmup", 1, "unmeasured warm-up seconds")
	fl.DurationVar(&o.timeout, "request-timeout", 10*time.Second, "per-request timeout")
	fl.BoolVar(&o.prefill, "prefill", true, "for --op get: write every key once first (unmeasured)")
	fl.StringVar(&o.consistency, "consistency", "lease", "for --op get: lease, quorum or stale")
	fl.StringVar(&o.cpuProfile, "cpuprofile", "", "write the load generator's CPU profile to this file")
	fl.Int64Var(&o.total, "total", 0, "stop after this many requests (0: run for --seconds)")
	fl.BoolVar(&o.sequential, "sequential", false, "take keys in order instead of at random")
	fl.StringVar(&o.timeline, "timeline", "", "write requests completed and the slowest latency per 100ms to this CSV file")
	f.add(cmd)
	return cmd
}

func (o *benchOptions) validate() error {
	if o.op != "put" && o.op != "get" {
		return fmt.Errorf("%w: --op must be put or get, got %q", errUsage, o.op)
	}
	if o.clients < 1 || o.conns < 1 || o.keys < 1 || o.valueSize < 0 || o.seconds <= 0 || o.warmup < 0 || o.timeout <= 0 || o.total < 0 {
		return fmt.Errorf("%w: --clients, --conns, --keys and --seconds must be positive; --value-size and --warmup not negative", errUsage)
	}
	o.conns = min(o.conns, o.clients)
	cons, err := client.ParseConsistency(o.consistency)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	o.cons = cons
	return nil
}

func benchKey(i int) []byte { return []byte(fmt.Sprintf("pb/%08d", i)) }

func benchValue(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[rng.IntN(len(letters))]
	}
	return b
}

func runBench(c *client.Client, o benchOptions) (*benchResult, error) {
	keys := make([][]byte, o.keys)
	for i := range keys {
		keys[i] = benchKey(i)
	}
	if o.op == "get" && o.prefill {
		if err := prefill(c, o, keys); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	mStart := start.Add(time.Duration(o.warmup * float64(time.Second)))
	mEnd := mStart.Add(time.Duration(o.seconds * float64(time.Second)))
	type workerOut struct {
		lat      []time.Duration
		errs     int64
		firstErr string
	}
	outs := make([]workerOut, o.clients)
	var issued atomic.Int64
	tl := newTimeline(start)
	var wg sync.WaitGroup
	for w := range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w)+1, uint64(start.UnixNano())))
			val := benchValue(o.valueSize, uint64(w)+7)
			out := &outs[w]
			out.lat = make([]time.Duration, 0, 4096)
			for {
				t0 := time.Now()
				if !t0.Before(mEnd) {
					return
				}
				n := issued.Add(1)
				if o.total > 0 && n > o.total {
					return
				}
				key := keys[rng.IntN(len(keys))]
				if o.sequential {
					key = keys[(n-1)%int64(len(keys))]
				}
				ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
				var err error
				if o.op == "put" {
					err = c.Put(ctx, key, val)
				} else {
					_, _, err = c.GetWith(ctx, key, o.cons)
				}
				cancel()
				t1 := time.Now()
				in := !t1.Before(mStart) && t1.Before(mEnd)
				if err == nil {
					tl.record(t1, t1.Sub(t0), in)
				}
				if err != nil {
					if in {
						out.errs++
						if out.firstErr == "" {
							out.firstErr = err.Error()
						}
					}
					time.Sleep(10 * time.Millisecond) // do not spin on a dead endpoint
					continue
				}
				if in {
					out.lat = append(out.lat, t1.Sub(t0))
				}
			}
		}()
	}
	wg.Wait()
	measured := o.seconds
	if o.total > 0 {
		// The run may have ended before the window did.
		measured = min(o.seconds, max(time.Since(mStart).Seconds(), 1e-3))
	}
	if o.timeline != "" {
		if err := tl.write(o.timeline); err != nil {
			return nil, err
		}
	}
	host, _ := os.Hostname()
	res := &benchResult{System: "livepaxos", Op: o.op, Clients: o.clients, Conns: o.conns,
		ValueSize: o.valueSize, Seconds: o.seconds, Keys: o.keys, Read: readMode(o),
		Time: time.Now().UTC().Format(time.RFC3339), Host: fmt.Sprintf("%s/%dcpu", host, runtime.NumCPU())}
	var all []time.Duration
	for _, out := range outs {
		all = append(all, out.lat...)
		res.Errors += out.errs
		if res.FirstError == "" {
			res.FirstError = out.firstErr
		}
	}
	slices.Sort(all)
	res.MaxGap = round3(float64(tl.maxGap) / 1e6)
	res.Ops = int64(len(all))
	res.Seconds = round3(measured)
	res.OpsPerS = round3(float64(len(all)) / measured)
	if n := len(all); n > 0 {
		var sum time.Duration
		for _, d := range all {
			sum += d
		}
		ms := func(d time.Duration) float64 { return round3(float64(d) / 1e6) }
		res.P50, res.P99, res.P999 = ms(percentile(all, 0.50)), ms(percentile(all, 0.99)), ms(percentile(all, 0.999))
		res.Mean, res.Max = ms(sum/time.Duration(n)), ms(all[n-1])
	}
	return res, nil
}

// readMode names how gets were served: lease, quorum or stale.
func readMode(o benchOptions) string {
	if o.op == "get" {
		return o.consistency
	}
	return ""
}

// prefill writes every key once, unmeasured, so gets find them.
func prefill(c *client.Client, o benchOptions, keys [][]byte) error {
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			val := benchValue(o.valueSize, uint64(w))
			for {
				i := int(next.Add(1) - 1)
				if i >= len(keys) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
				if err := c.Put(ctx, keys[i], val); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("prefill: %d errors, first: %v", n, firstErr.Load())
	}
	return nil
}

// percentile is the exact nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	idx := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(idx, len(sorted)-1))]
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// timeline counts completed requests and the slowest one per 100 ms.
type timeline struct {
	start time.Time
	mu    sync.Mutex
	ops   []int64
	worst []time.Duration
	// last is when the latest request in the window completed, and maxGap
	// the longest time between two such completions.
	last   time.Time
	maxGap time.Duration
}

const timelineBin = 100 * time.Millisecond

func newTimeline(start time.Time) *timeline { return &timeline{start: start} }

func (t *timeline) record(at time.Time, lat time.Duration, inWindow bool) {
	i := int(at.Sub(t.start) / timelineBin)
	t.mu.Lock()
	if inWindow && at.After(t.last) {
		if !t.last.IsZero() {
			t.maxGap = max(t.maxGap, at.Sub(t.last))
		}
		t.last = at
	}
	for len(t.ops) <= i {
		t.ops = append(t.ops, 0)
		t.worst = append(t.worst, 0)
	}
	t.ops[i]++
	t.worst[i] = max(t.worst[i], lat)
	t.mu.Unlock()
}

// write saves the timeline as CSV: the bin's start (Unix ms), requests
// completed in it, and the slowest of them (ms).
func (t *timeline) write(path string) error {
	var b strings.Builder
	b.WriteString("unix_ms,ops,max_ms\n")
	for i := range t.ops {
		fmt.Fprintf(&b, "%d,%d,%.3f\n", t.start.Add(time.Duration(i)*timelineBin).UnixMilli(), t.ops[i],
			float64(t.worst[i])/1e6)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
