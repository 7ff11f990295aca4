package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newMembersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "members",
		Short: "The group's members and their roles",
	}
	cmd.AddCommand(newMembersListCmd())
	return cmd
}

// memberRow is one line of `members list`.
type memberRow struct {
	ID        uint32 `json:"id"`
	Address   string `json:"address"`
	Role      string `json:"role"`
	Reachable bool   `json:"reachable"`
	Master    bool   `json:"master"`
	Applied   uint64 `json:"last_applied"`
}

func newMembersListCmd() *cobra.Command {
	var f clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the members (voters and non-voting learners) as the first node that answers knows them",
		Long: `List the group's members as a reachable node knows them: each one's id, address
and role (voter, or learner: non-voting, §5.4), whether it answers, whether it is
master, and how far it has applied the log. Membership changes through the log
(add, remove, promote) are not built yet: members are set by --peers and
--learners.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			eps, err := f.endpointList()
			if err != nil {
				return err
			}
			c, err := f.dial(1)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
			defer cancel()
			var rows []memberRow
			for _, ep := range eps {
				st, err := c.Status(ctx, ep)
				if err != nil {
					continue
				}
				for _, m := range st.Members {
					row := memberRow{ID: m.Id, Address: m.Address, Role: m.Role}
					if row.Role == "" {
						row.Role = "voter"
					}
					if ms, err := c.Status(ctx, m.Address); err == nil {
						row.Reachable, row.Master, row.Applied = true, ms.IsMaster, ms.LastApplied
					}
					rows = append(rows, row)
				}
				break
			}
			if rows == nil {
				return fmt.Errorf("no node reachable")
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
			fmt.Fprintln(tw, "ID\tADDRESS\tROLE\tSTATE\tAPPLIED\t")
			for _, r := range rows {
				state := "unreachable"
				switch {
				case r.Master:
					state = "master"
				case r.Reachable:
					state = "up"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t\n", r.ID, r.Address, r.Role, state, r.Applied)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per member")
	f.add(cmd)
	cmd.Flags().Lookup("timeout").DefValue = "2s"
	cmd.Flags().Set("timeout", "2s")
	return cmd
}
