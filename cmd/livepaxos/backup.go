package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/storage"
)

// newSnapshotSaveCmd is `snapshot save FILE`: a backup of the database.
func newSnapshotSaveCmd() *cobra.Command {
	cmd := endpointsCmd(&cobra.Command{
		Use:   "save FILE",
		Short: "Save a consistent snapshot of the database to FILE (a backup)",
		Long: `Have one node (the first endpoint that answers) snapshot its database now and
stream the snapshot file here: the state at one instance, the group's
membership there, and checksums over all of it. FILE is written beside
itself first, verified whole, fsynced and only then renamed into place; an
existing FILE is replaced only by a verified backup. A progress line goes to
a terminal. 'livepaxos restore FILE ...' makes a new cluster from it. With
client certificates on, only an operator's certificate may ask
(--tls-admin-names).`,
		Example: `  livepaxos snapshot save backup.lps --endpoints 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103`,
		Args:    exactArgs(1),
	}, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
		_, err := saveBackup(ctx, c.SaveSnapshot, cmd.Flags().Arg(0), cmd.OutOrStdout(), cmd.ErrOrStderr())
		return err
	})
	defaultTimeout(cmd, 30*time.Minute)
	return cmd
}

// snapshotSource streams a snapshot file into w (client.SaveSnapshot, or
// SaveSnapshotFrom one node) and returns its instance.
type snapshotSource func(ctx context.Context, w io.Writer, progress func(done, total uint64)) (uint64, error)

// saveBackup writes the snapshot save streams to path, verified,
// atomically, and returns its handle.
func saveBackup(ctx context.Context, save snapshotSource, path string, out, errOut io.Writer) (storage.SnapshotInfo, error) {
	tmp := path + ".part"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return storage.SnapshotInfo{}, err
	}
	defer os.Remove(tmp) // after the rename, nothing is there to remove
	progress := progressLine(errOut)
	began := time.Now()
	instance, err := save(ctx, f, progress)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return storage.SnapshotInfo{}, err
	}
	info, err := storage.VerifySnapshot(tmp)
	if err != nil {
		return info, fmt.Errorf("the snapshot received does not verify (nothing kept): %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return info, err
	}
	if err := storage.SyncDir(filepath.Dir(path)); err != nil {
		return info, err
	}
	fi, _ := os.Stat(path)
	fmt.Fprintf(out, "saved %s: snapshot at instance %d, %d bytes (%d of state), %v\n",
		path, instance, fi.Size(), info.Bytes, time.Since(began).Round(time.Millisecond))
	return info, nil
}

// progressLine returns a progress callback that rewrites one line on w
// when w is a terminal, and nil otherwise (logs and pipes get no noise).
func progressLine(w io.Writer) func(done, total uint64) {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	var last time.Time
	return func(done, total uint64) {
		if done < total && time.Since(last) < 100*time.Millisecond {
			return
		}
		last = time.Now()
		pct := 100.0
		if total > 0 {
			pct = 100 * float64(done) / float64(total)
		}
		fmt.Fprintf(f, "\r%.1f MiB of %.1f MiB (%3.0f%%)", float64(done)/(1<<20), float64(total)/(1<<20), pct)
		if done >= total {
			fmt.Fprintln(f)
		}
	}
}

type restoreFlags struct {
	data, peers, learners, clusterID string
	id                               uint32
}

// newRestoreCmd is `restore FILE`: a node's data directory of a new cluster
// made from a backup.
func newRestoreCmd() *cobra.Command {
	var f restoreFlags
	cmd := &cobra.Command{
		Use:   "restore FILE --data DIR --id N --peers ID=HOST:PORT,...",
		Short: "Make a new cluster's data directory from a backup (snapshot save)",
		Long: `Prepare the data directory of node --id of a NEW cluster whose database starts
as the backup FILE: run it once per node of the new cluster, with the same
FILE, --peers and --learners for every node, then start each node with the
command it prints. The new cluster has the members --peers names (not the
old ones) and its own cluster id (by default derived from --peers and the
backup, so every node's restore agrees on it, and it differs from the old
cluster's): a restored directory can never join the old group, nor the old
group's nodes this one. DIR must not exist or be empty. Writes acknowledged
after the backup's instance are not in it.`,
		Example: `  livepaxos restore backup.lps --data data/r1 --id 1 --peers 1=127.0.0.1:7201,2=127.0.0.1:7202,3=127.0.0.1:7203`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRestore(cmd.OutOrStdout(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "", "the new node's data directory (must not exist, or be empty)")
	fl.Uint32Var(&f.id, "id", 0, "the new node's id")
	fl.StringVar(&f.peers, "peers", "", "the new cluster's voters as id=host:port, comma-separated (as its nodes are started with)")
	fl.StringVar(&f.learners, "learners", "", "the new cluster's non-voting members as id=host:port, comma-separated")
	fl.StringVar(&f.clusterID, "cluster-id", "", "the new cluster's id (default: derived from --peers and the backup)")
	return cmd
}

func runRestore(out io.Writer, file string, f restoreFlags) error {
	if f.id == 0 || f.peers == "" || f.data == "" {
		return fmt.Errorf("%w: --id, --peers and --data are required", errUsage)
	}
	peers, learners, err := parseMemberFlags(f.id, f.peers, f.learners)
	if err != nil {
		return err
	}
	_, info, err := actors.ReadBackup(file)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if f.clusterID == "" {
		f.clusterID = restoredClusterID(peers, learners, info)
	}
	meta, err := actors.RestoreDataDir(file, actors.RestoreConfig{DataDir: f.data, ClusterID: f.clusterID, NodeID: f.id,
		Peers: peers, Learners: learners})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "restored %s into %s: node %d of cluster %s, state at instance %d\n", file, f.data, f.id, f.clusterID, meta.Instance)
	if forced, err := copyAudit(file, f.data); err != nil {
		return err
	} else if forced {
		fmt.Fprintf(out, "made by a forced shrink: its audit record is in %s\n", filepath.Join(f.data, auditFileName))
	}
	learnersFlag := ""
	if f.learners != "" {
		learnersFlag = " --learners " + learners.String()
	}
	fmt.Fprintf(out, "start it with: livepaxos node --id %d --peers %s%s --data %s --cluster-id %s\n",
		f.id, peers.String(), learnersFlag, f.data, f.clusterID)
	return nil
}

// restoredClusterID is a restored cluster's default id: derived from its
// members and the backup, so that restoring every node from one file
// agrees, and never the id derived from the same --peers alone.
func restoredClusterID(peers, learners cluster.Peers, backup storage.SnapshotInfo) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "restored\x00%s\x00%s\x00%d\x00%d\x00", peers.String(), learners.String(), backup.Instance, backup.Bytes)
	h.Write(backup.Meta)
	return fmt.Sprintf("lp-%016x", h.Sum64())
}
