package actors

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/storage"
)

// ErrNotEmpty: a restore was pointed at a data directory that holds
// something already; it writes only into a new or empty directory.
var ErrNotEmpty = errors.New("actors: data directory not empty")

// RestoreConfig says which node of which new cluster a restored data
// directory is for.
type RestoreConfig struct {
	DataDir   string
	ClusterID string
	NodeID    uint32
	// Peers and Learners are the new cluster's members (id -> peer address),
	// as every node of it is started with.
	Peers    map[uint32]string
	Learners map[uint32]string
}

// ReadBackup verifies the backup file at path whole (a snapshot file, as
// `livepaxos snapshot save` writes it) and returns its handle.
func ReadBackup(path string) (*messages.SnapshotMeta, storage.SnapshotInfo, error) {
	info, err := storage.VerifySnapshot(path)
	if err != nil {
		return nil, info, err
	}
	meta := &messages.SnapshotMeta{}
	if err := proto.Unmarshal(info.Meta, meta); err != nil {
		return nil, info, fmt.Errorf("%w: snapshot handle does not decode: %v", storage.ErrCorrupt, err)
	}
	if meta.Instance != info.Instance {
		return nil, info, fmt.Errorf("%w: snapshot handle names instance %d, file %d", storage.ErrCorrupt, meta.Instance, info.Instance)
	}
	return meta, info, nil
}

// RestoreDataDir makes cfg.DataDir the data directory of a node of a new
// cluster whose state starts as the backup at path: a fresh identity
// (cluster cfg.ClusterID, a new incarnation, no vote given) and one
// snapshot file, the backup's state with the new cluster's members in its
// handle. Every voter of the new cluster is restored from the same file;
// they start as a brand-new group would (the bootstrap poll, §5.1) with
// the log chosen up to the backup's instance. A directory with anything in
// it is refused (ErrNotEmpty): a restore never overwrites.
func RestoreDataDir(path string, cfg RestoreConfig) (*messages.SnapshotMeta, error) {
	if _, ok := cfg.Peers[cfg.NodeID]; !ok {
		if _, ok := cfg.Learners[cfg.NodeID]; !ok {
			return nil, fmt.Errorf("%w: node %d is not among the new cluster's members", ErrConfig, cfg.NodeID)
		}
	}
	if names, err := os.ReadDir(cfg.DataDir); err == nil && len(names) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotEmpty, cfg.DataDir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	old, _, err := ReadBackup(path)
	if err != nil {
		return nil, err
	}
	src, err := storage.OpenSnapshot(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	members := initialMembership(&Config{Peers: cfg.Peers, Learners: cfg.Learners})
	meta := &messages.SnapshotMeta{Instance: old.Instance, Epoch: old.Epoch, EpochMaster: old.EpochMaster,
		Members: members.Members, MembershipVersion: old.MembershipVersion + 1}
	handle, err := proto.Marshal(meta)
	if err != nil {
		return nil, err
	}
	identity, err := checkIdentity(cfg.DataDir, cfg.ClusterID, cfg.NodeID, false)
	if err != nil {
		return nil, err
	}
	identity.RestoredInstance = meta.Instance
	if err := writeIdentity(filepath.Join(cfg.DataDir, identityFile), identity); err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.DataDir, "snapshots")
	if err := storage.MkdirAllSynced(dir); err != nil {
		return nil, err
	}
	w, err := storage.CreateSnapshot(dir, meta.Instance, handle, storage.SnapshotOptions{})
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(w, src); err != nil {
		w.Abort()
		return nil, fmt.Errorf("restoring %s: %w", path, err)
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	return meta, nil
}
