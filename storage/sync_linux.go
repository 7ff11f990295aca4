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
