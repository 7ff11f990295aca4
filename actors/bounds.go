package actors

import (
	"fmt"

	"github.com/livepaxos/livepaxos/paxos"
)

// How big one instance can get, and why a legal write never fails on the
// fsync path (issue 15, item 5).
//
// A chosen instance is one WAL record (an accepted or learned Entry), and
// a record over the log's MaxRecordBytes is refused by the WAL, which
// stops the node: so the largest instance the proposer can build must fit,
// and that is checked when a replica starts (CheckBounds), not found out
// under load. The proposer batches commands while their payloads stay
// within MaxBatchBytes, except that a first command is always taken alone
// (paxos/pipeline.go), at most MaxBatchCommands of them; a payload is at
// most MaxCommandBytes (checkCommand); what the Command adds around its
// payload is bounded because the shell refuses reply addresses and ids
// longer than below.

// MaxReplyAddressBytes and MaxReplyIdBytes bound a client's return
// address (its PID's address and id) that a command carries in the log.
const (
	MaxReplyAddressBytes = 256
	MaxReplyIdBytes      = 256
)

// commandFramingBytes bounds what one Command adds to a Value beyond its
// payload: its tag and length in the Value, the varint and fixed fields
// at their widest, the reply address and id at their limits.
const commandFramingBytes = 64 + MaxReplyAddressBytes + MaxReplyIdBytes

// entryFramingBytes bounds a Record's and Entry's own fields around the
// Value (oneof tag and length, instance, ballot, the Value's flags).
const entryFramingBytes = 64

// EntryRecordBound is the most bytes one instance's WAL record takes with
// the proposer's batch bounds p (defaults filled in) and commands of at
// most maxCommandBytes.
func EntryRecordBound(p paxos.ProposerConfig, maxCommandBytes int) int {
	p = p.WithDefaults()
	return max(p.MaxBatchBytes, maxCommandBytes) + p.MaxBatchCommands*commandFramingBytes + entryFramingBytes
}

// CheckBounds refuses a configuration in which a legal batch could be
// larger than a WAL record may be (maxRecordBytes).
func CheckBounds(p paxos.ProposerConfig, maxCommandBytes, maxRecordBytes int) error {
	if b := EntryRecordBound(p, maxCommandBytes); b > maxRecordBytes {
		return fmt.Errorf("%w: an instance may take %d bytes (commands up to %d bytes, batches of %d bytes and %d commands), over the WAL's record limit %d",
			ErrConfig, b, maxCommandBytes, p.WithDefaults().MaxBatchBytes, p.WithDefaults().MaxBatchCommands, maxRecordBytes)
	}
	return nil
}
