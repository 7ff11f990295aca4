package paxos

import (
	"slices"
	"testing"
)

// §6.2: the replicas' checksums at one instance are compared; the one
// that differs from a majority is told so (and stops), the others learn
// which peer diverged.
func TestPaper6_2_ChecksumTallyFindsTheDivergedReplica(t *testing.T) {
	good, bad := []byte("aaaa"), []byte("bbbb")
	// Replica 3's view: its own checksum is the odd one out.
	t3 := NewChecksumTally(3, 3, 4)
	if v := t3.Record(10, 3, bad); v.Agreed || v.SelfDiverged {
		t.Fatalf("a verdict from one checksum: %+v", v)
	}
	if v := t3.Record(10, 1, good); v.SelfDiverged {
		t.Fatalf("a verdict from two disagreeing checksums: %+v", v)
	}
	v := t3.Record(10, 2, good)
	if !v.SelfDiverged || v.Agreed {
		t.Fatalf("replica 3 with two peers agreeing against it: %+v", v)
	}
	// Replica 1's view: it agrees with 2, and 3 diverged.
	t1 := NewChecksumTally(1, 3, 4)
	t1.Record(10, 1, good)
	if v := t1.Record(10, 2, good); !v.Agreed || len(v.Diverged) != 0 {
		t.Fatalf("replica 1 with 2 agreeing: %+v", v)
	}
	if v := t1.Record(10, 3, bad); !slices.Equal(v.Diverged, []uint32{3}) || v.Agreed || v.SelfDiverged {
		t.Fatalf("replica 1 on 3's report: %+v", v)
	}
	if v := t1.Record(10, 3, bad); len(v.Diverged) != 0 {
		t.Fatalf("a duplicate report flagged again: %+v", v)
	}
	// Only the last few instances are kept.
	for i := uint64(11); i < 20; i++ {
		t1.Record(i, 1, good)
	}
	if len(t1.checks) != 4 {
		t.Fatalf("%d instances kept, want 4", len(t1.checks))
	}
	if v := t1.Record(2, 2, good); v.Instance != 0 {
		t.Fatalf("a report for a long-gone instance: %+v", v)
	}
}
