package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/messages"
)

// Issue 16, item 1: a client that cannot reach any master learns its
// session's end for sure, once the TTL from its last promise has passed
// (never before), even with no answer at all.
func TestSessionEndsWhenNoKeepAliveGetsThrough(t *testing.T) {
	f := startFake(t, func(n int64, call *messages.StreamCall) *messages.StreamResult {
		return ok(&messages.MultiOpResult{Succeeded: true, Results: []*messages.OpResult{{Found: true, Session: 7}}}, nil)
	})
	c := newClient(t, f.addr)
	const ttl = 300 * time.Millisecond
	opened := time.Now()
	s, err := c.NewSession(testCtx(t, 5*time.Second), client.SessionOptions{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID() != 7 {
		t.Fatalf("session %d", s.ID())
	}
	select {
	case <-s.Done():
		if took := time.Since(opened); took < ttl {
			t.Fatalf("ended after %v, before its TTL %v", took, ttl)
		}
		if !errors.Is(s.Err(), client.ErrSessionExpired) {
			t.Fatalf("ended with %v", s.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a session whose KeepAlives never got through did not end")
	}
}
