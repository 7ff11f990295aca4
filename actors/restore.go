package actors

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/storage"
)

// snapshotDir is where a replica keeps its snapshot files.
func (r *Replica) snapshotDir() string { return filepath.Join(r.cfg.DataDir, "snapshots") }

// restoreSnapshot loads the newest valid snapshot, if the state machine can
// take one, into the state machine and the replica core, before the log
// is replayed. A damaged newest file is passed over (and reported); a
// transfer cut short by a crash is removed.
func (r *Replica) restoreSnapshot() error {
	dir := r.snapshotDir()
	removeInstallLeftovers(dir)
	sm, ok := r.cfg.StateMachine.(Snapshotter)
	if !ok {
		return nil
	}
	info, skipped, err := storage.LatestSnapshot(dir)
	for _, s := range skipped {
		r.cfg.Logger.Warn("snapshot passed over", "node", r.cfg.NodeID, "err", s)
	}
	if errors.Is(err, storage.ErrNoSnapshot) || errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	meta, err := loadSnapshot(sm, info.Path)
	if err != nil {
		return fmt.Errorf("actors: restoring snapshot %s: %w", info.Path, err)
	}
	r.d.RestoreSnapshot(meta)
	r.restored = info
	r.cfg.Logger.Info("snapshot restored", "node", r.cfg.NodeID, "instance", info.Instance, "bytes", info.Bytes)
	return nil
}

// loadSnapshot reads the snapshot file at path into sm and returns its
// handle. The file is verified whole while it is read: a damaged one
// returns an error, and Restore changes nothing on error.
func loadSnapshot(sm Snapshotter, path string) (*messages.SnapshotMeta, error) {
	rd, meta, err := openSnapshot(path)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	if err := sm.Restore(rd); err != nil {
		return nil, err
	}
	return meta, nil
}

// openSnapshot opens the snapshot file at path for reading its state
// (verified as it is read) and decodes its handle, which must name the
// file's instance.
func openSnapshot(path string) (*storage.SnapshotReader, *messages.SnapshotMeta, error) {
	rd, err := storage.OpenSnapshot(path)
	if err != nil {
		return nil, nil, err
	}
	meta := &messages.SnapshotMeta{}
	if err := proto.Unmarshal(rd.Info.Meta, meta); err != nil {
		rd.Close()
		return nil, nil, fmt.Errorf("%w: snapshot handle does not decode: %v", storage.ErrCorrupt, err)
	}
	if meta.Instance != rd.Info.Instance {
		rd.Close()
		return nil, nil, fmt.Errorf("%w: snapshot handle names instance %d, file %d", storage.ErrCorrupt, meta.Instance, rd.Info.Instance)
	}
	return rd, meta, nil
}

// removeInstallLeftovers deletes partial transfers a crash left behind.
func removeInstallLeftovers(dir string) {
	names, _ := os.ReadDir(dir)
	for _, n := range names {
		if strings.HasPrefix(n.Name(), "install-") && strings.HasSuffix(n.Name(), ".part") {
			os.Remove(filepath.Join(dir, n.Name()))
		}
	}
}

// ErrNoSnapshotFile: the replica keeps no snapshot file to send (its
// state machine takes no snapshots, or none was taken yet).
var ErrNoSnapshotFile = errors.New("actors: no snapshot file")

// OpenLatestSnapshot opens the newest valid snapshot file of this replica
// for reading, for a backup. The file stays readable while open even if a
// newer snapshot replaces it meanwhile.
func (r *Replica) OpenLatestSnapshot() (*os.File, storage.SnapshotInfo, error) {
	if _, ok := r.cfg.StateMachine.(Snapshotter); !ok || r.cfg.DataDir == "" {
		return nil, storage.SnapshotInfo{}, fmt.Errorf("%w: this replica's state machine takes no snapshots", ErrNoSnapshotFile)
	}
	for range 3 { // a newer snapshot may remove the one found before it is opened
		info, _, err := storage.LatestSnapshot(r.snapshotDir())
		if errors.Is(err, storage.ErrNoSnapshot) || errors.Is(err, os.ErrNotExist) {
			return nil, storage.SnapshotInfo{}, fmt.Errorf("%w: none taken yet", ErrNoSnapshotFile)
		}
		if err != nil {
			return nil, storage.SnapshotInfo{}, err
		}
		f, err := os.Open(info.Path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		return f, info, err
	}
	return nil, storage.SnapshotInfo{}, fmt.Errorf("%w: snapshots replaced faster than one could be opened", ErrNoSnapshotFile)
}
