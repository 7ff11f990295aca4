package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The range file: how the log knows which segments must be there.
//
// The segment files alone cannot tell a log that ends at segment 7 from a
// log whose segment 8 was lost, nor a log that was checkpointed up to
// segment 3 from one whose segments 3 and 4 were lost: either way the
// segments left are consecutive and intact. So the log keeps, beside them,
// a small file naming its range: the oldest segment a replay needs (the
// one the last checkpoint began; the segments before it are superseded)
// and the newest segment created. Recovery refuses with ErrSegmentMissing
// when a segment in that range is gone.
//
// The file is replaced atomically (a temporary file, fsynced, renamed,
// and the directory fsynced) at two moments, and the order is what makes
// it crash-safe:
//
//   - after a new segment's header and directory entry are durable, and
//     before any record is written to it: so every segment the file names
//     exists, and a segment above the range holds nothing (a crash came
//     between its creation and the file's update; it is taken as it is);
//   - after a checkpoint's records are durable, and before the segments
//     it supersedes are deleted: so a crash part way through the deletions
//     leaves only superseded segments below the range, which replay as
//     before.
//
// This is one more fsync of a small file and of the directory per 64 MiB
// segment, and per checkpoint.
//
// A directory without the file was made before it (or holds no log yet):
// its segments are taken as they are, as they always were, and the file is
// written. The file's own loss cannot be told from that by the log alone;
// the data directory's format can (actors.DataFormat 2 on always has the
// file once a segment exists): with Options.RangeRequired, a directory
// that holds a segment but no range file is refused with ErrRangeMissing.
// The one exception is the moment between the first segment's creation
// and the file's first write: a directory whose only segment is segment 1,
// holding no record, is taken as it is. A build before the file, run on a directory after it, rolls and
// checkpoints without updating it; that shows as a segment above the
// recorded range that holds records, which this build never writes (see
// above), and the stale file is then replaced by what the directory holds
// rather than taken for lost segments. (Only if that older build's first
// write after our last was a checkpoint into a segment we had created but
// not yet written to would the file then wrongly report the segments the
// checkpoint deleted as lost.)
const rangeFileName = "LOGRANGE"

// rangeMagic opens the range file and names its format.
const rangeMagic = "LPWALR01"

// rangeFileSize is the magic, first and last (uint64 little-endian each),
// and a CRC-32C of all three.
const rangeFileSize = 8 + 8 + 8 + 4

// ErrSegmentMissing reports a segment the log must hold but does not: one
// in the middle, the oldest or the newest that the range file names, or
// all of them. Data that may have been acknowledged is gone, so it wraps
// ErrCorrupt: the replica must be rebuilt (--on-corruption).
var ErrSegmentMissing = fmt.Errorf("%w: segment missing", ErrCorrupt)

// ErrRangeMissing reports that the range file is gone from a log that
// must have one (Options.RangeRequired): which segments the log must hold
// can no longer be checked, so lost ones would go unnoticed. It wraps
// ErrCorrupt: the replica must be rebuilt (--on-corruption).
var ErrRangeMissing = fmt.Errorf("%w: %s missing", ErrCorrupt, rangeFileName)

// logRange is the first and last segment the log must hold. The zero
// value is "not recorded".
type logRange struct{ first, last uint64 }

func (r logRange) recorded() bool { return r.first != 0 }

func encodeRange(r logRange) []byte {
	b := make([]byte, 0, rangeFileSize)
	b = append(b, rangeMagic...)
	b = binary.LittleEndian.AppendUint64(b, r.first)
	b = binary.LittleEndian.AppendUint64(b, r.last)
	return binary.LittleEndian.AppendUint32(b, crc32c(b))
}

// readRange reads dir's range file; the zero logRange if there is none. A
// file that does not decode is ErrCorrupt: it is only ever replaced by a
// rename, so no crash leaves it half written.
func readRange(dir string) (logRange, error) {
	path := filepath.Join(dir, rangeFileName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return logRange{}, nil
	}
	if err != nil {
		return logRange{}, err
	}
	defer f.Close()
	// One byte more than the file should hold tells an overlong file
	// without reading all of it.
	b := make([]byte, rangeFileSize+1)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return logRange{}, err
	}
	b = b[:n]
	bad := func(why string) (logRange, error) {
		return logRange{}, fmt.Errorf("%w: %s: %s", ErrCorrupt, rangeFileName, why)
	}
	switch {
	case n != rangeFileSize:
		return bad(fmt.Sprintf("%d bytes, want %d", n, rangeFileSize))
	case binary.LittleEndian.Uint32(b[rangeFileSize-4:]) != crc32c(b[:rangeFileSize-4]):
		return bad("checksum mismatch")
	case string(b[:len(rangeMagic)]) != rangeMagic:
		return bad("bad magic")
	}
	r := logRange{first: binary.LittleEndian.Uint64(b[8:]), last: binary.LittleEndian.Uint64(b[16:])}
	if r.first == 0 || r.first > r.last {
		return bad(fmt.Sprintf("names segments %d to %d", r.first, r.last))
	}
	return r, nil
}

