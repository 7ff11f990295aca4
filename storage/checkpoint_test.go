package storage

import (
	"os"
	"testing"
)

// A checkpoint starts a new segment, deletes the older ones once durable,
// and a replay then starts at it: the log's disk use is bounded by what
// comes after the newest checkpoint.
func TestCheckpointDeletesOlderSegments(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, smallSegments)
	if err := w.AppendSync(recs(0, 200)); err != nil {
		t.Fatal(err)
	}
	before := len(segmentFiles(t, dir))
	if before < 3 {
		t.Fatalf("%d segments before the checkpoint, want several", before)
	}
	done := make(chan error, 1)
	w.Checkpoint(recs(1000, 1003), func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := w.AppendSync(recs(2000, 2005)); err != nil {
		t.Fatal(err)
	}
	if got := len(segmentFiles(t, dir)); got != 1 {
		t.Errorf("%d segments after the checkpoint, want 1", got)
	}
	if st := w.Stats(); st.Segments != 1 {
		t.Errorf("Stats.Segments = %d, want 1", st.Segments)
	}
	mustClose(t, w)
	equalRecords(t, replayAll(t, dir, smallSegments), append(recs(1000, 1003), recs(2000, 2005)...))
}

// Records appended before a checkpoint in the same round are written (and
// then deleted with their segment); records after it in the round survive.
func TestCheckpointWithinOneRound(t *testing.T) {
	dir := t.TempDir()
	gate := newGate()
	opts := smallSegments
	opts.syncFn = gate.sync
	w, _ := open(t, dir, opts)
	gate.armed.Store(true)
	w.Append(recs(0, 2), nil) // held at its fsync by the gate
	<-gate.entered
	w.Append(recs(2, 4), nil)
	w.Checkpoint(recs(100, 102), nil)
	done := make(chan error, 1)
	w.Append(recs(200, 202), func(err error) { done <- err })
	close(gate.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	equalRecords(t, replayAll(t, dir, smallSegments), append(recs(100, 102), recs(200, 202)...))
}

// A hole in the run of segments is lost data, not a torn tail: the log
// refuses to open.
func TestMissingMiddleSegmentIsCorrupt(t *testing.T) {
	dir, _ := fixture(t, 300, smallSegments)
	segs := segmentFiles(t, dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	if err := os.Remove(segs[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, smallSegments, func([]byte) error { return nil }); err == nil {
		t.Fatal("opened a log with a missing segment")
	}
}
