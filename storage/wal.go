package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livepaxos/livepaxos/internal/defaults"
)

// Defaults for the zero values of Options.
const (
	DefaultSegmentBytes    = 64 << 20
	DefaultMaxRecordBytes  = 16 << 20
	DefaultMaxPendingBytes = 64 << 20
)

var (
	// ErrCorrupt reports a checksum or framing failure that is not a torn
	// tail: data that may have been acknowledged is damaged, so the log
	// refuses to open rather than forget it.
	ErrCorrupt = errors.New("storage: log corrupt")
	// ErrRecordTooLarge refuses an Append with a record past
	// Options.MaxRecordBytes.
	ErrRecordTooLarge = errors.New("storage: record too large")
	// ErrClosed refuses an Append after Close, and a second Close.
	ErrClosed = errors.New("storage: log closed")
	// ErrLocked refuses to open a log that another WAL holds open.
	ErrLocked = errors.New("storage: data directory in use by another process")
)

// Options bound the log. Zero values take defaults.
type Options struct {
	// SegmentBytes is the size past which the log rolls to a new segment.
	// A segment exceeds it only when a single record is larger.
	SegmentBytes int64
	// MaxRecordBytes bounds one record; larger appends are refused with
	// ErrRecordTooLarge and nothing of them is written.
	MaxRecordBytes int
	// MaxPendingBytes bounds the framed bytes queued for the next fsync.
	// Past it Append blocks, which pushes back on the proposers instead of
	// letting the queue grow without bound while the disk is slow. One
	// Append that alone exceeds it is admitted when the queue is empty.
	// The bound is not enforced while done callbacks run, because the
	// caller may be one of them (see Append). With the batch being written,
	// memory held is about twice this.
	MaxPendingBytes int
	// RangeRequired says the directory's format always has the range file
	// once it holds a segment (see rangeFileName): without it, Open
	// refuses with ErrRangeMissing rather than take the segments as they
	// are. Unset, a directory without the file is taken for one made
	// before it, as it always was. Either way, an Open that succeeds has
	// written the file if it was not there (see setRange).
	RangeRequired bool
	// OnFatal, if set, is called once, on the log's goroutine, when a write
	// or fsync fails and the log stops for good. It runs before any done
	// callback sees the error. The node is expected to exit; OnFatal must
	// not call Close.
	OnFatal func(error)
	// OnSync, if set, hears of every group commit made durable, on the
	// log's goroutine: how long writing and fsyncing it took, and how many
	// records and framed bytes it held (for metrics; it must not block).
	OnSync func(d time.Duration, records, bytes int)

	// syncFn and writeFn replace fdatasync and write(2) in tests, to
	// inject failures. syncFn is also used for directories.
	syncFn  func(*os.File) error
	writeFn func(*os.File, []byte) (int, error)
}

func (o Options) withDefaults() Options {
	defaults.Positive(&o.SegmentBytes, DefaultSegmentBytes)
	defaults.Positive(&o.MaxRecordBytes, DefaultMaxRecordBytes)
	defaults.Positive(&o.MaxPendingBytes, DefaultMaxPendingBytes)
	return o
}

// Stats counts the log's work since Open, for metrics and benchmarks.
type Stats struct {
	Records  uint64 // records made durable
	Bytes    uint64 // framed record bytes written
	Fsyncs   uint64 // fsync/fdatasync calls, on segments and the directory
	Segments uint64 // segment files currently in the log
}

// WAL is an open write-ahead log. Its methods are safe for concurrent use.
type WAL struct {
	dir  string
	opts Options
	lock *os.File

	mu      sync.Mutex
	work    *sync.Cond // signalled when pending gains an entry or Close is called
	space   *sync.Cond // broadcast when pending is drained or the log stops taking data
	pending *batch     // what the next round will write
	spare   *batch     // the other buffer, reused to avoid reallocating
	// inCallbacks is set while the writer runs done callbacks. The writer
	// drains nothing meanwhile, and the caller may be a done callback on
	// the writer's own goroutine, so Append must not wait for space then.
	inCallbacks bool
	closing     bool  // Close was called; take no more data
	stopped     bool  // the writer goroutine has exited
	err         error // the failure that stopped the log, sticky
	waiting     int   // appenders blocked on backpressure
	stop        chan struct{}

	// Owned by the writer goroutine once it runs (by Open before that).
	seg      *os.File // the segment being appended to
	segSeq   uint64
	segSize  int64
	unsynced bool // seg holds written bytes not yet fsynced (lazy rounds)
	// first is the oldest segment a replay needs (the last checkpoint's),
	// and rng what the range file on disk says (see rangeFileName).
	first uint64
	rng   logRange
	// markSeq is the segment the last Mark started, until a Checkpoint
	// takes it (0: none).
	markSeq uint64

	records, bytes, fsyncs, segments atomic.Uint64
}

