//go:build linux || darwin || dragonfly || freebsd || illumos || netbsd || openbsd

package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFileName is the file in the data directory that carries the flock.
const lockFileName = "LOCK"

// lockDir takes an exclusive, non-blocking flock on dir/LOCK. Two processes
// appending to one log would interleave records and break every promise the
// log makes, so a second opener is refused with ErrLocked rather than made to
// wait. flock belongs to the open file description, so a second Open in the
// same process is refused too. The kernel drops the lock when the process
// dies, so a crash never leaves the directory locked.
//
// The LOCK file is never removed: unlinking it would let a later opener lock
// a fresh inode while an older holder still holds the old one.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("storage: lock %s: %w", dir, err)
	}
	return f, nil
}

// unlockDir releases the lock taken by lockDir.
func unlockDir(f *os.File) error {
	// Closing the only descriptor of the open file description releases
	// the flock; the explicit unlock just makes the intent plain.
	uerr := syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return errors.Join(uerr, f.Close())
}
