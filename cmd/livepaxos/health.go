package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/spf13/cobra"

	"github.com/livepaxos/livepaxos/client"
)

// newHealthCmd is `livepaxos health`: a probe of each given node on its
// own, for a container's health check (the image has no shell or curl).
// Unlike status, it never asks another node instead.
func newHealthCmd() *cobra.Command {
	var f clientFlags
	var live bool
	cmd := &cobra.Command{
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			eps, err := f.endpointList()
			if err != nil {
				return err
			}
			return f.withClient(func(ctx context.Context, c *client.Client) error {
				lines := make([]string, len(eps))
				bad := make([]bool, len(eps))
				var wg sync.WaitGroup
				for i, ep := range eps {
					wg.Add(1)
					go func() {
						defer wg.Done()
						ready, err := c.Health(ctx, ep)
						switch {
						case err != nil:
							lines[i], bad[i] = fmt.Sprintf("%s: not answering: %v", ep, err), true
						case ready:
							lines[i] = ep + ": ready"
						default:
							lines[i], bad[i] = ep+": serving, NOT ready", !live
						}
					}()
				}
				wg.Wait()
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
		},
	}
	cmd.Flags().BoolVar(&live, "live", false, "only require an answer (liveness), not readiness")
	f.add(cmd)
	cmd.Flags().Lookup("timeout").DefValue = "2s"
	cmd.Flags().Set("timeout", "2s")
	return cmd
}