// entry is one Append call waiting for its round.
type entry struct {
	done func(error)
	err  error // set when the Append was refused; nothing of it is in buf
	lazy bool  // AppendLazy: written, but needs no fsync of its own
}

// batch is the work of one group-commit round: framed records ready for a
// single write, and the callbacks to run once they are durable.
type batch struct {
	buf     []byte
	ends    []int // ends[i] is the offset in buf just past record i
	entries []entry
	// cut, when not -1, is the index of the first record of a Checkpoint:
	// it starts a new segment (or goes after the last Mark, see Mark),
	// and once it is durable every older segment is deleted.
	cut int
	// marks are the indexes of the records that follow each Mark of the
	// round, in order (len(ends) for a Mark no record follows yet).
	marks []int
}

func (b *batch) reset() {
	b.cut = -1
	b.marks = b.marks[:0]
	b.buf = b.buf[:0]
	b.ends = b.ends[:0]
	clear(b.entries) // drop the callbacks so they can be collected
	b.entries = b.entries[:0]
}

// Open opens (creating if needed) the log in dir, takes an exclusive flock on
// dir/LOCK (ErrLocked if held), and replays every intact record in order
// through replay (replay may be nil; each record passed to it is a fresh slice
// it may keep). A torn record at the very tail of the last segment (a write
// a crash left part way, see tail.go) is cut off (file truncated to the last
// good record, and fsynced) and replay stops there. A broken record anywhere
// else (an earlier segment, followed by further data, or whole but wrong),
// or a segment the log must hold that is gone (ErrSegmentMissing), returns an
// error wrapping ErrCorrupt and opens nothing. If replay returns an error,
// Open returns it.
//
// New records are appended to the last segment.
func Open(dir string, opts Options, replay func(rec []byte) error) (_ *WAL, err error) {
	opts = opts.withDefaults()
	w := &WAL{
		dir:     dir,
		opts:    opts,
		pending: &batch{cut: -1},
		spare:   &batch{cut: -1},
		stop:    make(chan struct{}),
	}
	w.work = sync.NewCond(&w.mu)
	w.space = sync.NewCond(&w.mu)

	if err := w.makeDir(); err != nil {
		return nil, err
	}
	if w.lock, err = lockDir(dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if w.seg != nil {
				w.seg.Close()
			}
			unlockDir(w.lock)
		}
	}()
	if err := w.recover(replay); err != nil {
		return nil, err
	}
	go w.run()
	return w, nil
}

// makeDir creates the data directory if it is missing, and syncs its parent
// so that the directory itself survives a crash: also when it was there
// already, since whoever made it (an operator's mkdir, a container's
// volume) may not have synced it, and nothing written in it is durable
// until its own name is.
func (w *WAL) makeDir() error {
	if err := MkdirAllSynced(w.dir); err != nil {
		return err
	}
	return w.syncDir(filepath.Dir(filepath.Clean(w.dir)))
}

