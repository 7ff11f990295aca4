package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// What a client coordinates with, on real processes: locks fenced by
// sequencers, watches of a prefix, ordered range reads with compare-and-swap
// on a key's last change (issue 16's lock service), and writes guarded by
// the epoch (§5.3).

// Issue 16's bar, with real processes: a lock holder (livepaxos lock ...
// -- CMD) is paused with SIGSTOP past its session's TTL; another client
// takes the lock only after the session expired and the lock-delay ran
// out; the paused holder's write guarded by its old sequencer is refused;
// resumed, the holder learns it lost the lock, kills CMD and exits 1.
func TestLockPausedHolderIsFencedBySequencer(t *testing.T) {
	t.Parallel()
	c, _ := newWritableCluster(t, 3)
	ctx := testContext(t, 60*time.Second)
	eps := strings.Join(c.endpoints(), ",")
	seqFile := filepath.Join(t.TempDir(), "lpk-seq")
	const ttl, lockDelay = time.Second, 2 * time.Second
	holder := exec.Command(c.bin, "lock", "--endpoints", eps, "--ttl", ttl.String(), "--lock-delay", lockDelay.String(),
		"lpk-lock", "--", "sh", "-c", `echo "$LIVEPAXOS_SEQUENCER" > `+seqFile+`; exec sleep 60`)
	var stderr bytes.Buffer
	holder.Stderr = &stderr
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- holder.Wait() }()
	defer func() {
		holder.Process.Signal(syscall.SIGCONT)
		holder.Process.Kill()
	}()
	var seq string
	waitFor(t, 15*time.Second, "the holder's sequencer", func() error {
		b, err := os.ReadFile(seqFile)
		if seq = strings.TrimSpace(string(b)); err != nil || seq == "" {
			return fmt.Errorf("none yet (%v): %s", err, stderr.String())
		}
		return nil
	})
	if r := runCLI(t, c.bin, nil, "put", "--endpoints", eps, "--sequencer", seq, "lpk-guarded", "by-holder"); r.code != 0 {
		t.Fatalf("the holder's guarded put: %d %s", r.code, r.stderr)
	}

	// The holder stops; its KeepAlives stop with it.
	if err := holder.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	s, err := c.cl.NewSession(ctx, client.SessionOptions{TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Lock(ctx, "lpk-lock", client.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(paused)
	if took < ttl+lockDelay-200*time.Millisecond {
		t.Fatalf("the lock changed hands %v after the holder paused: before its TTL %v and lock-delay %v", took, ttl, lockDelay)
	}
	old, err := db.ParseSequencer(seq)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.cl.CheckSequencer(ctx, old); err != nil || ok {
		t.Fatalf("the paused holder's sequencer checks %v (%v)", ok, err)
	}
	if ok, err := c.cl.CheckSequencer(ctx, l.Sequencer()); err != nil || !ok {
		t.Fatalf("the new holder's sequencer checks %v (%v)", ok, err)
	}
	r := runCLI(t, c.bin, nil, "put", "--endpoints", eps, "--sequencer", seq, "lpk-guarded", "by-paused-holder")
	if r.code != 1 || !strings.Contains(r.stderr, "no longer holds") {
		t.Fatalf("the paused holder's guarded put: %d %q", r.code, r.stderr)
	}
	if v, _, err := c.cl.Get(ctx, []byte("lpk-guarded")); err != nil || string(v) != "by-holder" {
		t.Fatalf("lpk-guarded = %q (%v)", v, err)
	}

	// Resumed, the holder finds its session over: CMD killed, exit 1.
	holder.Process.Signal(syscall.SIGCONT)
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "lost") {
			t.Fatalf("the resumed holder ended with %v: %s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the resumed holder did not notice it lost the lock: %s", stderr.String())
	}
	t.Logf("lock taken over %v after the holder paused (TTL %v, lock-delay %v)", took.Round(time.Millisecond), ttl, lockDelay)

	// KeepAlives keep a session past its TTL; the lock stays held.
	select {
	case <-s.Done():
		t.Fatalf("a kept-alive session ended: %v", s.Err())
	case <-time.After(3 * time.Second):
	}
	if ok, err := c.cl.CheckSequencer(ctx, l.Sequencer()); err != nil || !ok {
		t.Fatalf("after 1.5 TTLs the lock checks %v (%v)", ok, err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	<-l.Lost()

	// Leader election on the lock: the leader's value is published while
	// it leads; a resignation elects the next in line; a leader's session
	// ending takes its value away.
	lead, err := s.Campaign(ctx, "lpk-elect", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	leaderIs := func(want string) error {
		v, found, err := c.cl.Leader(ctx, "lpk-elect")
		if err != nil || string(v) != want || found != (want != "") {
			return fmt.Errorf("leader %q (%v, %v), want %q", v, found, err, want)
		}
		return nil
	}
	waitFor(t, 5*time.Second, "a leads", func() error { return leaderIs("a") })
	s2, err := c.cl.NewSession(ctx, client.SessionOptions{TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() {
		_, err := s2.Campaign(ctx, "lpk-elect", []byte("b"))
		second <- err
	}()
	if err := lead.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b leads", func() error { return leaderIs("b") })
	if err := s2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "no leader", func() error { return leaderIs("") })
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

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

// Issue 16, item 5, with real processes: a prefix read in order under each
// read consistency, paged by the CLI's get --prefix (--limit), and a
// compare-and-swap on a key's last-change instance refused once the key
// changed, even back to the same value (no ABA).
func TestRangeAndPrefixReads(t *testing.T) {
	t.Parallel()
	c, _ := newWritableCluster(t, 3)
	ctx := testContext(t, 30*time.Second)
	for i := 9; i >= 0; i-- {
		if err := c.cl.Put(ctx, []byte(fmt.Sprintf("lpk/%d", i)), []byte(fmt.Sprint(i*i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.cl.Put(ctx, []byte("lpl"), []byte("outside")); err != nil {
		t.Fatal(err)
	}
	c.waitConverged(10 * time.Second)
	for _, cons := range []client.Consistency{client.Lease, client.Quorum, client.Stale} {
		page, err := c.cl.Range(ctx, []byte("lpk/"), client.RangeOptions{Prefix: true, Consistency: cons})
		if err != nil {
			t.Fatalf("%v: %v", cons, err)
		}
		if len(page.KVs) != 10 || page.More || page.Applied == 0 {
			t.Fatalf("%v: %d keys, more %v, applied %d", cons, len(page.KVs), page.More, page.Applied)
		}
		for i, kv := range page.KVs {
			if string(kv.Key) != fmt.Sprintf("lpk/%d", i) || kv.Version != 1 || kv.CreateInstance != kv.ModInstance || kv.ModInstance > page.Applied {
				t.Fatalf("%v: key %d = %v", cons, i, kv)
			}
		}
	}
	eps := strings.Join(c.endpoints(), ",")
	r := runCLI(t, c.bin, nil, "get", "--endpoints", eps, "--prefix", "lpk/", "--limit", "3")
	if r.code != 0 || r.stdout != "lpk/0\t0\nlpk/1\t1\nlpk/2\t4\n" {
		t.Fatalf("get --prefix --limit 3: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, c.bin, nil, "get", "--endpoints", eps, "--prefix", "lp"); r.code != 0 || strings.Count(r.stdout, "\n") != 11 {
		t.Fatalf("get --prefix lp: %d %q %q", r.code, r.stdout, r.stderr)
	}

	// No ABA: the key is changed and changed back; a swap guarded by the
	// instance read before is refused, one guarded by the new one applies.
	key := []byte("lpk/3")
	page, err := c.cl.Range(ctx, key, client.RangeOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	seen := page.KVs[0].ModInstance
	for _, v := range []string{"x", "9"} {
		if err := c.cl.Put(ctx, key, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	swap := func(mod uint64) bool {
		res, err := c.cl.Txn(ctx, &messages.MultiOp{Guard: []*messages.Test{db.ModInstanceIs(key, mod)},
			TOp: []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: key, Value: []byte("swapped")}},
			FOp: []*messages.Op{{Kind: messages.Op_KIND_GET, Key: key}}})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Succeeded {
			if g := res.Results[0]; g.Version != 3 || string(g.Value) != "9" {
				t.Fatalf("the failed swap read %v", g)
			}
		}
		return res.Succeeded
	}
	if swap(seen) {
		t.Fatal("a swap guarded by a stale mod instance applied (ABA)")
	}
	_, found, err := c.cl.Get(ctx, key)
	if err != nil || !found {
		t.Fatal(err)
	}
	page, err = c.cl.Range(ctx, key, client.RangeOptions{Limit: 1})
	if err != nil || !swap(page.KVs[0].ModInstance) {
		t.Fatalf("a swap guarded by the current mod instance did not apply (%v)", err)
	}
}

// TestPaper5_3_EpochGuardAcrossFailover: with real processes, the epoch a
// client reads stays the same while the master does, a MultiOp guarded by
// it applies; once the master is killed and another elected, the epoch is
// new and the old guard fails (the MultiOp's else branch runs), so a
// client acting "only if nothing changed" does not act.
func TestPaper5_3_EpochGuardAcrossFailover(t *testing.T) {
	t.Parallel()
	c, _ := newWritableCluster(t, 3)
	ctx := testContext(t, 30*time.Second)
	e1, err := c.cl.Epoch(ctx)
	if err != nil || e1 == 0 {
		t.Fatalf("epoch: %d %v", e1, err)
	}
	guarded := func(epoch uint64, value string) bool {
		t.Helper()
		res, err := c.cl.Txn(ctx, &messages.MultiOp{Guard: []*messages.Test{db.EpochIs(epoch)},
			TOp: []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: []byte("lock-holder"), Value: []byte(value)}}})
		if err != nil {
			t.Fatalf("guarded put: %v", err)
		}
		return res.Succeeded
	}
	if !guarded(e1, "a") {
		t.Fatalf("a put guarded by the current epoch %d did not apply", e1)
	}
	if again, err := c.cl.Epoch(ctx); err != nil || again != e1 {
		t.Fatalf("epoch moved from %d to %d (%v) with the same master", e1, again, err)
	}
	c.kill(c.waitMaster(5 * time.Second))
	c.waitWritable(20 * time.Second)
	e2, err := c.cl.Epoch(ctx)
	if err != nil || e2 == e1 {
		t.Fatalf("epoch after fail-over: %d (before %d) %v", e2, e1, err)
	}
	if guarded(e1, "b") {
		t.Fatalf("a put guarded by the old epoch %d applied in epoch %d", e1, e2)
	}
	if !guarded(e2, "c") {
		t.Fatalf("a put guarded by the new epoch %d did not apply", e2)
	}
	v, _, err := c.cl.Get(ctx, []byte("lock-holder"))
	if err != nil || string(v) != "c" {
		t.Fatalf("lock-holder = %q, %v; want c", v, err)
	}
	t.Logf("epoch %d, then %d after the master was killed", e1, e2)
}
