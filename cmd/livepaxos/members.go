package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"

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
	cmd.AddCommand(newMembersListCmd(), newMembersChangeCmd("add"), newMembersChangeCmd("promote"), newMembersChangeCmd("remove"))
	return cmd
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
			id, err := strconv.ParseUint(args[0], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%w: want a node id, got %q", errUsage, args[0])
			}
			if err := cluster.CheckNodeID(id); err != nil {
				return nil, fmt.Errorf("%w: %v", errUsage, err)
			}
			if verb == "promote" {
				req.Promote = uint32(id)
			} else {
				req.Remove = uint32(id)
			}
		}
		return func(ctx context.Context, c *client.Client) error {
			v, err := c.ChangeMembers(ctx, req)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "membership version %d\n", v)
			return nil
		}, nil
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
}

func newMembersListCmd() *cobra.Command {
	var asJSON bool
	cmd := clientCmd(&cobra.Command{
		Use:   "list",
		Short: "List the members (voters and non-voting learners) as the first node that answers knows them",
		Long: `List the group's members as a reachable node knows them: each one's id, peer
address, client address, and role (voter, or learner: non-voting, §5.4), whether it
answers on its client address, whether it is master, and how far it has applied the
log. The first voters are set by --peers and learners by --learners; after that
members change through the log: members add (as a learner), promote (to voter),
remove. A node records its own client address once it knows a master. A voter
rebuilding after losing its disk shows as non-voting until the group records its
new incarnation (§5.1).`,
		Args: cobra.NoArgs,
	}, func(cmd *cobra.Command, _ []string, _ *clientFlags) (clientRun, error) {
		return func(ctx context.Context, c *client.Client) error {
			rows, err := listMembers(ctx, c)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				for _, r := range rows {
					if err := enc.Encode(r); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPEER ADDRESS\tCLIENT ADDRESS\tROLE\tSTATE\tAPPLIED\t")
			for _, r := range rows {
				state := "unreachable"
				switch {
				case r.Master:
					state = "master"
				case r.Reachable:
					state = "up"
				}
				ca := r.ClientAddress
				if ca == "" {
					ca = "-"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t\n", r.ID, r.Address, ca, r.Role, state, r.Applied)
			}
			return tw.Flush()
		}, nil
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per member")
	cmd.Flags().Lookup("timeout").DefValue = "2s"
	cmd.Flags().Set("timeout", "2s")
	return cmd
}

// listMembers asks a node for the members, then each member, on its
// client address, for its state.
func listMembers(ctx context.Context, c *client.Client) ([]memberRow, error) {
	m, err := c.Members(ctx)
	if err != nil {
		return nil, err
	}
	rows := make([]memberRow, len(m.Members))
	done := make(chan struct{}, len(m.Members))
	for i, mem := range m.Members {
		rows[i] = memberRow{ID: mem.Id, Address: mem.Address, ClientAddress: mem.ClientAddress, Role: mem.Role}
		if rows[i].Role == "" {
			rows[i].Role = "voter"
		}
		go func() {
			defer func() { done <- struct{}{} }()
			if mem.ClientAddress == "" {
				return
			}
			if ms, err := c.Status(ctx, mem.ClientAddress); err == nil {
				rows[i].Reachable, rows[i].Master, rows[i].Applied = true, ms.IsMaster, ms.LastApplied
			}
		}()
	}
	for range m.Members {
		<-done
	}
	return rows, nil
}
