package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
	"github.com/livepaxos/livepaxos/storage"
)

// errQuorumAlive: force-shrink was asked while the group may still have a
// majority of its voters: it can change its membership itself (members
// remove), and a forced shrink then would make two clusters.
var errQuorumAlive = errors.New("a majority of the voters may be alive")

// forcedShrinkFile is the audit record a forced shrink leaves beside its
// backup file (FILE + this suffix), and that restore copies into every
// data directory it makes from that file (under auditFileName).
const (
	forcedShrinkSuffix = ".audit.json"
	auditFileName      = "forced-shrink.json"
)

// forcedShrink is the audit record of one forced shrink.
type forcedShrink struct {
	At         time.Time        `json:"at"`
	Operator   string           `json:"operator"`
	Host       string           `json:"host"`
	Reason     string           `json:"reason"`
	OldCluster string           `json:"old_cluster_id"`
	OldVoters  []uint32         `json:"old_voters"`
	Survivors  []shrinkSurvivor `json:"survivors"`
	Missing    []uint32         `json:"missing_voters"`
	Source     uint32           `json:"source_node"`
	Instance   uint64           `json:"instance"`
	NewPeers   string           `json:"new_peers"`
	NewCluster string           `json:"new_cluster_id"`
	Risk       string           `json:"risk"`
}

type shrinkSurvivor struct {
	ID          uint32 `json:"id"`
	LastApplied uint64 `json:"last_applied"`
	LastChosen  uint64 `json:"last_chosen"`
}

const forceShrinkRisk = `Instances chosen after the source node's applied instance are lost, even if
their writes were acknowledged (the missing voters may have held them); so are
values the survivors accepted but never learned were chosen. If a missing voter
is not gone for good but only unreachable from here, the old group may still
have a majority and go on taking writes: then there are two clusters with two
histories. The new cluster has its own id, so no node of the old group can
ever join it or vote in it.`

type forceShrinkFlags struct {
	peers, learners, reason string
	yes                     bool
}

