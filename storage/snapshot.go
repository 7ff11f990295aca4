package storage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Snapshot files (§5.5 of "Paxos Made Live").
//
// A snapshot is the state machine's state as of one log instance, plus
// opaque metadata from the replica (the group membership at that point, the
// epoch). It is written in chunks, each checksummed and written out to the
// device on its own (sync_file_range on Linux) before the next: the paper
// found that one large write stalled the small log flushes behind it, and
// an fsync per chunk of a growing file costs a journal commit each, which
// the log's fsyncs queue behind as well (measured: throughput during a
// snapshot halved). One fsync at the end makes the file durable. It is written to a temporary file and renamed into place once
// complete and durable, so a crash leaves either the previous snapshot or
// the new one, never a half. The previous snapshot is removed only after
// the new one is durable.
//
// Layout, all integers big-endian:
//
//	magic "LPSNAP01"
//	instance u64 | meta length u32 | meta | crc32c(instance, meta length, meta) u32
//	chunks: length u32 (> 0) | data | crc32c(length, data) u32
//	end:    0 u32 | total data bytes u64 | crc32c of all chunk data u32
const snapshotMagic = "LPSNAP01"

// Snapshot file names: snap-<instance as 20 digits>.snap, so that names sort
// by instance. A .tmp suffix marks one being written.
const (
	snapshotPrefix = "snap-"
	snapshotSuffix = ".snap"
	snapshotTemp   = ".tmp"
)

// DefaultSnapshotChunk is the chunk size: small enough that one chunk's
// write and sync do not hold up the log's fsyncs for long.
const DefaultSnapshotChunk = 64 << 10

// MaxSnapshotMeta bounds a snapshot's metadata.
const MaxSnapshotMeta = 1 << 20

// ErrNoSnapshot is returned by OpenLatestSnapshot when the directory holds
// no valid snapshot.
var ErrNoSnapshot = errors.New("storage: no snapshot")

// SnapshotOptions tune snapshot files. Zero fields take defaults.
type SnapshotOptions struct {
	ChunkBytes int
	// Pace has the writer rest after each chunk for as long as writing it
	// out took, leaving the device to the log at least half the time: a
	// snapshot takes longer, and the log's fsyncs do not queue behind it.
	Pace bool
	// syncFn replaces fdatasync/fsync (tests count or fail syncs).
	syncFn func(*os.File) error
}

func (o SnapshotOptions) chunk() int {
	if o.ChunkBytes <= 0 {
		return DefaultSnapshotChunk
	}
	return o.ChunkBytes
}

func (o SnapshotOptions) sync(f *os.File) error {
	if o.syncFn != nil {
		return o.syncFn(f)
	}
	return datasync(f)
}

// writeOut writes one chunk's pages to the device before the next chunk
// is written (see writeOut in sync_linux.go); Commit's sync makes the whole
// file durable.
func (o SnapshotOptions) writeOut(f *os.File, off, n int64) error {
	if o.syncFn != nil {
		return o.syncFn(f)
	}
	return writeOut(f, off, n)
}

// SnapshotWriter writes one snapshot. Write the state to it, then Commit;
// Abort (or a failed Commit) leaves the directory as it was.
type SnapshotWriter struct {
	dir      string
	instance uint64
	opts     SnapshotOptions
	f        *os.File
	tmp      string
	buf      []byte
	total    uint64
	crc      uint32
	syncs    int
	off      int64 // file offset of the next chunk
	err      error
}

// CreateSnapshot starts a snapshot of the state as of instance, with the
// replica's metadata, in dir.
func CreateSnapshot(dir string, instance uint64, meta []byte, opts SnapshotOptions) (*SnapshotWriter, error) {
	if len(meta) > MaxSnapshotMeta {
		return nil, fmt.Errorf("storage: snapshot metadata is %d bytes, limit %d", len(meta), MaxSnapshotMeta)
	}
	tmp := filepath.Join(dir, snapshotName(instance)+snapshotTemp)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	w := &SnapshotWriter{dir: dir, instance: instance, opts: opts, f: f, tmp: tmp,
		buf: make([]byte, 0, opts.chunk())}
	hdr := make([]byte, 0, len(snapshotMagic)+16+len(meta))
	hdr = append(hdr, snapshotMagic...)
	hdr = binary.BigEndian.AppendUint64(hdr, instance)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(meta)))
	hdr = append(hdr, meta...)
	hdr = binary.BigEndian.AppendUint32(hdr, crc32c(hdr[len(snapshotMagic):]))
	if _, err := f.Write(hdr); err != nil {
		w.Abort()
		return nil, err
	}
	w.off = int64(len(hdr))
	return w, nil
}

