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

// newLimitsCmd is `limits get` and `limits set --max-value-bytes N`: the
// group's value limit, chosen through the log (db/limits.go).
func newLimitsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "limits",
		Short: "The group's value limit, chosen through the log",
		Long: `The group's value limit is chosen through the log, like the membership: every
node refuses larger values from the instance it is set at, and every replica
applies the log by it alike, whatever its own --max-value-bytes (which counts
only while the group has set no limit). Values stored before a lower limit stay.`,
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
	var maxValue uint64
	cmd := clientCmd(&cobra.Command{
		Use:   "set --max-value-bytes N",
		Short: "Set the group's value limit through the log (an operator's command)",
		Args:  exactArgs(0),
	}, func(cmd *cobra.Command, _ []string, _ *clientFlags) (clientRun, error) {
		if maxValue == 0 || maxValue > db.MaxValueBytesCeiling {
			return nil, fmt.Errorf("%w: --max-value-bytes must be 1 to %d", errUsage, db.MaxValueBytesCeiling)
		}
		return func(ctx context.Context, c *client.Client) error {
			resp, err := c.SetLimits(ctx, maxValue)
			if err != nil {
				return err
			}
			printLimits(cmd.OutOrStdout(), resp)
			return nil
		}, nil
	})
	cmd.Flags().Uint64Var(&maxValue, "max-value-bytes", 0, fmt.Sprintf("largest value the group takes in, 1 to %d (required)", db.MaxValueBytesCeiling))
	return cmd
}

// printLimits prints the limit and where it comes from, as the node that
// answered knows it.
func printLimits(w io.Writer, r *messages.LimitsResponse) {
	if r.GroupSet {
		fmt.Fprintf(w, "max-value-bytes %d (the group's, set at instance %d; node %d)\n", r.MaxValueBytes, r.SetInstance, r.GetHeader().GetNodeId())
		return
	}
	fmt.Fprintf(w, "max-value-bytes %d (node %d's own: the group has set none)\n", r.MaxValueBytes, r.GetHeader().GetNodeId())
}
