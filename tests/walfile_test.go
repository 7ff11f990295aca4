package tests

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// The on-disk format of storage's segments (see storage/doc.go), repeated
// here because the tests damage files from outside, as a disk would:
// a 20-byte header (magic, sequence number, CRC), then records framed as
// length uint32 LE, CRC-32C (of length and payload) uint32 LE, payload,
// then zeros up to the preallocated size.
const (
	walSegmentHeaderBytes = 8 + 8 + 4
	walFrameHeaderBytes   = 8
)

// walFrame is one record of a segment: where its frame starts and how long
// its payload is.
type walFrame struct {
	offset  int64
	payload int64
}

func (f walFrame) end() int64 { return f.offset + walFrameHeaderBytes + f.payload }

// lastSegment returns the path of the newest *.wal file in dir. Segment
// names are zero-padded hex, so lexical order is log order.
func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no WAL segment in %s (err %v)", dir, err)
	}
	sort.Strings(segs)
	return segs[len(segs)-1]
}

// walFrames parses the intact frames of a segment. Segments are
// preallocated (zero-filled up to their full size), so the records end at
// the first frame whose checksum fails, and everything after it must be
// zeros: the tests only parse logs that a clean shutdown wrote.
func walFrames(t *testing.T, path string) []walFrame {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var frames []walFrame
	off := int64(walSegmentHeaderBytes)
	for off+walFrameHeaderBytes <= int64(len(b)) {
		n := int64(binary.LittleEndian.Uint32(b[off:]))
		f := walFrame{offset: off, payload: n}
		if f.end() > int64(len(b)) {
			break
		}
		sum := crc32.Update(crc32.Checksum(b[off:off+4], castagnoli), castagnoli, b[off+walFrameHeaderBytes:f.end()])
		if sum != binary.LittleEndian.Uint32(b[off+4:]) {
			break
		}
		frames = append(frames, f)
		off = f.end()
	}
	if len(frames) == 0 {
		t.Fatalf("%s holds no records", path)
	}
	for i, c := range b[off:] {
		if c != 0 {
			t.Fatalf("%s: non-zero byte at %d, after the last intact record (which ends at %d)", path, off+int64(i), off)
		}
	}
	return frames
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zeroRange overwrites [from, to) of a file with zeros, keeping its size:
// what a torn write into preallocated space leaves.
func zeroRange(t *testing.T, path string, from, to int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, to-from), from); err != nil {
		t.Fatal(err)
	}
}

// flipByte inverts the bits of the byte at off.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}
