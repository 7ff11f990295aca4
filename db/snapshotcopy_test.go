package db_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/livepaxos/livepaxos/db"
)

// copyBySnapshot snapshots src, restores the snapshot into dst and returns
// dst, or fails the test.
func copyBySnapshot(t *testing.T, src, dst *db.KV) *db.KV {
	t.Helper()
	_, write, err := src.BeginSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	return restoreInto(t, dst, writeSnapshot(t, write))
}

// writeSnapshot runs write (BeginSnapshot's) into a buffer, or fails the
// test.
func writeSnapshot(t *testing.T, write func(io.Writer) error) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// restoreInto restores dst from snapshot and returns it, or fails the test.
func restoreInto(t *testing.T, dst *db.KV, snapshot io.Reader) *db.KV {
	t.Helper()
	if err := dst.Restore(snapshot); err != nil {
		t.Fatal(err)
	}
	return dst
}
