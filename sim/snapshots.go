package sim

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/livepaxos/livepaxos/core"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// The simulated snapshot store (§5.5): files that commit after a
// simulated write and sync, survive crashes (one being written does not),
// and stream to a peer in chunks, one request in flight, as the actor
// shell streams them (actors/snapshotter.go).

// simSnapshot is a committed snapshot file: the database's state as of
// meta.Instance, with its handle.
type simSnapshot struct {
	meta  *messages.SnapshotMeta
	state []byte
}

// WriteSnapshot writes the frozen database and commits the file after a
// simulated write and sync; a crash before that leaves the previous one.
func (n *node) WriteSnapshot(meta *messages.SnapshotMeta, write func(io.Writer) error) {
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		n.d.SnapshotWritten(core.SnapshotResult{Err: err})
		return
	}
	snap := &simSnapshot{meta: meta, state: buf.Bytes()}
	n.snapshotting = true
	delay := int64(n.s.cfg.FsyncMin) + n.s.rng.Int64N(int64(10*n.s.cfg.FsyncMax))
	n.s.sched.after(delay, n.guard(func() {
		n.snapshotting = false
		if n.snapshot == nil || n.snapshot.meta.Instance < meta.Instance { // an install may have overtaken it
			n.snapshot = snap
			n.hadSnapshot = true
			n.s.snapshots++
			if n.s.trace != nil {
				n.s.tracef("%s snapshot at %d committed (%d bytes)", n.name(), meta.Instance, len(snap.state))
			}
		}
		n.d.SnapshotWritten(core.SnapshotResult{Instance: meta.Instance, Bytes: uint64(len(snap.state))})
	}))
}

// snapshotFetch asks a peer for the bytes of its snapshot (at least as of
// instance) from offset; snapshotChunk carries up to snapshotChunkBytes of
// them. A provider that crashes or moves to a newer snapshot mid-transfer
// ends it; the fetcher gives up after fetchTimeout without a chunk, and
// the replica's next catch-up asks another peer.
type snapshotFetch struct {
	instance uint64
	offset   int
}

type snapshotChunk struct {
	instance uint64 // 0: nothing as recent to give
	meta     *messages.SnapshotMeta
	offset   int
	data     []byte
	done     bool
}

// snapshotChunkBytes is small so that simulated snapshots span several
// chunks.
const snapshotChunkBytes = 16

// fetchTimeout is how long a transfer waits for its next chunk.
const fetchTimeout = time.Second

// fetch is a snapshot transfer in progress.
type fetch struct {
	from     uint32
	instance uint64
	buf      []byte
	last     time.Duration // simulated time of the last request
}

// Fetch begins fetching a peer's snapshot, unless a transfer is already
// under way.
func (n *node) Fetch(offer paxos.SnapshotOffer) {
	if f := n.fetching; f != nil {
		if time.Duration(n.s.sched.now)-f.last < fetchTimeout {
			return
		}
		n.s.transfersCut++ // the provider went quiet mid-transfer
	}
	n.fetching = &fetch{from: offer.From, instance: offer.Instance, last: time.Duration(n.s.sched.now)}
	n.send(offer.From, &snapshotFetch{instance: offer.Instance})
}

// serveChunk answers a fetch with the next chunk of this node's snapshot.
func (n *node) serveChunk(from uint32, m *snapshotFetch) {
	resp := &snapshotChunk{offset: m.offset}
	if snap := n.snapshot; snap != nil && snap.meta.Instance >= m.instance && m.offset <= len(snap.state) {
		end := min(m.offset+snapshotChunkBytes, len(snap.state))
		resp.instance, resp.meta = snap.meta.Instance, snap.meta
		resp.data = snap.state[m.offset:end] // never changed in place: sharing is a copy
		resp.done = end == len(snap.state)
	}
	n.send(from, resp)
}

// takeChunk adds a chunk to the transfer and installs the snapshot once
// it is whole.
func (n *node) takeChunk(from uint32, m *snapshotChunk) {
	f := n.fetching
	if f == nil || from != f.from || m.offset != len(f.buf) {
		return // late, duplicated, or of a transfer given up
	}
	if m.instance == 0 || (m.offset > 0 && m.instance != f.instance) || m.instance < f.instance {
		n.fetching = nil // the provider has nothing as recent, or moved on
		n.s.transfersCut++
		return
	}
	f.instance = m.instance
	f.buf = append(f.buf, m.data...)
	f.last = time.Duration(n.s.sched.now)
	if !m.done {
		n.send(from, &snapshotFetch{instance: f.instance, offset: len(f.buf)})
		return
	}
	n.fetching = nil
	n.install(&simSnapshot{meta: m.meta, state: f.buf})
}

// install has the replica install a peer's snapshot, if it is still ahead
// of what the node applied, and keeps it as the node's own (§5.5).
func (n *node) install(snap *simSnapshot) {
	err := n.d.Install(snap.meta, func(ss core.Snapshotter) error {
		n.s.check.installed(n, snap.meta.Instance)
		if n.s.err != nil {
			return n.s.err
		}
		if err := ss.Restore(bytes.NewReader(snap.state)); err != nil {
			n.s.fail(ErrSafety, ErrRestore, "%s: install of a snapshot at %d: %v", n.name(), snap.meta.Instance, err)
			return err
		}
		if n.s.trace != nil {
			n.s.tracef("%s INSTALL snapshot at %d (applied was %d)", n.name(), snap.meta.Instance, n.applied)
		}
		n.applied = snap.meta.Instance
		n.snapshot, n.hadSnapshot = snap, true
		n.s.installs++
		return nil
	})
	if err != nil && n.s.err == nil {
		panic(fmt.Sprintf("sim: %s: %v", n.name(), err))
	}
}
