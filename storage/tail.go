package storage

import (
	"fmt"
	"os"
)

// Telling a torn tail from corruption.
//
// Recovery cuts a torn tail and refuses anything else, so it must know
// what a crash can leave. The write path is: a segment is preallocated
// (its unwritten space reads as zeros), records are appended in place
// with write(2), and an fdatasync makes a round durable before anyone
// hears of it; a segment is synced before the log rolls past it. So a
// crash can damage only what was written after the last completed sync,
// at the tail of the last segment, and only in one way: parts of that
// write never reach the disk and read back as the zeros that were there
// before. The disk writes whole 512-byte sectors atomically (the smallest
// sector there is; larger ones are multiples of it), and the kernel
// writes out whole pages of them, so a part that is missing is a run of
// whole sectors, or the rest of the write after the point where it
// stopped. Nothing a crash does writes a byte that was not in the write.
//
// Hence, for the first damaged record in the last segment (at end):
//
//   - fewer bytes than a record header before the end of the file, or a
//     length that runs past the end of the file: the write stopped part
//     way (the file's size is where the written data ends when the
//     segment was not preallocated, or the record was larger than the
//     space left). Torn.
//   - a complete record whose checksum fails, followed by anything but
//     zeros: data after the damage reached the disk, so the damage is not
//     the end of a write that stopped. Refused. (A crash could in fact
//     leave this, were the kernel to write a later page of an unsynced
//     write out before an earlier one; but a lost or zeroed sector of
//     acknowledged data looks the same, and refusing costs a rebuild
//     while cutting could forget a promise.)
//   - a complete record whose checksum fails, followed by nothing or
//     zeros, and with a part missing as a crash leaves it (one of its
//     512-byte sectors, or the part of one it covers, reads all zero, or
//     it ends in a zero byte: the write stopped within it): torn. Damage
//     of the acknowledged last record could look the same only if that
//     record happened to hold such zeros itself; that case is cut.
//   - the same with no part of it zero: every byte of it reached the disk
//     and it is still wrong, which no crash does. Refused.

// sectorSize is the unit a disk writes atomically, the smallest there is.
const sectorSize = 512

// tornTail decides whether the damage found at end in the last segment,
// size bytes long, is a torn tail to cut; if not, why it is corruption.
// It is called only when something other than zeros follows end.
func tornTail(f *os.File, end, size int64) (torn bool, why string, err error) {
	if size-end < frameHeaderSize {
		return true, "", nil
	}
	var hdr [frameHeaderSize]byte
	if _, err := f.ReadAt(hdr[:], end); err != nil {
		return false, "", err
	}
	frameEnd := end + frameHeaderSize + int64(frameLength(hdr[:]))
	if frameEnd > size {
		return true, "", nil
	}
	zeros, err := zeroFrom(f, frameEnd, size)
	if err != nil {
		return false, "", err
	}
	if !zeros {
		return false, fmt.Sprintf("damaged record at offset %d followed by further data (from offset %d on)", end, frameEnd), nil
	}
	missing, err := partMissing(f, end, frameEnd)
	if err != nil {
		return false, "", err
	}
	if !missing {
		return false, fmt.Sprintf("record at offset %d (the last) fails its checksum with none of it missing, which a crash does not leave", end), nil
	}
	return true, "", nil
}

// partMissing reports whether the bytes [from, to) of f show a part of a
// write missing: they end in a zero byte, or the part of some 512-byte
// sector of the file that they cover is all zeros.
func partMissing(f *os.File, from, to int64) (bool, error) {
	buf := make([]byte, 128*sectorSize)
	if _, err := f.ReadAt(buf[:1], to-1); err != nil {
		return false, err
	}
	if buf[0] == 0 {
		return true, nil
	}
	for off := from - from%sectorSize; off < to; off += int64(len(buf)) {
		lo, hi := max(off, from), min(off+int64(len(buf)), to)
		p := buf[:hi-lo]
		if _, err := f.ReadAt(p, lo); err != nil {
			return false, err
		}
		// p starts at lo; its sectors start at the multiples of
		// sectorSize, the first of them possibly cut by from.
		for s := lo; s < hi; {
			e := min(s-s%sectorSize+sectorSize, hi)
			if allZero(p[s-lo : e-lo]) {
				return true, nil
			}
			s = e
		}
	}
	return false, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
