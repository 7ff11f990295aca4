package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// newLimitsCmd is `limits get` and `limits set --max-value-bytes N
// --max-result-bytes M`: the group's value and result limits, chosen
// through the log (db/limits.go, db/result.go).
func newLimitsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "limits",
		Short: "The group's value and result limits, chosen through the log",
		Long: `The group's limits are chosen through the log, like the membership: from the
instance they are set at, every replica applies the log by them alike.

The value limit: every node refuses larger values, whatever its own
--max-value-bytes (which counts only while the group has set no limit).
Values stored before a lower limit stay.

The result limit bounds what one transaction answers (the values of its gets,
the keys and values of its ranges, its lock records): a transaction that would
answer more is refused as a whole, and ranges stop at it (page on). While the
group has set none, each node refuses such transactions at its door, and the
reads it serves, by the default of ` + fmt.Sprint(db.DefaultMaxResultBytes) + ` bytes.`,
	}
	cmd.AddCommand(newLimitsGetCmd(), newLimitsSetCmd())
	return cmd
}

func newLimitsGetCmd() *cobra.Command {
	return clientCmd(&cobra.Command{
		Use:   "get",
		Short: "Print the group's value limit",
		Args:  exactArgs(0),
	}, func(cmd *cobra.Command, _ []string, _ *clientFlags) (clientRun, error) {
		return func(ctx context.Context, c *client.Client) error {
			resp, err := c.Limits(ctx)
			if err != nil {
				return err
			}
			printLimits(cmd.OutOrStdout(), resp)
			return nil
		}, nil
	})
}

func newLimitsSetCmd() *cobra.Command {
	var maxValue, maxResult uint64
	cmd := clientCmd(&cobra.Command{
		Use:   "set [--max-value-bytes N] [--max-result-bytes M]",
		Short: "Set the group's value limit, result limit or both through the log (an operator's command)",
		Args:  exactArgs(0),
	}, func(cmd *cobra.Command, _ []string, _ *clientFlags) (clientRun, error) {
		switch {
		case maxValue == 0 && maxResult == 0:
			return nil, fmt.Errorf("%w: give --max-value-bytes, --max-result-bytes or both", errUsage)
		case maxValue > db.MaxValueBytesCeiling:
			return nil, fmt.Errorf("%w: --max-value-bytes must be 1 to %d", errUsage, db.MaxValueBytesCeiling)
		case maxResult != 0 && (maxResult < db.MinResultBytes || maxResult > db.MaxResultBytesCeiling):
			return nil, fmt.Errorf("%w: --max-result-bytes must be %d to %d", errUsage, db.MinResultBytes, db.MaxResultBytesCeiling)
		}
		return func(ctx context.Context, c *client.Client) error {
			resp, err := c.SetGroupLimits(ctx, &messages.SetLimitsRequest{MaxValueBytes: maxValue, MaxResultBytes: maxResult})
			if err != nil {
				return err
			}
			printLimits(cmd.OutOrStdout(), resp)
			return nil
		}, nil
	})
	cmd.Flags().Uint64Var(&maxValue, "max-value-bytes", 0,
		fmt.Sprintf("largest value the group takes in, 1 to %d (0: leave it as it is)", db.MaxValueBytesCeiling))
	cmd.Flags().Uint64Var(&maxResult, "max-result-bytes", 0,
		fmt.Sprintf("most a transaction answers, %d to %d (0: leave it as it is)", db.MinResultBytes, db.MaxResultBytesCeiling))
	return cmd
}

// printLimits prints the limits and where they come from, as the node
// that answered knows them.
func printLimits(w io.Writer, r *messages.LimitsResponse) {
	node := r.GetHeader().GetNodeId()
	if r.GroupSet {
		fmt.Fprintf(w, "max-value-bytes %d (the group's, set at instance %d; node %d)\n", r.MaxValueBytes, r.SetInstance, node)
	} else {
		fmt.Fprintf(w, "max-value-bytes %d (node %d's own: the group has set none)\n", r.MaxValueBytes, node)
	}
	if r.ResultGroupSet {
		fmt.Fprintf(w, "max-result-bytes %d (the group's, set at instance %d; node %d)\n", r.MaxResultBytes, r.ResultSetInstance, node)
	} else {
		fmt.Fprintf(w, "max-result-bytes %d (node %d's default, at its door and reads: the group has set none)\n", r.MaxResultBytes, node)
	}
}