// writeRange replaces dir's range file with r, durably (see rangeFileName
// for when, and why in that order).
func (w *WAL) writeRange(r logRange) error {
	steps := fileSteps{write: w.writeFile, sync: w.syncFile, dir: w.syncDir}
	if err := steps.replace(filepath.Join(w.dir, rangeFileName), encodeRange(r)); err != nil {
		return err
	}
	w.rng, w.first = r, r.first
	return nil
}

// setRange records that the log runs from segment first to segment last,
// if the range file does not say so already.
func (w *WAL) setRange(first, last uint64) error {
	if w.rng == (logRange{first, last}) {
		return nil
	}
	return w.writeRange(logRange{first, last})
}

// checkRange compares the segments in the directory (seqs, ascending and
// consecutive) with the range file, before recovery changes anything. It
// returns the range the log is to keep: the recorded one, or, for a
// directory without one (or with a stale one, see rangeFileName), the
// segments present.
func (w *WAL) checkRange(seqs []uint64) (logRange, error) {
	rng, err := readRange(w.dir)
	if err != nil {
		return logRange{}, err
	}
	w.rng = rng
	stale := false
	if rng.recorded() && len(seqs) > 0 && seqs[len(seqs)-1] > rng.last {
		if stale, err = w.holdsRecords(seqs, rng.last); err != nil {
			return logRange{}, err
		}
		if stale {
			rng = logRange{}
		}
	}
	if !rng.recorded() {
		if len(seqs) == 0 {
			return logRange{}, nil
		}
		if w.opts.RangeRequired && !stale {
			if err := w.rangeMayBeMissing(seqs); err != nil {
				return logRange{}, err
			}
		}
		return logRange{seqs[0], seqs[len(seqs)-1]}, nil
	}
	missing := func(from, to uint64, which string) (logRange, error) {
		return logRange{}, fmt.Errorf("%w: %s: %s (%s) gone; %s says the log runs from %s to %s",
			ErrSegmentMissing, w.dir, segmentSpan(from, to), which, rangeFileName, segmentName(rng.first), segmentName(rng.last))
	}
	switch {
	case len(seqs) == 0:
		return missing(rng.first, rng.last, "every segment")
	case seqs[len(seqs)-1] < rng.first:
		return missing(rng.first, rng.last, "every segment since the last checkpoint")
	case seqs[0] > rng.first:
		return missing(rng.first, seqs[0]-1, "the oldest")
	case seqs[len(seqs)-1] < rng.last:
		return missing(seqs[len(seqs)-1]+1, rng.last, "the newest")
	}
	return rng, nil
}

// rangeMayBeMissing refuses, with ErrRangeMissing, a log that must have a
// range file (Options.RangeRequired) and has none, unless a crash came
// between the log's first segment and the file's first write: segment 1
// alone, holding no record. (Segment 1 holds records before any later
// segment exists, and a checkpoint deletes it only after naming the range,
// so nothing else looks like that.)
func (w *WAL) rangeMayBeMissing(seqs []uint64) error {
	if len(seqs) == 1 && seqs[0] == 1 {
		holds, err := w.holdsRecords(seqs, 0)
		if err != nil || !holds {
			return err
		}
	}
	return fmt.Errorf("%w: %s holds %s but no %s, which its data format always has once a segment exists: "+
		"whether segments are missing cannot be checked", ErrRangeMissing, w.dir, segmentSpan(seqs[0], seqs[len(seqs)-1]), rangeFileName)
}

// holdsRecords reports whether any of the segments seqs above last holds
// a record (or anything but zeros where its first record would be).
func (w *WAL) holdsRecords(seqs []uint64, last uint64) (bool, error) {
	for _, seq := range seqs {
		if seq <= last {
			continue
		}
		f, err := os.Open(segmentPath(w.dir, seq))
		if err != nil {
			return false, err
		}
		var fh [frameHeaderSize]byte
		n, err := f.ReadAt(fh[:], segmentHeaderSize)
		f.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return false, err
		}
		if fh != [frameHeaderSize]byte{} && n > 0 {
			return true, nil
		}
	}
	return false, nil
}

// segmentSpan names segments from to to, for an error.
func segmentSpan(from, to uint64) string {
	if to > from {
		return fmt.Sprintf("segments %s to %s", segmentName(from), segmentName(to))
	}
	return "segment " + segmentName(from)
}