// Write adds state bytes; every full chunk is written and written out.
func (w *SnapshotWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := len(p)
	for len(p) > 0 {
		take := min(cap(w.buf)-len(w.buf), len(p))
		w.buf = append(w.buf, p[:take]...)
		p = p[take:]
		if len(w.buf) == cap(w.buf) {
			if err := w.flushChunk(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (w *SnapshotWriter) flushChunk() error {
	if len(w.buf) == 0 {
		return nil
	}
	frame := make([]byte, 0, 8+len(w.buf))
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(w.buf)))
	frame = append(frame, w.buf...)
	frame = binary.BigEndian.AppendUint32(frame, crc32c(frame))
	if _, err := w.f.Write(frame); err != nil {
		w.err = err
		return err
	}
	started := time.Now()
	if err := w.opts.writeOut(w.f, w.off, int64(len(frame))); err != nil {
		w.err = fmt.Errorf("storage: sync of snapshot chunk: %w", err)
		return w.err
	}
	if w.opts.Pace {
		time.Sleep(time.Since(started))
	}
	w.syncs++
	w.off += int64(len(frame))
	w.crc = crc32.Update(w.crc, castagnoli, w.buf)
	w.total += uint64(len(w.buf))
	w.buf = w.buf[:0]
	return nil
}

// Commit makes the snapshot durable and visible: the last chunk and the end
// marker are synced, the file renamed into place and the directory synced.
// Only then is the previous snapshot removed.
func (w *SnapshotWriter) Commit() error {
	if w.err != nil {
		w.Abort()
		return w.err
	}
	if err := w.flushChunk(); err != nil {
		w.Abort()
		return err
	}
	end := make([]byte, 0, 16)
	end = binary.BigEndian.AppendUint32(end, 0)
	end = binary.BigEndian.AppendUint64(end, w.total)
	end = binary.BigEndian.AppendUint32(end, w.crc)
	if _, err := w.f.Write(end); err != nil {
		w.Abort()
		return err
	}
	if err := w.f.Sync(); err != nil {
		w.Abort()
		return fmt.Errorf("storage: sync of snapshot: %w", err)
	}
	if err := w.f.Close(); err != nil {
		w.f = nil
		w.Abort()
		return err
	}
	w.f = nil
	final := filepath.Join(w.dir, snapshotName(w.instance))
	if err := os.Rename(w.tmp, final); err != nil {
		w.Abort()
		return err
	}
	if err := SyncDir(w.dir); err != nil {
		return err
	}
	// The new snapshot is durable: older ones may go.
	names, err := snapshotNames(w.dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if n.instance < w.instance {
			os.Remove(filepath.Join(w.dir, n.name))
		}
	}
	return nil
}

// Abort discards a snapshot being written.
func (w *SnapshotWriter) Abort() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	os.Remove(w.tmp)
	if w.err == nil {
		w.err = errors.New("storage: snapshot aborted")
	}
}

// Syncs returns how many chunk syncs the writer made.
func (w *SnapshotWriter) Syncs() int { return w.syncs }

// SnapshotInfo names one snapshot file.
type SnapshotInfo struct {
	Instance uint64
	Meta     []byte
	Path     string
	Bytes    uint64 // state bytes
}

// SnapshotReader reads a snapshot's state, checking each chunk's checksum
// and, at the end, the whole; a mismatch or a missing end is ErrCorrupt.
type SnapshotReader struct {
	Info  SnapshotInfo
	f     *os.File
	r     *bufio.Reader
	chunk []byte
	off   int
	crc   uint32
	total uint64
	done  bool
}

// OpenSnapshot opens the snapshot file at path and checks its header.
func OpenSnapshot(path string) (*SnapshotReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	hdr := make([]byte, len(snapshotMagic)+12)
	if _, err := io.ReadFull(r, hdr); err != nil || string(hdr[:len(snapshotMagic)]) != snapshotMagic {
		f.Close()
		return nil, fmt.Errorf("%w: %s: not a snapshot file", ErrCorrupt, path)
	}
	instance := binary.BigEndian.Uint64(hdr[len(snapshotMagic):])
	metaLen := binary.BigEndian.Uint32(hdr[len(snapshotMagic)+8:])
	if metaLen > MaxSnapshotMeta {
		f.Close()
		return nil, fmt.Errorf("%w: %s: metadata length %d", ErrCorrupt, path, metaLen)
	}
	rest := make([]byte, int(metaLen)+4)
	if _, err := io.ReadFull(r, rest); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s: header cut short", ErrCorrupt, path)
	}
	meta := rest[:metaLen]
	sum := append(append([]byte{}, hdr[len(snapshotMagic):]...), meta...)
	if crc32c(sum) != binary.BigEndian.Uint32(rest[metaLen:]) {
		f.Close()
		return nil, fmt.Errorf("%w: %s: header checksum", ErrCorrupt, path)
	}
	return &SnapshotReader{Info: SnapshotInfo{Instance: instance, Meta: meta, Path: path}, f: f, r: r}, nil
}

