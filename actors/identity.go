package actors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/storage"
)

// identityFile binds a data directory to one node of one cluster. It is
// checked before the log is opened, so a node started on another node's
// directory changes nothing there, not even a torn tail.
const identityFile = "IDENTITY"

// ErrCorruptIdentity: the identity file fails its checksum.
var ErrCorruptIdentity = errors.New("actors: identity file corrupt")

// DataFormat is the format of the data directories this binary writes,
// and the newest it reads: every format from 1 to it opens (0, in
// directories made before the format was recorded, is format 1). A
// directory of a newer format is refused (ErrDataFormat), never
// half-read. The formats:
//
//   - 1: IDENTITY, the log's segments, snapshots/; the log's range file
//     (LOGRANGE) may be missing (directories made before it).
//   - 2: as 1, and LOGRANGE is always there once the log has a segment, so
//     its loss is refused (storage.ErrRangeMissing) instead of taken for
//     a directory made before it, which would hide lost segments.
//
// A directory of format 1 opens as it always did and is then upgraded in
// place (see upgradeFormat). tests/testdata/datadir-v1 and datadir-v2 are
// directories of each format that every later build must open, keys and
// all.
const DataFormat = 2

// rangeFormat is the first format whose directories always have the
// log's range file.
const rangeFormat = 2

// formatOf is the format meta records (0, written before formats were,
// is 1).
func formatOf(meta *messages.MetaRecord) uint32 { return max(meta.Format, 1) }

// ErrDataFormat refuses a data directory of a format this binary does not
// know.
var ErrDataFormat = errors.New("actors: unsupported data directory format")

// ErrLogMissing: the identity file says the node has voted, but its log
// segments are gone (the log's range file with them, or the log itself
// would have refused with storage.ErrSegmentMissing): starting on an
// empty log would forget its promises. It wraps storage.ErrSegmentMissing
// and so storage.ErrCorrupt, so --on-corruption rebuild moves the
// directory aside and rejoins as a new incarnation (§5.1).
var ErrLogMissing = fmt.Errorf("%w: every log segment", storage.ErrSegmentMissing)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// checkIdentity verifies dir's identity file, or, for a directory with no
// log yet, creates it (atomically: a temporary file, synced, renamed, and
// the directory synced) with a new random incarnation (§5.1). It returns
// the directory's incarnation (0 for a directory made before incarnations)
// and whether it is still fresh (see paxos.Acceptor.SetIncarnation), in
// the record it returns.
func checkIdentity(dir, clusterID string, nodeID uint32, rebuilt bool) (*messages.MetaRecord, error) {
	path := filepath.Join(dir, identityFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		meta, err := decodeIdentity(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorruptIdentity, path, err)
		}
		if meta.ClusterId != clusterID || meta.NodeId != nodeID {
			return nil, fmt.Errorf("%w: %s belongs to node %d of cluster %q, not node %d of cluster %q",
				ErrForeignData, dir, meta.NodeId, meta.ClusterId, nodeID, clusterID)
		}
		if meta.Format > DataFormat {
			return nil, fmt.Errorf("%w: %s is format %d; this binary reads formats 1 to %d (use a newer livepaxos)",
				ErrDataFormat, dir, meta.Format, DataFormat)
		}
		if logs, _ := filepath.Glob(filepath.Join(dir, "*.wal")); len(logs) == 0 && !meta.Fresh {
			return nil, fmt.Errorf("%w: %s: node %d has voted (its %s says so) but its log is gone",
				ErrLogMissing, dir, nodeID, identityFile)
		}
		return meta, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	if logs, _ := filepath.Glob(filepath.Join(dir, "*.wal")); len(logs) > 0 {
		return nil, fmt.Errorf("%w: %s holds a log but no %s file", ErrForeignData, dir, identityFile)
	}
	if err := storage.MkdirAllSynced(dir); err != nil {
		return nil, err
	}
	meta := &messages.MetaRecord{ClusterId: clusterID, NodeId: nodeID, Incarnation: rand.Uint64()>>1 + 1, Fresh: true,
		Format: DataFormat, Rebuilt: rebuilt}
	return meta, writeIdentity(path, meta)
}

// upgradeFormat records DataFormat in dir's identity file, once the log
// has been opened on a directory of an older format. Crash-safe by its
// order: opening the log wrote its range file (storage.Open always leaves
// one), the directory is synced here so that the file's name is durable,
// and only then does the identity file say format 2, which requires the
// range file. A crash before the identity file's rename leaves a format-1
// directory, with or without the range file, which opens and upgrades
// again; a crash after leaves format 2 with the range file in place.
func upgradeFormat(dir string, meta *messages.MetaRecord) error {
	if formatOf(meta) >= DataFormat {
		return nil
	}
	if err := storage.SyncDir(dir); err != nil {
		return err
	}
	up := proto.Clone(meta).(*messages.MetaRecord)
	up.Format = DataFormat
	return writeIdentity(filepath.Join(dir, identityFile), up)
}

// markProven rewrites dir's identity file as no longer fresh, with the
// bootstrap set its acceptor recorded (if any).
func markProven(dir string, bootstrap []*messages.Member) error {
	path := filepath.Join(dir, identityFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	meta, err := decodeIdentity(b)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorruptIdentity, path, err)
	}
	meta.Fresh, meta.Bootstrap = false, bootstrap
	return writeIdentity(path, meta)
}

// encodeIdentity frames the record with its CRC-32C.
func encodeIdentity(meta *messages.MetaRecord) ([]byte, error) {
	body, err := proto.Marshal(meta)
	if err != nil {
		return nil, err
	}
	return binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, crcTable)), nil
}

func decodeIdentity(b []byte) (*messages.MetaRecord, error) {
	if len(b) < 4 {
		return nil, errors.New("too short")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return nil, errors.New("checksum mismatch")
	}
	meta := &messages.MetaRecord{}
	if err := proto.Unmarshal(body, meta); err != nil {
		return nil, err
	}
	return meta, nil
}

func writeIdentity(path string, meta *messages.MetaRecord) error {
	b, err := encodeIdentity(meta)
	if err != nil {
		return err
	}
	return storage.WriteFileAtomic(path, b)
}

// IsCorrupt reports whether err from NewReplica means the data directory
// failed its checksums (identity file, log record or a missing segment):
// its state cannot be trusted, and the replica must rebuild (MoveAside)
// or stop (§5.1). A directory of another node or cluster is not corrupt.
func IsCorrupt(err error) bool {
	return errors.Is(err, ErrCorruptIdentity) || errors.Is(err, storage.ErrCorrupt)
}

// MoveAside renames a corrupt data directory to dir.corrupt-<unix nanos>
// and makes dir again, empty: the replica started on it next is a new
// incarnation that rebuilds from the group and votes only once the group
// records it (§5.1). It returns where the old directory went.
func MoveAside(dir string) (string, error) {
	dir = filepath.Clean(dir)
	aside := fmt.Sprintf("%s.corrupt-%d", dir, time.Now().UnixNano())
	if err := os.Rename(dir, aside); err != nil {
		return "", err
	}
	if err := storage.MkdirAllSynced(dir); err != nil {
		return aside, err
	}
	return aside, storage.SyncDir(filepath.Dir(dir))
}