// recover replays every segment, cuts a torn tail off the last one, and leaves
// w.seg open for appending.
func (w *WAL) recover(replay func([]byte) error) error {
	seqs, err := listSegments(w.dir)
	if err != nil {
		return err
	}
	rng, err := w.checkRange(seqs)
	if err != nil {
		return err
	}
	w.first = rng.first
	next := uint64(1)
	for i, seq := range seqs {
		last := i == len(seqs)-1
		f, end, err := w.recoverSegment(seq, last, replay)
		if errors.Is(err, errTornHeader) && last {
			// A crash while creating this segment: it holds nothing.
			// Remove it; it is created again below.
			if err := os.Remove(segmentPath(w.dir, seq)); err != nil {
				return err
			}
			if err := w.syncDir(w.dir); err != nil {
				return err
			}
			next = seq
			break
		}
		if errors.Is(err, errTornHeader) {
			return fmt.Errorf("%w: %s: truncated header", ErrCorrupt, segmentName(seq))
		}
		if err != nil {
			return err
		}
		w.segments.Add(1)
		next = seq + 1
		if last {
			w.seg, w.segSeq, w.segSize = f, seq, end
		}
	}
	if w.seg == nil {
		return w.createSegment(next)
	}
	return w.setRange(w.first, w.segSeq)
}

// recoverSegment replays segment seq. For the last segment it returns the file
// open for appending at the end of its intact records, with any torn tail cut.
func (w *WAL) recoverSegment(seq uint64, last bool, replay func([]byte) error) (_ *os.File, end int64, err error) {
	path := segmentPath(w.dir, seq)
	flag := os.O_RDONLY
	if last {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, 0, err
	}
	defer func() {
		if err != nil || !last {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := st.Size()
	end, err = replaySegment(f, seq, size, replay)
	if err != nil {
		return nil, 0, err
	}
	zeros, err := zeroFrom(f, end, size)
	if err != nil {
		return nil, 0, err
	}
	if end < size && !zeros { // a preallocated, never written remainder is no damage
		if !last {
			return nil, 0, fmt.Errorf("%w: %s: damaged record at offset %d", ErrCorrupt, segmentName(seq), end)
		}
		torn, why, err := tornTail(f, end, size)
		if err != nil {
			return nil, 0, err
		}
		if !torn {
			return nil, 0, fmt.Errorf("%w: %s: %s", ErrCorrupt, segmentName(seq), why)
		}
		if err := w.cutTail(f, end); err != nil {
			return nil, 0, err
		}
	}
	if !last {
		return nil, end, nil
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		return nil, 0, err
	}
	return f, end, nil
}

// cutTail truncates the last segment at end, the start of its torn tail
// (tail.go tells a torn tail from corruption), preallocates it again and
// syncs it, so the cut is durable before anything is appended after it.
func (w *WAL) cutTail(f *os.File, end int64) error {
	if err := f.Truncate(end); err != nil {
		return err
	}
	if err := preallocate(f, w.opts.SegmentBytes); err != nil {
		return err
	}
	return w.syncFile(f)
}

// zeroFrom reports whether f holds only zero bytes in [from, to): the space
// preallocate reserved and no write reached. A record's frame never starts
// with eight zero bytes (its checksum covers the length), so zeros are never
// mistaken for data.
func zeroFrom(f *os.File, from, to int64) (bool, error) {
	buf := make([]byte, 256<<10)
	for off := from; off < to; {
		n := int(min(int64(len(buf)), to-off))
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return false, err
		}
		for _, b := range buf[:n] {
			if b != 0 {
				return false, nil
			}
		}
		off += int64(n)
	}
	return true, nil
}

// Append queues records to be written and fsynced. done (which may be nil) is
// called exactly once: with nil after every record of this call, and of every
// earlier Append, is durable; or with the error. The records are copied, so
// the caller may reuse them once Append returns.
//
// Calls to done happen in Append order, on the log's own goroutine, so done
// must be quick. done may call Append (which then never blocks) but must not
// call AppendSync or Close, which would wait for the goroutine running done.
//
// If any record exceeds Options.MaxRecordBytes the whole call is refused with
// ErrRecordTooLarge and nothing of it is written. After a write or fsync
// error the log has failed for good and every later done gets that error.
// After Close, done gets ErrClosed (called synchronously once the log's
// goroutine has exited).
//
// Append blocks while more than Options.MaxPendingBytes are queued for the
// next fsync.
func (w *WAL) Append(recs [][]byte, done func(error)) { w.append(recs, done, false) }

// AppendLazy queues records to be written with the next round without asking
// for an fsync of their own: a later Append's fsync, or Close, makes them
// durable, and until then a crash may lose them (never records appended
// before them, nor leave a hole before records synced after them). It is for
// records that can be rebuilt, such as a learner's note of how far the log is
// known chosen: they then cost no fsync at all.
func (w *WAL) AppendLazy(recs [][]byte) { w.append(recs, nil, true) }

// Checkpoint appends recs at the start of a new segment and, once they are
// durable, deletes every older segment, oldest first, then calls done. The
// caller's records must make the older ones redundant: together with what
// is appended after them, they are all a replay needs (a replica writes its
// acceptor's state above its newest snapshot, §5.5). Records appended
// before the checkpoint are written and synced first, like any others; a
// crash before the deletions are done leaves them to be replayed, in order,
// before the checkpoint, which supersedes them.
func (w *WAL) Checkpoint(recs [][]byte, done func(error)) { w.appendAt(recs, done, false, true) }

func (w *WAL) append(recs [][]byte, done func(error), lazy bool) { w.appendAt(recs, done, lazy, false) }

// Mark starts a new segment after the records appended so far, for the
// next Checkpoint to keep: that Checkpoint's records then go after
// whatever was appended meanwhile, and only the segments before the mark
// are deleted once they are durable. So the Checkpoint need carry only
// what the records before the mark held (a replica marks its log when it
// freezes a snapshot, and its checkpoint, when the snapshot is durable,
// carries only what its acceptor accepted before: paxos.Acceptor.MarkLog).
// Without a Mark a Checkpoint starts a segment of its own and keeps
// nothing older. A Mark is forgotten when the log is closed.
func (w *WAL) Mark() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.refusal() != nil || w.stopped {
		return
	}
	w.pending.marks = append(w.pending.marks, len(w.pending.ends))
	w.work.Signal()
}

