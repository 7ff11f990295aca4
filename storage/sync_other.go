//go:build !linux

package storage

import "os"

// datasync makes the data written to f durable.
func datasync(f *os.File) error { return f.Sync() }

// preallocate is a no-op where fallocate is not available.
func preallocate(*os.File, int64) error { return nil }
