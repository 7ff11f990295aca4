package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/livepaxos/livepaxos/client"
)

// newHealthCmd is `livepaxos health`: a probe of each given node on its
// own, for a container's health check (the image has no shell or curl).
// Unlike status, it never asks another node instead.
func newHealthCmd() *cobra.Command {
	var live bool
	cmd := endpointsCmd(&cobra.Command{
		Use:   "health",
		Short: "Probe each --endpoints node alone through the gRPC health service: exit 0 only if every one is ready",
		Long: `Ask each --endpoints node, and only it, through the standard gRPC health
service (grpc.health.v1.Health/Check) on its client port, whether it is ready for
traffic: it is a member, knows a master (or is one and holds its lease), has applied
the log it knows chosen, has not diverged and has disk space left (the conditions
of /readyz on the metrics port, which lists each). Exits 0 only if every endpoint
is ready; with --live, only if every one answers at all. Made for a container's
health check: livepaxos health --endpoints localhost:7101.`,
		Args: cobra.NoArgs,
	}, func(ctx context.Context, c *client.Client, cmd *cobra.Command, eps []string) error {
		lines, bad := askEach(eps, func(ep string) (string, bool) {
			ready, err := c.Health(ctx, ep)
			switch {
			case err != nil:
				return fmt.Sprintf("%s: not answering: %v", ep, err), true
			case ready:
				return ep + ": ready", false
			}
			return ep + ": serving, NOT ready", !live
		})
		n := 0
		for i := range eps {
			fmt.Fprintln(cmd.OutOrStdout(), lines[i])
			if bad[i] {
				n++
			}
		}
		if n > 0 {
			return fmt.Errorf("%d of %d nodes not healthy", n, len(eps))
		}
		return nil
	})
	cmd.Flags().BoolVar(&live, "live", false, "only require an answer (liveness), not readiness")
	defaultTimeout(cmd, 2*time.Second)
	return cmd
}
