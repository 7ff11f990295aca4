package storage

import (
	"os"
	"syscall"
)

// datasync makes the data written to f durable. fdatasync skips flushing
// metadata such as mtime that is not needed to read the data back, but does
// flush the file size, which is what appends change.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

// preallocate reserves size bytes for f (zero-filled, the file's size grows to
// them), so that later appends overwrite allocated space: fdatasync then has
// no file-size change to commit, which measured ~30% faster here (126 µs
// against 179 µs p50 on ext4). etcd preallocates its WAL for the same reason.
func preallocate(f *os.File, size int64) error {
	for {
		err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
		if err != syscall.EINTR {
			if err == syscall.EOPNOTSUPP || err == syscall.ENOSPC {
				// Not every filesystem can; and a nearly full disk may
				// still take the records themselves (the node refuses
				// writes well before that: actors.Config.MinFreeBytes).
				// Appending works without it.
				return nil
			}
			return err
		}
	}
}

// writeOut writes the dirty pages of f in [off, off+n) to the device and
// waits for them (sync_file_range), without the journal commit an fsync of a
// growing file costs. A snapshot writes each chunk out this way so that it
// never builds up a large dirty backlog for the kernel to flush at once,
// stalling the log's small fsyncs behind it ("Paxos Made Live" §5.5); its
// one fdatasync at the end makes it durable.
func writeOut(f *os.File, off, n int64) error {
	const flags = 0x1 | 0x2 | 0x4 // SYNC_FILE_RANGE_WAIT_BEFORE | WRITE | WAIT_AFTER
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, f.Fd(), uintptr(off), uintptr(n), flags, 0, 0)
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		case syscall.ENOSYS, syscall.EINVAL:
			return datasync(f)
		}
		return errno
	}
}