func (w *WAL) appendAt(recs [][]byte, done func(error), lazy, checkpoint bool) {
	if done == nil {
		done = func(error) {}
	}
	var refused error
	size := 0
	for _, r := range recs {
		if len(r) > w.opts.MaxRecordBytes {
			refused = fmt.Errorf("%w: %d bytes, limit %d", ErrRecordTooLarge, len(r), w.opts.MaxRecordBytes)
			break
		}
		size += frameSize(len(r))
	}

	w.mu.Lock()
	for refused == nil && w.mustWait(size) {
		w.waiting++
		w.space.Wait()
		w.waiting--
	}
	if w.stopped {
		w.mu.Unlock()
		done(ErrClosed)
		return
	}
	if refused == nil {
		refused = w.refusal()
	}
	p := w.pending
	if refused == nil {
		if checkpoint {
			p.cut = len(p.ends) // a later checkpoint in the same round wins
		}
		for _, r := range recs {
			p.buf = appendFrame(p.buf, r)
			p.ends = append(p.ends, len(p.buf))
		}
	}
	// Refused calls are queued too, so that their done keeps its place in
	// Append order.
	p.entries = append(p.entries, entry{done: done, err: refused, lazy: lazy})
	w.work.Signal()
	w.mu.Unlock()
}

// mustWait reports whether an Append of size framed bytes has to wait for the
// writer to drain the queue. Callers hold w.mu.
func (w *WAL) mustWait(size int) bool {
	queued := len(w.pending.buf)
	return queued > 0 && queued+size > w.opts.MaxPendingBytes &&
		!w.inCallbacks && w.refusal() == nil && !w.stopped
}

// refusal is the error every new Append gets, or nil while the log takes
// data. Callers hold w.mu.
func (w *WAL) refusal() error {
	switch {
	case w.err != nil:
		return w.err
	case w.closing:
		return ErrClosed
	}
	return nil
}

// AppendSync appends recs and waits until they are durable. It must not be
// called from a done callback.
func (w *WAL) AppendSync(recs [][]byte) error {
	ch := make(chan error, 1)
	w.Append(recs, func(err error) { ch <- err })
	return <-ch
}

// Close waits for everything queued to be written and fsynced, stops the
// log's goroutine, and releases the directory lock. It returns the error
// that failed the log, if any. A second Close returns ErrClosed.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		<-w.stop
		return ErrClosed
	}
	w.closing = true
	w.work.Signal()
	w.space.Broadcast()
	w.mu.Unlock()

	<-w.stop
	w.mu.Lock()
	errs := []error{w.err}
	failed := w.err != nil
	w.mu.Unlock()
	if w.seg != nil {
		if w.unsynced && !failed { // lazy records: durable at a clean close
			errs = append(errs, w.syncFile(w.seg))
		}
		errs = append(errs, w.seg.Close())
	}
	errs = append(errs, unlockDir(w.lock))
	return errors.Join(errs...)
}

