package sim

import "time"

// epoch is where simulated time starts. Any fixed instant would do; a
// realistic one keeps traces readable.
var epoch = time.Unix(1_700_000_000, 0).UTC()

// driftClock is one node's view of time. Its rate differs from true
// simulated time by driftPPM parts per million (bounded by
// Config.MaxDriftPPM), and it starts at its own offset: the roles only
// compare times of one node with each other, but a lease (a later issue)
// compares durations across nodes, which is what drift breaks.
type driftClock struct {
	offset   time.Duration
	driftPPM int64
}

// local returns the node's clock reading at true simulated time t.
func (c driftClock) local(t int64) time.Time {
	return epoch.Add(c.offset + time.Duration(t+t*c.driftPPM/1_000_000))
}

// trueTime returns the true simulated time at which the node's clock
// reads local.
func (c driftClock) trueTime(local time.Time) int64 {
	d := local.Sub(epoch) - c.offset
	return int64(d) * 1_000_000 / (1_000_000 + c.driftPPM)
}

// trueDuration converts a duration measured on the node's clock to true
// simulated time: a fast clock fires its timers early.
func (c driftClock) trueDuration(d time.Duration) int64 {
	return int64(d) * 1_000_000 / (1_000_000 + c.driftPPM)
}
