// Package testwait is test support: tests wait on conditions, never on
// fixed sleeps, so that a slow machine costs time rather than a false
// failure. It is shared by the tests of several packages; production code
// does not import it.
package testwait

import (
	"testing"
	"time"
)

// For polls cond every interval until it returns nil. Once within has
// passed it fails t, naming what it waited for and cond's last error.
func For(t testing.TB, within, every time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", within, what, err)
		}
		time.Sleep(every)
	}
}
