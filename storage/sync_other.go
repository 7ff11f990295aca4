//go:build !linux

package storage

import "os"

// datasync makes the data written to f durable.
func datasync(f *os.File) error { return f.Sync() }

// preallocate is a no-op where fallocate is not available.
func preallocate(*os.File, int64) error { return nil }

// writeOut makes the data written to f durable (no sync_file_range here).
func writeOut(f *os.File, _, _ int64) error { return datasync(f) }
