package db

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"
)

func applyPut(t *testing.T, kv *KV, instance uint64, k, v string) {
	t.Helper()
	b, _ := proto.Marshal(Put([]byte(k), []byte(v)))
	if _, err := kv.Apply(instance, b); err != nil {
		t.Fatal(err)
	}
}

func applyDel(t *testing.T, kv *KV, instance uint64, k string) {
	t.Helper()
	b, _ := proto.Marshal(Delete([]byte(k)))
	if _, err := kv.Apply(instance, b); err != nil {
		t.Fatal(err)
	}
}

// §5.5: a snapshot is written while the database goes on applying and
// answering reads; it holds the state as of the moment it began, and
// restoring it gives that state exactly (same hash, instance and epoch).
func TestSnapshotIsPauselessAndExact(t *testing.T) {
	kv := New()
	for i := 1; i <= 1000; i++ {
		applyPut(t, kv, uint64(i), fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
	kv.ObserveEpoch(7)
	atFreeze := kv.Hash()
	instance, write, err := kv.BeginSnapshot()
	if err != nil || instance != 1000 {
		t.Fatalf("begin: %d %v", instance, err)
	}
	if _, _, err := kv.BeginSnapshot(); !errors.Is(err, ErrSnapshotInProgress) {
		t.Fatalf("second snapshot at once: %v", err)
	}
	// The writer is slow (a pipe nobody reads yet); the database goes on.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { err := write(pw); pw.CloseWithError(err); done <- err }()
	applyPut(t, kv, 1001, "k1", "changed")
	applyDel(t, kv, 1002, "k2")
	applyPut(t, kv, 1003, "new", "x")
	if v, ok := kv.Read([]byte("k1")); !ok || string(v) != "changed" {
		t.Fatalf("read during the snapshot: %q %v", v, ok)
	}
	if _, ok := kv.Read([]byte("k2")); ok {
		t.Fatal("a key deleted during the snapshot is still read")
	}
	if kv.Len() != 1000 {
		t.Fatalf("len during the snapshot: %d", kv.Len())
	}
	duringHash := kv.Hash()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, pr); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if kv.Hash() != duringHash {
		t.Fatal("folding the changes back in changed the state")
	}
	if v, _ := kv.Read([]byte("k1")); string(v) != "changed" {
		t.Fatalf("after the snapshot: k1 = %q", v)
	}
	restored := New()
	if err := restored.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if restored.Hash() != atFreeze || restored.LastApplied() != 1000 || restored.Epoch() != 7 {
		t.Fatalf("restored: hash equal %v, applied %d, epoch %d", restored.Hash() == atFreeze, restored.LastApplied(), restored.Epoch())
	}
	// Replaying what came after gives the live state.
	applyPut(t, restored, 1001, "k1", "changed")
	applyDel(t, restored, 1002, "k2")
	applyPut(t, restored, 1003, "new", "x")
	if restored.Hash() != kv.Hash() {
		t.Fatal("snapshot + replay differs from the database that never stopped")
	}
}

func TestRestoreRefusesDamageAndChangesNothing(t *testing.T) {
	kv := New()
	applyPut(t, kv, 1, "a", "1")
	_, write, _ := kv.BeginSnapshot()
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	target := New()
	applyPut(t, target, 1, "keep", "me")
	before := target.Hash()
	for name, b := range map[string][]byte{
		"empty":     nil,
		"truncated": buf.Bytes()[:buf.Len()-2],
		"garbage":   []byte("LPKV0001 not really a snapshot at all"),
	} {
		if err := target.Restore(bytes.NewReader(b)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
		if target.Hash() != before {
			t.Fatalf("%s: a refused restore changed the database", name)
		}
	}
}

// §6.2: a checksum is of the contents when it began, while writes go on.
func TestBeginChecksumPausesNoWrites(t *testing.T) {
	kv := New()
	applyPut(t, kv, 1, "a", "1")
	want := kv.Hash()
	sum := kv.BeginChecksum()
	applyPut(t, kv, 2, "b", "2") // applied while the checksum is computed
	if got := sum(); string(got) != string(want[:]) {
		t.Fatal("the checksum saw a write made after it began")
	}
	if v, ok := kv.get("b"); !ok || v.value != "2" {
		t.Fatal("the write made meanwhile was lost")
	}
}

// A snapshot of the first format (no metadata) still restores: its keys
// take the snapshot's instance as their creation and last change.
func TestRestoreFirstFormat(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(kvSnapshotMagicV1)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], 7)
	b.Write(n[:]) // last applied
	binary.BigEndian.PutUint64(n[:], 2)
	b.Write(n[:])                        // epoch
	b.Write([]byte{1, 'k', 2, 'v', 'v'}) // k = vv
	b.WriteByte(0)
	kv := New()
	if err := kv.Restore(&b); err != nil {
		t.Fatal(err)
	}
	if e, ok := kv.get("k"); !ok || e.value != "vv" || e.create != 7 || e.mod != 7 || e.version != 1 || kv.Len() != 1 {
		t.Fatalf("restored %+v %v", e, ok)
	}
}
