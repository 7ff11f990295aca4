package tests

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/db"
)

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
