package backoff

import (
	"testing"
	"time"
)

func TestNextDoublesFromFirstUpToLimit(t *testing.T) {
	const first, limit = 10 * time.Millisecond, 200 * time.Millisecond
	var got []time.Duration
	for d := time.Duration(0); len(got) < 7; {
		d = Next(d, first, limit)
		got = append(got, d)
	}
	want := []time.Duration{10, 20, 40, 80, 160, 200, 200}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits %v, want %v ms", got, want)
		}
	}
}
