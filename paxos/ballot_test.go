package paxos

import "testing"

// Every ballot a peer may make a replica see (up to MaxBallot) leaves room
// for a higher one of every node id: no wrap to a small ballot.
func TestNextBallotDoesNotWrapAtMaxBallot(t *testing.T) {
	for _, id := range []uint32{1, 2, BallotStride - 1} {
		for _, above := range []uint64{MaxBallot, MaxBallot - 1, MaxBallot - BallotStride} {
			b := NextBallot(above, id)
			if b <= above || BallotOwner(b) != id {
				t.Fatalf("NextBallot(%d, %d) = %d: not above it, or not node %d's", above, id, b, id)
			}
		}
	}
}
