package session

import (
	"errors"
	"slices"
	"testing"
	"time"
)

var t0 = time.Unix(1_000_000, 0)

// Issue 16, item 1: KeepAlives at the master extend a session by one TTL
// from each; a session whose KeepAlives stop is due for expiry one TTL
// after the last; only the master keeps deadlines.
func TestKeepAliveExtendsAndDueExpires(t *testing.T) {
	k := NewKeeper(PlantedNone)
	if _, _, err := k.KeepAlive(1, t0); !errors.Is(err, ErrNotMaster) {
		t.Fatalf("a follower's KeepAlive: %v", err)
	}
	k.TakeOver(t0, nil)
	k.Opened(1, time.Second, t0)
	k.Opened(2, time.Second, t0)
	for i := 1; i <= 5; i++ {
		now := t0.Add(time.Duration(i) * 500 * time.Millisecond)
		d, ttl, err := k.KeepAlive(1, now)
		if err != nil || !d.Equal(now.Add(time.Second)) || ttl != time.Second {
			t.Fatalf("KeepAlive at %v: %v %v %v", now, d, ttl, err)
		}
	}
	if due := k.Due(t0.Add(time.Second)); !slices.Equal(due, []uint64{2}) {
		t.Fatalf("due one TTL after opening with no KeepAlive: %v", due)
	}
	k.Observe([]Event{{ID: 2, Ended: true, Expired: true}}, t0)
	if due := k.Due(t0.Add(3500 * time.Millisecond)); !slices.Equal(due, []uint64{1}) {
		t.Fatalf("due once its KeepAlives stopped: %v", due)
	}
	if _, _, err := k.KeepAlive(1, t0.Add(3600*time.Millisecond)); !errors.Is(err, ErrExpiring) {
		t.Fatalf("KeepAlive of an expiring session: %v", err)
	}
	if due := k.Due(t0.Add(3600 * time.Millisecond)); len(due) != 0 {
		t.Fatalf("handed out again at once: %v", due)
	}
	if due := k.Due(t0.Add(3500*time.Millisecond + ExpiryRetry)); !slices.Equal(due, []uint64{1}) {
		t.Fatalf("an expiry not applied is not handed out again: %v", due)
	}
	k.Observe([]Event{{ID: 1, Ended: true, Expired: true}}, t0)
	if k.Len() != 0 {
		t.Fatalf("%d sessions left", k.Len())
	}
	if _, _, err := k.KeepAlive(1, t0); !errors.Is(err, ErrNoSession) {
		t.Fatalf("KeepAlive of an ended session: %v", err)
	}
}

// A new master gives every inherited session a full TTL from its
// takeover, which honours whatever the old master promised; the planted
// bug gives none.
func TestTakeOverHonoursTheOldMastersPromises(t *testing.T) {
	live := []Info{{ID: 7, TTL: 2 * time.Second}}
	k := NewKeeper(PlantedNone)
	k.TakeOver(t0, live)
	if d, ok := k.Deadline(7); !ok || !d.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("deadline after takeover %v %v", d, ok)
	}
	if due := k.Due(t0.Add(2*time.Second - time.Millisecond)); len(due) != 0 {
		t.Fatalf("expired before a TTL after the takeover: %v", due)
	}
	k.StepDown()
	if k.Master() || k.Len() != 0 || k.Due(t0.Add(time.Hour)) != nil {
		t.Fatal("a deposed keeper still keeps deadlines")
	}
	bad := NewKeeper(PlantedNoExtensionAtTakeover)
	bad.TakeOver(t0, live)
	if due := bad.Due(t0); !slices.Equal(due, []uint64{7}) {
		t.Fatalf("the planted bug expired %v at once, want [7]", due)
	}
}
