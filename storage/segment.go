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
	"slices"
	"strconv"
	"strings"
)

const (
	// segmentMagic opens every segment and names the format version.
	segmentMagic = "LPWAL001"
	// segmentHeaderSize is the 8-byte magic, the 8-byte sequence number, and
	// a 4-byte CRC-32C of both.
	segmentHeaderSize = 8 + 8 + 4
	// segmentExt marks segment files; other files in the directory are ignored.
	segmentExt = ".wal"
	// segmentNameDigits is the width of the hex sequence number in a segment
	// name, wide enough for any uint64 so that lexical order is numeric order.
	segmentNameDigits = 16
	// replayBufferBytes is the read buffer used while replaying a segment.
	replayBufferBytes = 256 << 10
)

// segmentName is the file name of segment seq.
func segmentName(seq uint64) string {
	return fmt.Sprintf("%0*x%s", segmentNameDigits, seq, segmentExt)
}

// parseSegmentName returns the sequence number encoded in a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(hex) != segmentNameDigits {
		return 0, false
	}
	seq, err := strconv.ParseUint(hex, 16, 64)
	return seq, err == nil
}

// listSegments returns the sequence numbers of the segments in dir, ascending.
// Segments must be consecutive: a gap means a file holding acknowledged
// records has gone missing.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range entries {
		if seq, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			// Checkpoints delete from the oldest up, so the log is always
			// a run of consecutive segments: a hole is lost data.
			return nil, fmt.Errorf("%w: %s: %s (between %s and %s) gone", ErrSegmentMissing, dir,
				segmentSpan(seqs[i-1]+1, seqs[i]-1), segmentName(seqs[i-1]), segmentName(seqs[i]))
		}
	}
	return seqs, nil
}

// segmentHeader encodes the header of segment seq.
func segmentHeader(seq uint64) []byte {
	h := make([]byte, 0, segmentHeaderSize)
	h = append(h, segmentMagic...)
	h = binary.LittleEndian.AppendUint64(h, seq)
	return binary.LittleEndian.AppendUint32(h, crc32c(h))
}

// checkSegmentHeader verifies that h is an intact header for segment seq. The
// sequence number is checked so that a file renamed or copied to the wrong
// place is not replayed out of order.
func checkSegmentHeader(h []byte, seq uint64) error {
	body := h[:segmentHeaderSize-4]
	switch {
	case binary.LittleEndian.Uint32(h[segmentHeaderSize-4:]) != crc32c(body):
		return fmt.Errorf("%w: %s: header checksum mismatch", ErrCorrupt, segmentName(seq))
	case string(body[:len(segmentMagic)]) != segmentMagic:
		return fmt.Errorf("%w: %s: bad magic", ErrCorrupt, segmentName(seq))
	case binary.LittleEndian.Uint64(body[len(segmentMagic):]) != seq:
		return fmt.Errorf("%w: %s: header names segment %d", ErrCorrupt, segmentName(seq),
			binary.LittleEndian.Uint64(body[len(segmentMagic):]))
	}
	return nil
}

// errTornHeader reports a segment whose header is incomplete or unreadable
// and which holds nothing else: what a crash while creating it leaves.
var errTornHeader = errors.New("storage: torn segment header")

// replaySegment reads segment seq from f (positioned at its start, size bytes
// long) and passes every intact record to replay, in order. It returns the
// offset just past the last intact record. If end < size the bytes from end
// on are damaged (torn or corrupt); the caller decides which, because that
// depends on whether this is the last segment.
//
// Each payload passed to replay is a fresh slice that the callee may keep.
func replaySegment(f *os.File, seq uint64, size int64, replay func([]byte) error) (end int64, err error) {
	r := bufio.NewReaderSize(f, replayBufferBytes)
	hdr := make([]byte, segmentHeaderSize)
	if _, err := io.ReadFull(r, hdr); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, errTornHeader
		}
		return 0, err
	}
	if err := checkSegmentHeader(hdr, seq); err != nil {
		if size == segmentHeaderSize {
			// Records are written only after the header is synced, so a
			// file that is nothing but a bad header holds nothing
			// acknowledged: the header write itself was torn.
			return 0, errTornHeader
		}
		if zeros, zerr := zeroFrom(f, 0, size); zerr == nil && zeros {
			// The same, when the preallocation reached the disk and
			// the header did not: the file is all zeros.
			return 0, errTornHeader
		}
		return 0, err
	}
	end = segmentHeaderSize
	var fh [frameHeaderSize]byte
	for end < size {
		if size-end < frameHeaderSize {
			return end, nil
		}
		if _, err := io.ReadFull(r, fh[:]); err != nil {
			return end, err
		}
		n := int64(frameLength(fh[:]))
		if n > size-end-frameHeaderSize {
			return end, nil
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return end, err
		}
		if !frameValid(fh[:], payload) {
			return end, nil
		}
		if replay != nil {
			if err := replay(payload); err != nil {
				return end, err
			}
		}
		end += frameHeaderSize + n
	}
	return end, nil
}

// crc32c is the CRC-32C of b.
func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// segmentPath is the path of segment seq in dir.
func segmentPath(dir string, seq uint64) string { return filepath.Join(dir, segmentName(seq)) }
