package sim

import "github.com/livepaxos/livepaxos/messages"

// disk is one node's write-ahead log with group commit, as storage.WAL
// does it: records are appended in order; an eager append (the acceptor's)
// starts an fsync if none is running; lazy appends (the learner's) ride on
// the next fsync. An fsync makes durable everything appended before it
// started; what was appended meanwhile waits for the next one.
type disk struct {
	log    []*messages.Record
	synced int // log[:synced] is durable
	// syncing is the log length the running fsync will make durable, or -1.
	syncing int
	// waiters are acceptor replies waiting for the disk, in order. While
	// any wait, even a reply with nothing to persist waits behind them
	// (actors.Replica.persist: its state may depend on their records).
	waiters []waiter
	// deleted counts the records checkpoints removed from the front, so
	// that positions taken before a cut can be mapped after it.
	deleted int
}

// waiter is work released once the log is durable up to target, in order.
type waiter struct {
	target int
	fn     func()
}

func newDisk(records []*messages.Record) *disk {
	return &disk{log: records, synced: len(records), syncing: -1}
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
	if d.syncing >= 0 {
		d.syncing -= k
	}
	for i := range d.waiters {
		d.waiters[i].target -= k
	}
}