// newForceShrinkCmd is `members force-shrink FILE`: the way out of a quorum
// lost for good.
func newForceShrinkCmd() *cobra.Command {
	var f forceShrinkFlags
	cmd := endpointsCmd(&cobra.Command{
		Use:   "force-shrink FILE --endpoints SURVIVORS --peers ID=HOST:PORT,... --reason TEXT --yes-lose-writes",
		Short: "When a majority of the voters is gone for good: make a new, smaller group from the most caught-up survivor",
		Long: `The last resort when a majority of the voters is lost for good (their disks
destroyed, their hosts gone): without a majority the group can choose nothing,
not even a membership change, so 'members remove' cannot help.

It asks every node it can reach (--endpoints and every member they know), and
refuses if a majority of the voters answers, or if any survivor still follows
a master (then a majority may be alive where this command cannot see it). It
then saves the state of the most caught-up survivor to FILE (as 'snapshot
save' does) and writes an audit record beside it (FILE.audit.json: who, when,
why, the old and new members, what was applied where). Then, on the host of
each node in --peers, stop the old node and run the 'livepaxos restore' it
prints: each becomes a node of a NEW cluster (its own cluster id) whose
state is FILE's, with --peers as its voters; restore copies the audit record
into the new data directory, and the node logs it at every start.

Risk, spelled out:
` + forceShrinkRisk,
		Example: `  livepaxos members force-shrink shrink.lps --endpoints 10.0.0.1:7101 \
    --peers 1=10.0.0.1:7001 --reason "hosts 2 and 3 destroyed in the fire" --yes-lose-writes`,
		Args: exactArgs(1),
	}, func(ctx context.Context, c *client.Client, cmd *cobra.Command, eps []string) error {
		return forceShrink(ctx, c, eps, cmd.Flags().Arg(0), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	fl := cmd.Flags()
	fl.StringVar(&f.peers, "peers", "", "the new group's voters as id=host:port, comma-separated: survivors that answered")
	fl.StringVar(&f.learners, "learners", "", "the new group's non-voting members as id=host:port, comma-separated")
	fl.StringVar(&f.reason, "reason", "", "why: kept in the audit record")
	fl.BoolVar(&f.yes, "yes-lose-writes", false, "confirm having read the risk (--help): acknowledged writes may be lost")
	defaultTimeout(cmd, 30*time.Minute)
	return cmd
}

func forceShrink(ctx context.Context, c *client.Client, eps []string, file string, f forceShrinkFlags, out, errOut io.Writer) error {
	if !f.yes || strings.TrimSpace(f.reason) == "" || f.peers == "" {
		return fmt.Errorf("%w: --peers, --reason and --yes-lose-writes are required (read the risk in --help first)", errUsage)
	}
	peers, learners, err := parseMemberFlags(1, f.peers, f.learners)
	if err != nil {
		return err
	}
	sv := surveyNodes(ctx, c, eps, true)
	if !sv.answered() {
		return errNoNodeAnswered
	}
	rec, source, err := planShrink(sv, peers)
	if err != nil {
		return err
	}
	rec.Reason, rec.NewPeers, rec.Risk = f.reason, peers.String(), forceShrinkRisk
	rec.At = time.Now().UTC()
	rec.Operator, rec.Host = operator(), hostname()
	fmt.Fprintf(out, "voters %v: %v did not answer; taking node %d's state (applied up to %d)\n",
		rec.OldVoters, rec.Missing, rec.Source, source.LastApplied)
	info, err := saveBackup(ctx, func(ctx context.Context, w io.Writer, progress func(done, total uint64)) (uint64, error) {
		return c.SaveSnapshotFrom(ctx, source.ClientAddress, w, progress)
	}, file, out, errOut)
	if err != nil {
		return fmt.Errorf("saving node %d's state: %w", rec.Source, err)
	}
	rec.Instance = info.Instance
	rec.NewCluster = restoredClusterID(peers, learners, info)
	if err := writeAudit(file+forcedShrinkSuffix, rec); err != nil {
		return err
	}
	fmt.Fprintf(out, "audit record: %s\n", file+forcedShrinkSuffix)
	learnersFlag := ""
	if f.learners != "" {
		learnersFlag = " --learners " + learners.String()
	}
	fmt.Fprintf(out, "now, on the host of each new member, stop its old node and run:\n")
	for _, id := range append(peers.IDs(), learners.IDs()...) {
		fmt.Fprintf(out, "  node %d: livepaxos restore %s --data NEW_DIR --id %d --peers %s%s\n", id, file, id, peers.String(), learnersFlag)
	}
	fmt.Fprintf(out, "the new cluster's id will be %s\n", rec.NewCluster)
	return nil
}

// planShrink checks that a forced shrink is the only way left and picks the
// survivor whose state the new group starts from: the one that applied
// the most.
func planShrink(sv *survey, peers cluster.Peers) (*forcedShrink, *messages.StatusResponse, error) {
	newest := sv.newest()
	rec := &forcedShrink{OldCluster: newest.ClusterId}
	var source *messages.StatusResponse
	for _, m := range newest.Members {
		if m.Role != "" && m.Role != paxos.VoterRole {
			continue
		}
		rec.OldVoters = append(rec.OldVoters, m.Id)
		if _, up := sv.byID[m.Id]; !up {
			rec.Missing = append(rec.Missing, m.Id)
		}
	}
	if up := len(rec.OldVoters) - len(rec.Missing); up > len(rec.OldVoters)/2 {
		return nil, nil, fmt.Errorf("%w: %d of the %d voters answer, so the group can change its members itself: use 'members remove'",
			errQuorumAlive, up, len(rec.OldVoters))
	}
	ids := make([]uint32, 0, len(sv.byID))
	for id := range sv.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		st := sv.byID[id]
		if st.IsMaster || st.MasterId != 0 {
			return nil, nil, fmt.Errorf("%w: node %d %s: wait until no survivor knows a master, or check the missing voters again",
				errQuorumAlive, id, followsWhom(st))
		}
		if st.ClusterId != rec.OldCluster {
			return nil, nil, fmt.Errorf("%w: node %d belongs to cluster %s, not %s", errUsage, id, st.ClusterId, rec.OldCluster)
		}
		rec.Survivors = append(rec.Survivors, shrinkSurvivor{ID: id, LastApplied: st.LastApplied, LastChosen: st.LastChosen})
		if source == nil || st.LastApplied > source.LastApplied {
			source = st
		}
	}
	for _, id := range peers.IDs() {
		if _, up := sv.byID[id]; !up {
			return nil, nil, fmt.Errorf("%w: --peers names node %d, which did not answer: the new voters are survivors (add others later with members add)", errUsage, id)
		}
	}
	if source.ClientAddress == "" {
		return nil, nil, fmt.Errorf("node %d has no client address to take its state from", source.NodeId)
	}
	rec.Source = source.NodeId
	return rec, source, nil
}

func followsWhom(st *messages.StatusResponse) string {
	if st.IsMaster {
		return "is master"
	}
	return fmt.Sprintf("follows master %d", st.MasterId)
}

func writeAudit(path string, rec *forcedShrink) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return storage.WriteFileAtomic(path, append(b, '\n'))
}

// operator names who ran the command: $USER, else the account's name.
func operator() string {
	if name := os.Getenv("USER"); name != "" {
		return name
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// copyAudit puts the audit record of the forced shrink that made backup,
// if there is one beside it, into a data directory restored from it; it
// reports whether there was one.
func copyAudit(backup, dataDir string) (bool, error) {
	b, err := os.ReadFile(backup + forcedShrinkSuffix)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !json.Valid(b) {
		return false, fmt.Errorf("%s: not an audit record", backup+forcedShrinkSuffix)
	}
	return true, storage.WriteFileAtomic(filepath.Join(dataDir, auditFileName), b)
}

// readAudit returns the forced shrink a data directory was made by, nil if
// it was not.
func readAudit(dataDir string) (*forcedShrink, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, auditFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec := &forcedShrink{}
	if err := json.Unmarshal(b, rec); err != nil {
		return nil, fmt.Errorf("%s: %w", auditFileName, err)
	}
	return rec, nil
}
