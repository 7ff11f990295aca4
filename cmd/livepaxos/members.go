package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/messages"
)

func newMembersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "members",
		Short: "The group's members and their roles",
	}
	cmd.AddCommand(newMembersListCmd(), newMembersChangeCmd("add"), newMembersChangeCmd("promote"), newMembersChangeCmd("remove"),
		newTransferCmd(), newForceShrinkCmd())
	return cmd
}

// newTransferCmd is `members transfer-mastership [ID]`.
func newTransferCmd() *cobra.Command {
	return clientCmd(&cobra.Command{
		Use:   "transfer-mastership [ID]",
		Short: "Have the master hand mastership to voter ID (default: the most caught-up voter) without a fail-over",
		Long: `Have the master hand mastership over at once, without the outage of a
fail-over (an election timeout plus the rest of the old master's lease): it stops
taking writes (refused as not master, which clients retry), has what it has in
flight chosen, and tells the successor to campaign at once; the acceptors release
its lease to the successor. Writes stall for a few message rounds. A node stopped
with SIGTERM does the same first when it is master.`,
		Args: cobra.MaximumNArgs(1),
	}, func(cmd *cobra.Command, args []string, _ *clientFlags) (clientRun, error) {
		var to uint32
		if len(args) == 1 {
			id, err := parseNodeID(args[0])
			if err != nil {
				return nil, err
			}
			to = id
		}
		return printAnswer(cmd, "node %d is master\n", func(ctx context.Context, c *client.Client) (uint32, error) {
			return c.TransferMastership(ctx, to)
		}), nil
	})
}

// parseNodeID reads a node id argument (a usage error if it is not one).
func parseNodeID(arg string) (uint32, error) {
	id, err := strconv.ParseUint(arg, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: want a node id, got %q", errUsage, arg)
	}
	if err := cluster.CheckNodeID(id); err != nil {
		return 0, fmt.Errorf("%w: %v", errUsage, err)
	}
	return uint32(id), nil
}

// newMembersChangeCmd is `members add ID=HOST:PORT` (as a non-voting
// learner), `members promote ID` (a learner to voter) or `members remove
// ID` (a learner or a voter; the master hands mastership over first).
func newMembersChangeCmd(verb string) *cobra.Command {
	use, short := "add ID=HOST:PORT", "Add a member as a non-voting learner, through the log (HOST:PORT: its peer address; start it with node --join)"
	switch verb {
	case "promote":
		use, short = "promote ID", "Make a learner a voter, through the log (one voter at a time; promote once it has caught up)"
	case "remove":
		use, short = "remove ID", "Remove a member, through the log (removing the master hands mastership over first)"
	}
	return clientCmd(&cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(1),
	}, func(cmd *cobra.Command, args []string, _ *clientFlags) (clientRun, error) {
		req := &messages.MembersRequest{}
		if verb == "add" {
			ps, err := cluster.ParsePeers(args[0])
			if err != nil || len(ps) != 1 {
				return nil, fmt.Errorf("%w: want ID=HOST:PORT, got %q", errUsage, args[0])
			}
			for id, addr := range ps {
				req.Add = &messages.Member{Id: id, Address: addr}
			}
		} else {
			id, err := parseNodeID(args[0])
			if err != nil {
				return nil, err
			}
			if verb == "promote" {
				req.Promote = id
			} else {
				req.Remove = id
			}
		}
		return printAnswer(cmd, "membership version %d\n", func(ctx context.Context, c *client.Client) (uint64, error) {
			return c.ChangeMembers(ctx, req)
		}), nil
	})
}

// memberRow is one line of `members list`.
type memberRow struct {
	ID            uint32 `json:"id"`
	Address       string `json:"address"`
	ClientAddress string `json:"client_address"`
	Role          string `json:"role"`
	Reachable     bool   `json:"reachable"`
	Master        bool   `json:"master"`
	Applied       uint64 `json:"last_applied"`
	// Error: why a member that did not answer could not be asked.
	Error string `json:"error,omitempty"`
}

func newMembersListCmd() *cobra.Command {
	var asJSON bool
	cmd := clientCmd(&cobra.Command{
		Use:   "list",
		Short: "List the members (voters and non-voting learners) and whether each one answers",
		Long: `List the group's members: each one's id, peer address, client address, and role
(voter, or learner: non-voting, §5.4), whether it answers (asked on every
--endpoints address and on its own recorded client address, all at once), whether
it is master, and how far it has applied the log. The member list is the newest
membership any answering node knows. Exits 1 only when no node answered.
The first voters are set by --peers and learners by --learners; after that
members change through the log: members add (as a learner), promote (to voter),
remove. A node records its own client address once it knows a master. A voter
rebuilding after losing its disk shows as non-voting until the group records its
new incarnation (§5.1).`,
		Args: cobra.NoArgs,
	}, func(cmd *cobra.Command, _ []string, f *clientFlags) (clientRun, error) {
		eps, err := f.endpointList()
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, c *client.Client) error {
			rows := memberRows(surveyNodes(ctx, c, eps, true))
			if len(rows) == 0 {
				return errNoNodeAnswered
			}
			return printMemberRows(cmd.OutOrStdout(), rows, asJSON)
		}, nil
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per member")
	defaultTimeout(cmd, 2*time.Second)
	return cmd
}

// printMemberRows prints rows as a table, or with asJSON as one JSON
// object a row, then why each unreachable member was.
func printMemberRows(w io.Writer, rows []memberRow, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPEER ADDRESS\tCLIENT ADDRESS\tROLE\tSTATE\tAPPLIED\t")
	for _, r := range rows {
		state, applied := "unreachable", "-"
		switch {
		case r.Master:
			state = "master"
		case r.Reachable:
			state = "up"
		}
		if r.Reachable {
			applied = strconv.FormatUint(r.Applied, 10)
		}
		ca := r.ClientAddress
		if ca == "" {
			ca = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t\n", r.ID, r.Address, ca, r.Role, state, applied)
	}
	tw.Flush()
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(w, "node %d unreachable: %s\n", r.ID, r.Error)
		}
	}
	return nil
}

// memberRows turns a survey into one row per member of the newest
// membership any node knows, each with that node's own answer, and a row
// for any node that answered without being in it (a joiner not yet
// added). No answer at all: no rows.
func memberRows(s *survey) []memberRow {
	m := s.newest()
	if m == nil {
		return nil
	}
	var rows []memberRow
	listed := map[uint32]bool{}
	row := func(id uint32, addr, clientAddr, role string) {
		listed[id] = true
		r := memberRow{ID: id, Address: addr, ClientAddress: clientAddr, Role: role}
		if r.Role == "" {
			r.Role = "voter"
		}
		if st, ok := s.byID[id]; ok {
			r.Reachable, r.Master, r.Applied = true, st.IsMaster, st.LastApplied
		} else if err, ok := s.errs[clientAddr]; ok {
			r.Error = strings.TrimPrefix(err.Error(), "livepaxos: node unreachable: ")
		} else if clientAddr == "" {
			r.Error = "no client address recorded (the node records its own once it knows a master)"
		} else {
			r.Error = "did not answer on any address asked"
		}
		rows = append(rows, r)
	}
	for _, mem := range m.Members {
		row(mem.Id, mem.Address, mem.ClientAddress, mem.Role)
	}
	for id, st := range s.byID {
		if !listed[id] {
			row(id, st.Address, st.ClientAddress, st.Role)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	return rows
}
