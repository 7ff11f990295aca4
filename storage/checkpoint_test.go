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
	dir, w, gate := openHeldRound(t)
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

// A checkpoint after a Mark keeps what was appended since the mark: it
// goes after those records and deletes only the segments before the mark,
// so a replay gives the records after the mark, then the checkpoint's. A
// second checkpoint, with no mark of its own, keeps nothing older again.
func TestCheckpointAfterAMarkKeepsWhatFollowedTheMark(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, smallSegments)
	if err := w.AppendSync(recs(0, 200)); err != nil {
		t.Fatal(err)
	}
	w.Mark()
	if err := w.AppendSync(recs(300, 310)); err != nil {
		t.Fatal(err)
	}
	checkpoint := func(recs [][]byte) {
		t.Helper()
		done := make(chan error, 1)
		w.Checkpoint(recs, func(err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	checkpoint(recs(1000, 1003))
	if err := w.AppendSync(recs(2000, 2002)); err != nil {
		t.Fatal(err)
	}
	want := append(append(recs(300, 310), recs(1000, 1003)...), recs(2000, 2002)...)
	mustClose(t, w)
	equalRecords(t, replayAll(t, dir, smallSegments), want)

	w, _ = open(t, dir, smallSegments)
	checkpoint(recs(4000, 4002))
	mustClose(t, w)
	equalRecords(t, replayAll(t, dir, smallSegments), recs(4000, 4002))
}

// Marks and a checkpoint within one round act in their order: records
// before the last mark before the checkpoint go, the ones after it stay,
// and a mark after the checkpoint is kept for the next one.
func TestMarksWithinOneRound(t *testing.T) {
	dir, w, gate := openHeldRound(t)
	w.Append(recs(2, 4), nil)
	w.Mark()
	w.Append(recs(4, 6), nil)
	w.Mark()
	w.Append(recs(6, 8), nil)
	w.Checkpoint(recs(100, 102), nil)
	w.Append(recs(200, 202), nil)
	w.Mark()
	w.Append(recs(300, 302), nil)
	done := make(chan error, 1)
	w.Checkpoint(recs(400, 401), func(err error) { done <- err })
	close(gate.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	equalRecords(t, replayAll(t, dir, smallSegments), append(recs(300, 302), recs(400, 401)...))
}

// openHeldRound opens a log whose first round, records 0 and 1, is held at
// its fsync until gate.release is closed: what is appended meanwhile goes
// in the next round together.
func openHeldRound(t *testing.T) (string, *WAL, *gate) {
	t.Helper()
	dir := t.TempDir()
	g := newGate()
	opts := smallSegments
	opts.syncFn = g.sync
	w, _ := open(t, dir, opts)
	g.armed.Store(true)
	w.Append(recs(0, 2), nil)
	<-g.entered
	return dir, w, g
}
