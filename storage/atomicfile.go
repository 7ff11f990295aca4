package storage

import (
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces the file at path with b, durably: b is written
// to path.tmp and synced, path.tmp is renamed over path, and path's
// directory is synced. A crash at any point leaves either the old file or
// the new one whole at path, never a torn one.
func WriteFileAtomic(path string, b []byte) error {
	return fileSteps{
		write: func(f *os.File, b []byte) error { _, err := f.Write(b); return err },
		sync:  (*os.File).Sync,
		dir:   SyncDir,
	}.replace(path, b)
}

// fileSteps are the writes and syncs WriteFileAtomic is made of, so that
// the WAL can run the same sequence through its own (which count fsyncs,
// use fdatasync, and let tests inject failures).
type fileSteps struct {
	write func(f *os.File, b []byte) error
	sync  func(f *os.File) error
	dir   func(dir string) error
}

// replace is WriteFileAtomic with s's writes and syncs.
func (s fileSteps) replace(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := s.write(f, b); err != nil {
		f.Close()
		return err
	}
	if err := s.sync(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return s.dir(filepath.Dir(path))
}
