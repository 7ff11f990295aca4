package actors_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
	"github.com/livepaxos/livepaxos/storage"
)

// The largest instances the proposer can build, at the node's limits, with
// every Command field at its widest, fit EntryRecordBound, and that fits a
// WAL record: a legal write never fails on the fsync path.
func TestWALRecordHoldsTheLargestLegalInstance(t *testing.T) {
	p := paxos.ProposerConfig{}.WithDefaults()
	maxCommand := db.MaxCommandBytes
	bound := actors.EntryRecordBound(p, maxCommand)
	if bound > storage.DefaultMaxRecordBytes {
		t.Fatalf("an instance may take %d bytes, the WAL's record limit is %d", bound, storage.DefaultMaxRecordBytes)
	}
	command := func(payload int) *messages.Command {
		return &messages.Command{Origin: math.MaxUint32, ReplyAddress: strings.Repeat("a", actors.MaxReplyAddressBytes),
			ReplyId: strings.Repeat("i", actors.MaxReplyIdBytes), RequestId: math.MaxUint64, Payload: make([]byte, payload),
			Epoch: math.MaxUint64, Membership: true, ProposedMs: -1}
	}
	full := make([]*messages.Command, p.MaxBatchCommands) // a full batch of commands within MaxBatchBytes
	for i := range full {
		full[i] = command(p.MaxBatchBytes / p.MaxBatchCommands)
	}
	for name, cmds := range map[string][]*messages.Command{
		"a full batch":        full,
		"one command at most": {command(maxCommand)},
	} {
		rec := &messages.Record{Kind: &messages.Record_Accept{Accept: &messages.Entry{Instance: math.MaxUint64, Ballot: math.MaxUint64,
			Value: &messages.Value{Commands: cmds, StartsEpoch: true, EpochMaster: math.MaxUint32, Checksum: true}}}}
		b, err := proto.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > bound {
			t.Errorf("%s: a record of %d bytes, over the bound %d", name, len(b), bound)
		}
	}
}

// A replica whose commands could make an instance larger than a WAL record
// does not start.
func TestReplicaRefusesCommandsLargerThanARecordHolds(t *testing.T) {
	_, err := actors.NewReplica(actors.Config{NodeID: 1, Peers: map[uint32]string{1: "127.0.0.1:1"}, DataDir: t.TempDir(),
		StateMachine: db.New(), MaxCommandBytes: storage.DefaultMaxRecordBytes})
	if !errors.Is(err, actors.ErrConfig) || !strings.Contains(err.Error(), "record limit") {
		t.Fatalf("NewReplica = %v, want refused: over the WAL's record limit", err)
	}
}
