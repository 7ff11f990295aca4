package paxos

import "math"

// BallotStride is the n of the paper's ballot rule "s mod n == id": node ids
// are below it, so every ballot names exactly one owner. Using the whole id
// space rather than the group size keeps ballots unique when membership
// changes.
const BallotStride = 1 << 16

// MaxBallot is the highest ballot a replica takes from a peer (core's
// admission checks): for every ballot up to it, NextBallot finds a higher
// one for every node id without wrapping around, so no peer can push a
// group to where it could never elect again.
const MaxBallot = math.MaxUint64 - 2*BallotStride

// NextBallot returns the smallest ballot greater than above that node id
// owns.
func NextBallot(above uint64, id uint32) uint64 {
	b := (above/BallotStride)*BallotStride + uint64(id)
	if b <= above {
		b += BallotStride
	}
	return b
}

// BallotOwner returns the node id that owns ballot b (0 for the zero ballot).
func BallotOwner(b uint64) uint32 { return uint32(b % BallotStride) }

// orDefault sets *v to def if it is zero: the configs' defaults.
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