// Read returns state bytes; io.EOF once the end marker has verified.
func (s *SnapshotReader) Read(p []byte) (int, error) {
	for s.off == len(s.chunk) {
		if s.done {
			return 0, io.EOF
		}
		if err := s.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.chunk[s.off:])
	s.off += n
	return n, nil
}

func (s *SnapshotReader) next() error {
	var lb [4]byte
	if _, err := io.ReadFull(s.r, lb[:]); err != nil {
		return fmt.Errorf("%w: %s: cut short before its end", ErrCorrupt, s.Info.Path)
	}
	n := binary.BigEndian.Uint32(lb[:])
	if n == 0 {
		var end [12]byte
		if _, err := io.ReadFull(s.r, end[:]); err != nil {
			return fmt.Errorf("%w: %s: end marker cut short", ErrCorrupt, s.Info.Path)
		}
		if binary.BigEndian.Uint64(end[:8]) != s.total || binary.BigEndian.Uint32(end[8:]) != s.crc {
			return fmt.Errorf("%w: %s: whole-file checksum", ErrCorrupt, s.Info.Path)
		}
		s.done, s.chunk, s.off = true, nil, 0
		s.Info.Bytes = s.total
		return nil
	}
	if n > 64<<20 {
		return fmt.Errorf("%w: %s: chunk length %d", ErrCorrupt, s.Info.Path, n)
	}
	frame := make([]byte, 4+int(n)+4)
	copy(frame, lb[:])
	if _, err := io.ReadFull(s.r, frame[4:]); err != nil {
		return fmt.Errorf("%w: %s: chunk cut short", ErrCorrupt, s.Info.Path)
	}
	if crc32c(frame[:4+n]) != binary.BigEndian.Uint32(frame[4+n:]) {
		return fmt.Errorf("%w: %s: chunk checksum at byte %d of the state", ErrCorrupt, s.Info.Path, s.total)
	}
	s.chunk, s.off = frame[4:4+n], 0
	s.crc = crc32.Update(s.crc, castagnoli, s.chunk)
	s.total += uint64(n)
	return nil
}

// Close releases the file.
func (s *SnapshotReader) Close() error { return s.f.Close() }

// VerifySnapshot reads a whole snapshot file and reports whether every
// checksum holds.
func VerifySnapshot(path string) (SnapshotInfo, error) {
	s, err := OpenSnapshot(path)
	if err != nil {
		return SnapshotInfo{}, err
	}
	defer s.Close()
	if _, err := io.Copy(io.Discard, s); err != nil {
		return SnapshotInfo{}, err
	}
	return s.Info, nil
}

// LatestSnapshot returns the newest snapshot in dir that verifies
// completely, skipping (and reporting in skipped) newer ones that do not.
// Temporary files of snapshots never committed are removed.
func LatestSnapshot(dir string) (info SnapshotInfo, skipped []error, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return SnapshotInfo{}, nil, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), snapshotPrefix) && strings.HasSuffix(e.Name(), snapshotTemp) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	names, err := snapshotNames(dir)
	if err != nil {
		return SnapshotInfo{}, nil, err
	}
	for i := len(names) - 1; i >= 0; i-- {
		info, err := VerifySnapshot(filepath.Join(dir, names[i].name))
		if err == nil {
			return info, skipped, nil
		}
		skipped = append(skipped, err)
	}
	return SnapshotInfo{}, skipped, ErrNoSnapshot
}

type snapshotFile struct {
	name     string
	instance uint64
}

// snapshotNames lists committed snapshot files, oldest first.
func snapshotNames(dir string) ([]snapshotFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []snapshotFile
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, snapshotPrefix) || !strings.HasSuffix(name, snapshotSuffix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, snapshotPrefix), snapshotSuffix), 10, 64)
		if err != nil {
			continue
		}
		out = append(out, snapshotFile{name: name, instance: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].instance < out[j].instance })
	return out, nil
}

func snapshotName(instance uint64) string {
	return fmt.Sprintf("%s%020d%s", snapshotPrefix, instance, snapshotSuffix)
}

// SyncDir fsyncs a directory so a rename or a new entry in it is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("storage: fsync directory %s: %w", dir, err)
	}
	return nil
}

// SnapshotFileName is the file name of the snapshot as of instance.
func SnapshotFileName(instance uint64) string { return snapshotName(instance) }
