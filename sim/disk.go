package sim

import (
	"github.com/livepaxos/livepaxos/core"
	"github.com/livepaxos/livepaxos/messages"
)

// disk is one node's write-ahead log with group commit, as storage.WAL
// does it: records are appended in order; a sync append starts an fsync
// if none is running; lazy appends ride on the next fsync. An fsync makes
// durable everything appended before it started; what was appended
// meanwhile waits for the next one.
type disk struct {
	log    []*messages.Record
	synced int // log[:synced] is durable
	// syncing is the log length the running fsync will make durable, or -1.
	syncing int
	// syncMark is the log length after the last sync append: an fsync
	// must run while synced is below it.
	syncMark int
	// waiters are called, in order, once the log is durable up to their
	// target: the replica's durability reports.
	waiters []waiter
	// deleted counts the records checkpoints removed from the front, so
	// that positions taken before a cut can be mapped after it.
	deleted int
	// mark is the position (counted like deleted + an index) of the last
	// WriteMark, which the next checkpoint keeps records from, or -1. It
	// lives as long as this disk object: a restart forgets it, as closing
	// a storage.WAL does.
	mark int
}

// waiter is work released once the log is durable up to target, in order.
type waiter struct {
	target int
	fn     func()
}

func newDisk(records []*messages.Record) *disk {
	return &disk{log: records, synced: len(records), syncing: -1, syncMark: len(records), mark: -1}
}

// unsynced returns the records a crash may lose.
func (d *disk) unsynced() []*messages.Record { return d.log[d.synced:] }

// cut deletes the first k records, as a storage checkpoint deletes the
// segments before it once it is durable.
func (d *disk) cut(k int) {
	if k <= 0 {
		return
	}
	d.deleted += k
	d.log = d.log[k:]
	d.synced -= k
	d.syncMark = max(0, d.syncMark-k)
	if d.syncing >= 0 {
		d.syncing -= k
	}
	for i := range d.waiters {
		d.waiters[i].target -= k
	}
}

// Append is the node's log store: records are appended; a sync or
// checkpoint write is reported durable once an fsync covered it; a
// checkpoint then deletes the records before it, or before the last mark
// (storage.WAL.Checkpoint and Mark).
func (n *node) Append(recs []*messages.Record, mode core.WriteMode, durable func()) {
	d := n.disk
	start := d.deleted + len(d.log) // as a position that survives earlier cuts
	if mode == core.WriteMark {
		d.mark = start
		return
	}
	d.log = append(d.log, recs...)
	if mode == core.WriteLazy {
		return
	}
	d.syncMark = len(d.log)
	for _, rec := range recs {
		n.watch.syncBallot = max(n.watch.syncBallot, recordBallot(rec))
	}
	fn := durable
	if mode == core.WriteCheckpoint {
		if d.mark >= 0 {
			start, d.mark = d.mark, -1
		}
		fn = func() {
			k := start - d.deleted
			n.s.truncations++
			d.cut(k)
			if n.s.trace != nil {
				n.s.tracef("%s checkpoint durable: %d older records deleted", n.name(), k)
			}
			durable()
		}
	}
	d.waiters = append(d.waiters, waiter{target: len(d.log), fn: fn})
	n.startSync()
}

// startSync begins a group-commit fsync of everything appended so far,
// unless one is running (its completion starts the next).
func (n *node) startSync() {
	d := n.disk
	if d.syncing >= 0 || (d.synced >= d.syncMark && len(d.waiters) == 0) {
		return
	}
	d.syncing = len(d.log)
	delay := int64(n.s.cfg.FsyncMin) + n.s.rng.Int64N(int64(n.s.cfg.FsyncMax-n.s.cfg.FsyncMin)+1)
	n.s.sched.after(delay, n.guard(n.syncDone))
}

// syncDone makes the log durable up to what the fsync covered (syncing,
// which a checkpoint's cut moves with the records) and reports, in order,
// the writes that waited for it.
func (n *node) syncDone() {
	d := n.disk
	target := d.syncing
	d.syncing = -1
	if n.s.trace != nil {
		n.s.tracef("%s fsync: %d records durable", n.name(), target)
	}
	old := d.synced
	d.synced = target
	n.fold(old, target)
	for len(d.waiters) > 0 && d.waiters[0].target <= d.synced && n.s.err == nil && n.up {
		w := d.waiters[0]
		d.waiters = d.waiters[1:]
		w.fn()
	}
	if n.s.err == nil && n.up && n.disk == d {
		n.startSync()
	}
}

// recordBallot is the ballot a promise or accept record carries (0 for
// others).
func recordBallot(rec *messages.Record) uint64 {
	switch k := rec.Kind.(type) {
	case *messages.Record_Promise:
		return k.Promise.Ballot
	case *messages.Record_Accept:
		return k.Accept.Ballot
	}
	return 0
}

// fold adds newly durable records to the durable view and tells the
// checker which acceptances are now durable.
func (n *node) fold(from, to int) {
	for _, rec := range n.disk.log[from:to] {
		switch k := rec.Kind.(type) {
		case *messages.Record_Promise:
			n.durablePromised = max(n.durablePromised, k.Promise.Ballot)
		case *messages.Record_Accept:
			e := k.Accept
			n.durablePromised = max(n.durablePromised, e.Ballot)
			n.durableAccepted[e.Instance] = max(n.durableAccepted[e.Instance], e.Ballot)
			if n.keptAccepted == nil {
				n.keptAccepted = make(map[uint64]uint64)
			}
			n.keptAccepted[e.Instance] = max(n.keptAccepted[e.Instance], e.Ballot)
			n.s.check.durablyAccepted(n, e)
		}
	}
}

// checkNothingAcceptedLost checks, after a restart, that the replica's
// acceptor holds every acceptance its disk ever made durable, at the same
// ballot or a later one, except those a checkpoint let go of (at or below
// the truncation point the log restored): neither a crash nor a
// checkpoint, which deletes the log before it or before its mark
// (storage.WAL.Checkpoint, Mark), may take one away.
func (n *node) checkNothingAcceptedLost() {
	truncated := n.r().Truncated()
	lost, lostBallot := uint64(0), uint64(0)
	for i, b := range n.keptAccepted {
		if i <= truncated {
			delete(n.keptAccepted, i)
			continue
		}
		if e := n.r().AcceptedAt(i); (e == nil || e.Ballot < b) && (lost == 0 || i < lost) {
			lost, lostBallot = i, b
		}
	}
	if lost != 0 {
		n.s.fail(ErrSafety, ErrAcceptanceLost, "%s restarted without its durable acceptance of instance %d under %s (truncated at %d)",
			n.name(), lost, fmtBallot(lostBallot), truncated)
	}
}