// Stats returns the log's counters.
func (w *WAL) Stats() Stats {
	return Stats{
		Records:  w.records.Load(),
		Bytes:    w.bytes.Load(),
		Fsyncs:   w.fsyncs.Load(),
		Segments: w.segments.Load(),
	}
}

// run is the log's goroutine. Each round takes everything queued, writes and
// fsyncs it, then runs the callbacks; appends that arrive meanwhile wait in
// the other buffer for the next round. That is the whole of group commit:
// the longer an fsync takes, the more the next one covers.
func (w *WAL) run() {
	defer close(w.stop)
	for {
		w.mu.Lock()
		for len(w.pending.entries) == 0 && len(w.pending.marks) == 0 && !w.closing {
			w.work.Wait()
		}
		if len(w.pending.entries) == 0 && len(w.pending.marks) == 0 {
			w.stopped = true
			w.space.Broadcast()
			w.mu.Unlock()
			return
		}
		b := w.pending
		w.pending, w.spare = w.spare, nil
		err := w.err
		w.space.Broadcast()
		w.mu.Unlock()

		sync := false
		for _, e := range b.entries {
			sync = sync || !e.lazy
		}
		if err == nil && (len(b.buf) > 0 || len(b.marks) > 0) {
			began := time.Now()
			if err = w.write(b, sync); err != nil {
				err = w.fail(err)
			} else if sync && w.opts.OnSync != nil {
				w.opts.OnSync(time.Since(began), len(b.ends), len(b.buf))
			}
		}

		w.mu.Lock()
		w.inCallbacks = true
		w.mu.Unlock()
		for _, e := range b.entries {
			if e.err != nil {
				e.done(e.err)
			} else {
				e.done(err)
			}
		}
		b.reset()
		w.mu.Lock()
		w.inCallbacks = false
		w.spare = b
		w.mu.Unlock()
	}
}

// fail records err as the log's permanent failure and reports it once
// through OnFatal. It returns the error every pending and later Append gets.
func (w *WAL) fail(err error) error {
	w.mu.Lock()
	first := w.err == nil
	if first {
		w.err = fmt.Errorf("storage: log failed: %w", err)
	}
	err = w.err
	w.space.Broadcast()
	w.mu.Unlock()
	if first && w.opts.OnFatal != nil {
		w.opts.OnFatal(err)
	}
	return err
}

// write makes the records of b durable: one write and one fsync per segment
// touched, rolling to a new segment before any record that would carry the
// current one past SegmentBytes, at each Mark, and at a Checkpoint that
// follows no Mark. With sync false (a round of lazy records only) the last
// segment is written but not synced: the next synced round covers it, and
// a segment is always synced before the log rolls past it.
func (w *WAL) write(b *batch, sync bool) error {
	start, prev := 0, 0 // b.buf[start:prev] is whole records not yet written
	// rollHere syncs what is pending and starts a new segment, unless the
	// current one holds no record yet.
	rollHere := func() error {
		if prev == start && w.segSize <= int64(segmentHeaderSize) {
			return nil
		}
		if err := w.flush(b.buf[start:prev], true); err != nil {
			return err
		}
		start = prev
		return w.roll()
	}
	marks := b.marks
	mark := func(i int) error {
		for ; len(marks) > 0 && marks[0] == i; marks = marks[1:] {
			if err := rollHere(); err != nil {
				return err
			}
			w.markSeq = w.segSeq
		}
		return nil
	}
	cutSeq := uint64(0)
	for i, end := range b.ends {
		if err := mark(i); err != nil {
			return err
		}
		if i == b.cut {
			cutSeq, w.markSeq = w.markSeq, 0
			if cutSeq == 0 { // no mark: the checkpoint starts a segment of its own
				if err := rollHere(); err != nil {
					return err
				}
				cutSeq = w.segSeq
			}
		}
		if w.segSize+int64(end-start) > w.opts.SegmentBytes {
			if err := rollHere(); err != nil {
				return err
			}
		}
		prev = end
	}
	if err := mark(len(b.ends)); err != nil {
		return err
	}
	if err := w.flush(b.buf[start:], sync); err != nil {
		return err
	}
	w.records.Add(uint64(len(b.ends)))
	w.bytes.Add(uint64(len(b.buf)))
	if b.cut >= 0 {
		// The checkpoint is durable: the range file moves past the
		// segments it supersedes before they go (see rangeFileName).
		if err := w.setRange(cutSeq, w.segSeq); err != nil {
			return err
		}
		return w.deleteBefore(cutSeq)
	}
	return nil
}

