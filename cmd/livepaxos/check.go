package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/livepaxos/livepaxos/client"
)

func newCheckCmd() *cobra.Command {
	return endpointsCmd(&cobra.Command{
		Use:   "check",
		Short: "Run a consistency check: every node checksums its database at one instance and compares",
		Long: `Ask the master to put a checksum value in the log (§6.2). Every node that
applies it checksums its database as of that instance, without pausing writes,
and compares with the others; a node whose checksum differs from the majority's
stops serving, and the others report it. The master also does this on its own
every --check-interval. Exits 1 if any node diverged or did not report.`,
		Args: cobra.NoArgs,
	}, func(ctx context.Context, c *client.Client, cmd *cobra.Command, eps []string) error {
		at, err := c.Check(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "checksum value at instance %d\n", at)
		bad := 0
		for _, ep := range eps {
			line, agrees := checkVerdict(ctx, c, ep, at)
			if !agrees {
				bad++
			}
			fmt.Fprintln(cmd.OutOrStdout(), line)
		}
		if bad > 0 {
			return fmt.Errorf("%d of %d nodes did not agree", bad, len(eps))
		}
		return nil
	})
}

// checkVerdict waits until endpoint ep has compared its checksum at
// instance at (or found a divergence, or cannot be asked) and describes it.
func checkVerdict(ctx context.Context, c *client.Client, ep string, at uint64) (line string, agrees bool) {
	line = fmt.Sprintf("%s: no verdict before the timeout", ep)
	for ctx.Err() == nil {
		st, err := c.Status(ctx, ep)
		switch {
		case err != nil:
			return fmt.Sprintf("%s: unreachable: %v", ep, err), false
		case st.Divergence != "":
			return fmt.Sprintf("%s: node %d: DIVERGED: %s", ep, st.NodeId, st.Divergence), false
		case st.CheckedInstance >= at:
			return fmt.Sprintf("%s: node %d: agrees with the majority at instance %d", ep, st.NodeId, st.CheckedInstance), true
		}
		line = fmt.Sprintf("%s: node %d: not checked yet (applied %d)", ep, st.NodeId, st.LastApplied)
		time.Sleep(50 * time.Millisecond) // polling another process: nothing to wait on
	}
	return line, false
}
