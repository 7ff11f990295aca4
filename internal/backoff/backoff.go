// Package backoff paces retries: the client's calls and a node's
// forwarded requests wait between attempts by the same rule, each wait
// twice the last, from a first wait up to a cap.
package backoff

import "time"

// Next is the wait to use after a wait of last: twice last, at least first
// (so a zero wait, where nothing was waited yet, is followed by first) and
// at most limit.
func Next(last, first, limit time.Duration) time.Duration {
	return min(max(2*last, first), limit)
}
