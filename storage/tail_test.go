package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A bit flipped in the checksum or the payload of the last record leaves a
// record with every byte on the disk and still wrong: no crash does that,
// so it is refused, whether the file ends after it or preallocated zeros
// follow. (Before, it was cut as if torn, forgetting an acknowledged
// record.)
func TestBitFlipInLastRecordIsRefused(t *testing.T) {
	pristine, all := fixture(t, 40, smallSegments)
	lastName, full, start := lastRecord(t, pristine, all)
	for _, zeros := range []int{0, 4096} {
		for off := start + 4; off < len(full); off++ {
			t.Run(fmt.Sprintf("zeros%d/offset%d", zeros, off), func(t *testing.T) {
				dir := copyDir(t, pristine)
				flipped := slices.Clone(full)
				flipped[off] ^= 1 << (off % 8)
				writeFile(t, filepath.Join(dir, lastName), append(flipped, make([]byte, zeros)...))
				refusedUnchanged(t, dir, ErrCorrupt, lastName, fmt.Sprintf("offset %d", start))
			})
		}
	}
}

// bigLast writes a log whose last record spans several 512-byte sectors
// and returns the directory, the records, the last segment's path and
// bytes (preallocated zeros included), and where its last record starts
// and ends.
func bigLast(t *testing.T) (dir string, all [][]byte, path string, seg []byte, start, end int) {
	t.Helper()
	dir = t.TempDir()
	w, _ := open(t, dir, Options{SegmentBytes: 64 << 10})
	all = recs(0, 5)
	big := make([]byte, 3000)
	for i := range big {
		big[i] = byte(i%251 + 1)
	}
	all = append(all, big)
	for _, r := range all {
		if err := w.AppendSync([][]byte{r}); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, w)
	segs := segmentFiles(t, dir)
	path = segs[len(segs)-1]
	seg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end = dataEnd(seg)
	start = end - frameSize(len(big))
	seg = append(seg[:end], make([]byte, 4096)...) // as if preallocated, whatever the file system did
	return dir, all, path, seg, start, end
}

// What a crash leaves of the last record, parts of it never written and
// read back as zeros, with nothing but zeros after it, is cut; the same
// record with data after the damage, or whole and wrong, is refused.
func TestTornLastRecordIsCutAndNothingElse(t *testing.T) {
	pristine, all, path, seg, start, end := bigLast(t)
	name := filepath.Base(path)
	inner := (start/sectorSize + 2) * sectorSize // a sector wholly inside the record
	if inner+sectorSize > end {
		t.Fatal("the record should cover a whole sector")
	}
	zero := func(b []byte, from, to int) []byte {
		b = slices.Clone(b)
		clear(b[from:to])
		return b
	}
	valid := appendFrame(nil, []byte("a record after the damage"))
	cases := []struct {
		name string
		seg  []byte
		torn bool
	}{
		{"a sector inside it lost", zero(seg, inner, inner+sectorSize), true},
		{"two sectors inside it lost", zero(seg, inner, inner+2*sectorSize), true},
		{"the write stopped at a sector", zero(seg, inner, end), true},
		{"the write stopped at a byte", zero(seg, end-100, end), true},
		{"its last sector's part lost", zero(seg, (end-1)/sectorSize*sectorSize, end), true},
		{"the file ends within it", seg[:end-1], true},
		{"the file ends within its header", seg[:start+5], true},

		{"its first sector lost, the rest written", zero(seg, start, (start/sectorSize+1)*sectorSize), false},
		{"whole, one byte wrong", func() []byte { b := slices.Clone(seg); b[inner+7] ^= 0x20; return b }(), false},
		{"a sector lost, then a valid record",
			append(zero(seg, inner, inner+sectorSize)[:end], append(valid, make([]byte, 512)...)...), false},
		{"a sector lost, then other bytes",
			append(zero(seg, inner, inner+sectorSize)[:end], append([]byte{1, 2, 3}, make([]byte, 512)...)...), false},
		{"the write stopped, then other bytes", func() []byte { b := zero(seg, end-100, end); b[end+10] = 0xff; return b }(), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, pristine)
			writeFile(t, filepath.Join(dir, name), tc.seg)
			if !tc.torn {
				refusedUnchanged(t, dir, ErrCorrupt, name, fmt.Sprintf("offset %d", start))
				return
			}
			w, got := open(t, dir, Options{SegmentBytes: 64 << 10})
			equalRecords(t, got, all[:len(all)-1])
			if err := w.AppendSync([][]byte{[]byte("after")}); err != nil {
				t.Fatal(err)
			}
			mustClose(t, w)
			equalRecords(t, replayAll(t, dir, Options{SegmentBytes: 64 << 10}), append(slices.Clone(all[:len(all)-1]), []byte("after")))
		})
	}
}

// partMissing finds a zero sector part wherever it lies, across the
// chunks it reads.
func TestPartMissingFindsEverySector(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 300*sectorSize+77)
	path := filepath.Join(t.TempDir(), "f")
	for _, tc := range []struct {
		from, to, zeroFrom, zeroTo int
		want                       bool
	}{
		{3, len(data) - 1, 0, 0, false},
		{3, len(data) - 1, 0, 3, false},                                         // zeros outside the range
		{3, len(data) - 1, 3, sectorSize, true},                                 // the first sector's part
		{3, len(data) - 1, 3, sectorSize - 1, false},                            // not all of it
		{3, len(data) - 1, 200 * sectorSize, 201 * sectorSize, true},            // past the first chunk
		{3, len(data) - 1, 128 * sectorSize, 129 * sectorSize, true},            // a chunk's first sector
		{3, len(data) - 1, 127 * sectorSize, 128*sectorSize - 1, false},         // nearly
		{3, 300*sectorSize + 50, 300 * sectorSize, 300*sectorSize + 50, true},   // the last sector's part
		{3, 300*sectorSize + 50, 300*sectorSize + 1, 300*sectorSize + 50, true}, // ends in zero
	} {
		b := slices.Clone(data)
		clear(b[tc.zeroFrom:tc.zeroTo])
		writeFile(t, path, b)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := partMissing(f, int64(tc.from), int64(tc.to))
		f.Close()
		if err != nil || got != tc.want {
			t.Errorf("%+v: %v (%v), want %v", tc, got, err, tc.want)
		}
	}
}