// deleteBefore removes every segment below seq, oldest first, so that a
// crash part way leaves a contiguous log, and syncs the directory.
func (w *WAL) deleteBefore(seq uint64) error {
	seqs, err := listSegments(w.dir)
	if err != nil {
		return err
	}
	removed := 0
	for _, s := range seqs {
		if s >= seq {
			break
		}
		if err := os.Remove(segmentPath(w.dir, s)); err != nil {
			return err
		}
		removed++
	}
	if removed == 0 {
		return nil
	}
	w.segments.Add(^uint64(removed - 1))
	return w.syncDir(w.dir)
}

// flush writes whole records to the current segment with one write and, if
// sync, makes them (and everything written before them) durable.
func (w *WAL) flush(p []byte, sync bool) error {
	if len(p) > 0 {
		if err := w.writeFile(w.seg, p); err != nil {
			return err
		}
		w.segSize += int64(len(p))
		w.unsynced = true
	}
	if !sync || !w.unsynced {
		return nil
	}
	w.unsynced = false
	return w.syncFile(w.seg)
}

// roll closes the current segment, which flush has already synced, and starts
// the next.
func (w *WAL) roll() error {
	err := w.seg.Close()
	w.seg = nil
	if err != nil {
		return fmt.Errorf("storage: close %s: %w", segmentName(w.segSeq), err)
	}
	return w.createSegment(w.segSeq + 1)
}

// createSegment creates segment seq and makes it the current one. The header
// is synced before any record is written, the directory is synced so the
// new file's name survives a crash, and then the range file is updated to
// name it; recovery relies on all three.
func (w *WAL) createSegment(seq uint64) error {
	path := segmentPath(w.dir, seq)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := w.writeFile(f, segmentHeader(seq)); err != nil {
		f.Close()
		return err
	}
	if err := preallocate(f, w.opts.SegmentBytes); err != nil {
		f.Close()
		return fmt.Errorf("storage: preallocate %s: %w", segmentName(seq), err)
	}
	if err := w.syncFile(f); err != nil {
		f.Close()
		return err
	}
	if err := w.syncDir(w.dir); err != nil {
		f.Close()
		return err
	}
	w.seg, w.segSeq, w.segSize = f, seq, int64(segmentHeaderSize)
	w.segments.Add(1)
	if w.first == 0 {
		w.first = seq // a new log
	}
	// Named in the range file before any record goes in, so that a
	// segment holding records is never missing unnoticed.
	return w.setRange(w.first, seq)
}

// writeFile writes all of p to f.
func (w *WAL) writeFile(f *os.File, p []byte) error {
	write := w.opts.writeFn
	if write == nil {
		write = (*os.File).Write
	}
	if _, err := write(f, p); err != nil {
		return fmt.Errorf("storage: write %s: %w", filepath.Base(f.Name()), err)
	}
	return nil
}

// syncFile makes the data written to f durable.
func (w *WAL) syncFile(f *os.File) error {
	w.fsyncs.Add(1)
	sync := w.opts.syncFn
	if sync == nil {
		sync = datasync
	}
	if err := sync(f); err != nil {
		return fmt.Errorf("storage: fsync %s: %w", filepath.Base(f.Name()), err)
	}
	return nil
}

// syncDir makes the entries of directory dir durable.
func (w *WAL) syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	w.fsyncs.Add(1)
	sync := w.opts.syncFn
	if sync == nil {
		sync = (*os.File).Sync
	}
	if err := sync(d); err != nil {
		return fmt.Errorf("storage: fsync directory %s: %w", dir, err)
	}
	return nil
}
