package actors

import "time"

// Metrics hears how long a replica's work took, for histograms
// (Config.Metrics). Nothing decides on it.
type Metrics interface {
	// Synced: the log made a group commit of records (bytes framed)
	// durable in d: its write and fsync.
	Synced(d time.Duration, records, bytes int)
	// Committed: an instance this replica proposed as master was chosen d
	// after its first Accept left.
	Committed(d time.Duration)
	// AppliedBatch: commands chosen together took d to apply.
	AppliedBatch(d time.Duration, commands int)
	// Snapshotted: a snapshot of bytes was written and synced in d.
	Snapshotted(d time.Duration, bytes int64)
}

// Committed and AppliedBatch make the shell a core.Timings.
func (sh *shell) Committed(d time.Duration) {
	if m := sh.r.cfg.Metrics; m != nil {
		m.Committed(d)
	}
}

func (sh *shell) AppliedBatch(d time.Duration, commands int) {
	if m := sh.r.cfg.Metrics; m != nil {
		m.AppliedBatch(d, commands)
	}
}
