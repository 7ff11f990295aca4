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
every --check-interval. Every --endpoints address is asked at once; a node that is
down or behind is reported, not failed on. Exits 1 if any node diverged, or if no
node reported agreeing.`,
		Args: cobra.NoArgs,
	}, func(ctx context.Context, c *client.Client, cmd *cobra.Command, eps []string) error {
		at, err := c.Check(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "checksum value at instance %d\n", at)
		lines, verdicts := askEach(eps, func(ep string) (string, verdict) { return checkVerdict(ctx, c, ep, at) })
		count := map[verdict]int{}
		for i := range eps {
			fmt.Fprintln(cmd.OutOrStdout(), lines[i])
			count[verdicts[i]]++
		}
		switch {
		case count[diverged] > 0:
			return fmt.Errorf("%d of %d nodes DIVERGED", count[diverged], len(eps))
		case count[agrees] == 0:
			return fmt.Errorf("no node reported agreeing at instance %d", at)
		}
		if n := len(eps) - count[agrees]; n > 0 {
			fmt.Fprintf(cmd.OutOrStdout(), "%d of %d nodes agree; %d did not report (unreachable or behind)\n", count[agrees], len(eps), n)
		}
		return nil
	})
}

// verdict is what one node said of a check.
type verdict int

const (
	noVerdict verdict = iota // unreachable, or not there yet before the timeout
	agrees
	diverged
)

// checkVerdict waits until endpoint ep has compared its checksum at
// instance at (or found a divergence, or cannot be asked) and describes it.
func checkVerdict(ctx context.Context, c *client.Client, ep string, at uint64) (string, verdict) {
	line := fmt.Sprintf("%s: no verdict before the timeout", ep)
	for ctx.Err() == nil {
		st, err := c.Status(ctx, ep)
		switch {
		case err != nil:
			return fmt.Sprintf("%s: unreachable: %v", ep, err), noVerdict
		case st.Divergence != "":
			return fmt.Sprintf("%s: node %d: DIVERGED: %s", ep, st.NodeId, st.Divergence), diverged
		case st.CheckedInstance >= at:
			return fmt.Sprintf("%s: node %d: agrees with the majority at instance %d", ep, st.NodeId, st.CheckedInstance), agrees
		}
		line = fmt.Sprintf("%s: node %d: not checked yet (applied %d)", ep, st.NodeId, st.LastApplied)
		time.Sleep(50 * time.Millisecond) // polling another process: nothing to wait on
	}
	return line, noVerdict
}
