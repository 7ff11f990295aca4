package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

func newStatusCmd() *cobra.Command {
	var f clientFlags
	var asJSON bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each node's role, master and log progress",
		Long: `Show each node's view: whether it is master, whom it believes is master,
its ballot, and its last chosen and applied instances. Every --endpoints address
is asked at once, then every member that none of them reached, on its recorded
client address. Exits 1 only when no node answered.
With --wait DUR, exit 0 as soon as a master accepts writes (a write that changes
nothing goes through the log), or 1 when DUR passes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if wait < 0 {
				return fmt.Errorf("%w: --wait must not be negative", errUsage)
			}
			eps, err := f.endpointList()
			if err != nil {
				return err
			}
			c, err := f.dial(1)
			if err != nil {
				return err
			}
			defer c.Close()
			if wait > 0 {
				return waitForMaster(cmd.OutOrStdout(), c, wait)
			}
			ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
			defer cancel()
			return printStatus(ctx, cmd.OutOrStdout(), c, eps, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per node")
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for a master that accepts writes")
	f.add(cmd)
	defaultTimeout(cmd, 2*time.Second)
	return cmd
}

// waitForMaster proves a master accepts writes with a MultiOp whose guard
// fails on purpose and whose lists are empty: it goes through the log and
// changes nothing.
func waitForMaster(w io.Writer, c *client.Client, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	probe := &messages.MultiOp{Guard: []*messages.Test{{Kind: messages.Test_KIND_PRESENT, Key: []byte("\x00livepaxos/ready-probe")}}}
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, time.Second)
		_, err := c.Txn(attempt, probe)
		cancelAttempt()
		if err == nil {
			fmt.Fprintln(w, "master accepts writes")
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no master accepted writes within %v: %v", wait, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// nodeStatus is one row of `status`, as printed with --json.
type nodeStatus struct {
	Endpoint    string   `json:"endpoint"`
	NodeID      uint32   `json:"node_id,omitempty"`
	Reachable   bool     `json:"reachable"`
	Error       string   `json:"error,omitempty"`
	IsMaster    bool     `json:"is_master"`
	MasterID    uint32   `json:"master_id,omitempty"`
	Master      string   `json:"master,omitempty"`
	Ballot      uint64   `json:"ballot"`
	LastChosen  uint64   `json:"last_chosen"`
	LastApplied uint64   `json:"last_applied"`
	Members     []string `json:"members,omitempty"`
	ClusterID   string   `json:"cluster_id,omitempty"`
	Epoch       uint64   `json:"epoch"`
	// LeaseMS: master only, how long its lease still holds.
	LeaseMS float64 `json:"lease_ms"`
	Boosts  uint64  `json:"ballot_boosts"`
	// Instances this node proposed as master, and how many of them its
	// ballot boosts re-proposed in phase 1 (§5.2).
	Proposed uint64 `json:"proposed_instances"`
	Boosted  uint64 `json:"boosted_instances"`
	// Snapshots (§5.5): the newest one's instance, how far the log is let
	// go of, its segment files, snapshots taken and installed from peers.
	Snapshot     uint64 `json:"snapshot_instance"`
	LogTruncated uint64 `json:"log_truncated"`
	LogSegments  uint64 `json:"log_segments"`
	Snapshots    uint64 `json:"snapshots"`
	Installs     uint64 `json:"installs"`
	// Runtime consistency checks (§6.2).
	CheckedInstance uint64 `json:"checked_instance"`
	Checks          uint64 `json:"checks"`
	Divergence      string `json:"divergence,omitempty"`
	// Role is the node's membership role; CatchingUp flags a node that
	// has lagged behind the chosen log for seconds (§6.3).
	Role       string `json:"role,omitempty"`
	CatchingUp bool   `json:"catching_up"`
	// DiskLow: the node's disk is under --min-free-bytes (a master
	// refuses writes); DiskFree is its free bytes.
	DiskLow  bool   `json:"disk_low"`
	DiskFree uint64 `json:"disk_free_bytes,omitempty"`
	// Voters is how many of Members vote (the others are learners).
	Voters int `json:"voters"`
	// PeerDrops counts the peer messages the replica refused, by reason
	// (core.DropReason).
	PeerDrops map[string]uint64 `json:"peer_drops,omitempty"`
}

// printStatus prints every endpoint's own status, then that of every
// member of the newest membership an endpoint knows that did not answer
// through one of them (asked on its recorded client address), so that
// status through one node still shows the whole group.
func printStatus(ctx context.Context, w io.Writer, c *client.Client, eps []string, asJSON bool) error {
	s := surveyNodes(ctx, c, eps, true)
	var rows []nodeStatus
	for _, ep := range s.asked {
		if st, ok := s.byEndpoint[ep]; ok {
			rows = append(rows, fromStatus(ep, st))
		} else {
			rows = append(rows, nodeStatus{Endpoint: ep, Error: s.errs[ep].Error()})
		}
	}
	if asJSON {
		enc := json.NewEncoder(w)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ENDPOINT\tID\tROLE\tMASTER\tEPOCH\tLEASE\tBALLOT\tCHOSEN\tAPPLIED\tSNAPSHOT\tSEGMENTS\t")
		for _, r := range rows {
			if !r.Reachable {
				fmt.Fprintf(tw, "%s\t-\tunreachable\t-\t-\t-\t-\t-\t-\t-\t-\t\n", r.Endpoint)
				continue
			}
			lease := "-"
			if r.IsMaster {
				lease = fmt.Sprintf("%.0fms", r.LeaseMS)
			}
			role := r.Role
			if role == "" {
				role = "voter"
			}
			if r.IsMaster {
				role = "master"
			}
			if r.CatchingUp {
				role += ", catching up"
			}
			if r.DiskLow {
				role += ", DISK LOW"
			}
			master := "-"
			if r.MasterID != 0 {
				master = fmt.Sprintf("%d", r.MasterID)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t\n", r.Endpoint, r.NodeID, role, master,
				r.Epoch, lease, fmtBallot(r.Ballot), r.LastChosen, r.LastApplied, r.Snapshot, r.LogSegments)
		}
		tw.Flush()
		fmt.Fprintln(w, tolerance(rows))
		for _, r := range rows {
			if !r.Reachable && r.Error != "" {
				fmt.Fprintf(w, "%s unreachable: %s\n", r.Endpoint, strings.TrimPrefix(r.Error, "livepaxos: node unreachable: "+r.Endpoint+": "))
			}
			if r.Divergence != "" {
				fmt.Fprintf(w, "CONSISTENCY CHECK FAILED at %s: %s\n", r.Endpoint, r.Divergence)
			}
		}
	}
	for _, r := range rows {
		if r.Reachable {
			return nil
		}
	}
	return errNoNodeAnswered
}

func fromStatus(ep string, st *messages.StatusResponse) nodeStatus {
	r := nodeStatus{Endpoint: ep, NodeID: st.NodeId, Reachable: true, IsMaster: st.IsMaster,
		MasterID: st.MasterId, Master: st.MasterAddress, Ballot: st.Ballot,
		LastChosen: st.LastChosen, LastApplied: st.LastApplied, ClusterID: st.ClusterId,
		Epoch: st.Epoch, LeaseMS: float64(st.LeaseRemainingUs) / 1000, Boosts: st.Boosts,
		Proposed: st.ProposedInstances, Boosted: st.BoostedInstances,
		Snapshot: st.SnapshotInstance, LogTruncated: st.LogTruncated, LogSegments: st.LogSegments,
		Snapshots: st.Snapshots, Installs: st.Installs, PeerDrops: st.PeerDrops,
		DiskLow: st.DiskLow, DiskFree: st.DiskFreeBytes,
		CheckedInstance: st.CheckedInstance, Checks: st.Checks, Divergence: st.Divergence,
		Role: st.Role, CatchingUp: st.CatchingUp}
	for _, m := range st.Members {
		member := fmt.Sprintf("%d=%s", m.Id, m.Address)
		if m.Role == "learner" {
			member += " (learner)"
		} else {
			r.Voters++
		}
		r.Members = append(r.Members, member)
	}
	return r
}

// fmtBallot prints a ballot as round.node.
func fmtBallot(b uint64) string {
	return fmt.Sprintf("%d.%d", b/paxos.BallotStride, paxos.BallotOwner(b))
}

// loggerFor returns the client-side logger for --log-level.
func loggerFor(level string) (*slog.Logger, error) {
	l, err := cluster.LoggerForLevel(level, os.Stderr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return l, nil
}

// tolerance says how many more node failures the group survives, judged
// from here: the voters that answered and agree on the master (§6.3: a
// misspelled or dead replica shows up as lost tolerance, not silently).
func tolerance(rows []nodeStatus) string {
	voters := 0
	for _, r := range rows {
		if r.Reachable {
			voters = r.Voters
			break
		}
	}
	if voters == 0 {
		voters = len(rows)
	}
	masters := map[uint32]int{}
	for _, r := range rows {
		if r.Reachable && r.MasterID != 0 && r.Role == "voter" { // not learners, nor a voter rebuilding (§5.1)
			masters[r.MasterID]++
		}
	}
	agreeing := 0
	for _, n := range masters {
		agreeing = max(agreeing, n)
	}
	quorum := voters/2 + 1
	switch {
	case agreeing < quorum:
		return fmt.Sprintf("%d of %d voters reachable and agreeing on a master: NO MAJORITY, the group cannot make progress", agreeing, voters)
	case agreeing-quorum == 0:
		return fmt.Sprintf("%d of %d voters reachable and agreeing on a master: the group survives NO further failure", agreeing, voters)
	}
	return fmt.Sprintf("%d of %d voters reachable and agreeing on a master: the group survives %d more failure(s)", agreeing, voters, agreeing-quorum)
}
