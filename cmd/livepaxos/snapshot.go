package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/livepaxos/livepaxos/client"
)

func newSnapshotCmd() *cobra.Command {
	var node uint32
	cmd := endpointsCmd(&cobra.Command{
		Use:   "snapshot",
		Short: "Have nodes snapshot their database now and let go of the log below it",
		Long: `Ask each node (or only --node N) to snapshot its database now (§5.5): the
snapshot is written while writes go on, made durable, and the log below it is
then let go of. Snapshots are per node; nodes also take them on their own
(see node --snapshot-every and --snapshot-log-bytes).`,
		Example: `  livepaxos snapshot --endpoints 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
  livepaxos snapshot --node 2`,
		Args: cobra.NoArgs,
	}, func(ctx context.Context, c *client.Client, cmd *cobra.Command, eps []string) error {
		if node != 0 {
			var err error
			if eps, err = endpointOfNode(ctx, c, eps, node); err != nil {
				return err
			}
		}
		failed := 0
		for _, ep := range eps {
			resp, err := c.Snapshot(ctx, ep)
			if err != nil {
				failed++
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", ep, err)
				continue
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %d (%s): snapshot at instance %d, %d bytes, %v\n", resp.NodeId, ep,
				resp.Instance, resp.Bytes, (time.Duration(resp.DurationUs) * time.Microsecond).Round(time.Millisecond))
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d nodes took no snapshot", failed, len(eps))
		}
		return nil
	})
	cmd.Flags().Uint32Var(&node, "node", 0, "only this node id (default: every endpoint)")
	defaultTimeout(cmd, time.Minute)
	cmd.AddCommand(newSnapshotSaveCmd())
	return cmd
}

// endpointOfNode finds, among eps, the endpoint of node id (asking each
// for its status: the endpoints list addresses, not ids).
func endpointOfNode(ctx context.Context, c *client.Client, eps []string, id uint32) ([]string, error) {
	for _, ep := range eps {
		if st, err := c.Status(ctx, ep); err == nil && st.NodeId == id {
			return []string{ep}, nil
		}
	}
	return nil, fmt.Errorf("%w: no endpoint answers as node %d", errUsage, id)
}
