package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newCheckCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Run a consistency check: every node checksums its database at one instance and compares",
		Long: `Ask the master to put a checksum value in the log (§6.2). Every node that
applies it checksums its database as of that instance, without pausing writes,
and compares with the others; a node whose checksum differs from the majority's
stops serving, and the others report it. The master also does this on its own
every --check-interval. Exits 1 if any node diverged or did not report.`,
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
			at, err := c.Check(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "checksum value at instance %d\n", at)
			bad := 0
			for _, ep := range eps {
				line := ""
				for ctx.Err() == nil {
					st, err := c.Status(ctx, ep)
					switch {
					case err != nil:
						line = fmt.Sprintf("%s: unreachable: %v", ep, err)
					case st.Divergence != "":
						line = fmt.Sprintf("%s: node %d: DIVERGED: %s", ep, st.NodeId, st.Divergence)
					case st.CheckedInstance >= at:
						line = fmt.Sprintf("%s: node %d: agrees with the majority at instance %d", ep, st.NodeId, st.CheckedInstance)
					default:
						line = fmt.Sprintf("%s: node %d: not checked yet (applied %d)", ep, st.NodeId, st.LastApplied)
						time.Sleep(50 * time.Millisecond) // polling another process: nothing to wait on
						continue
					}
					break
				}
				if line == "" || !containsAgree(line) {
					bad++
				}
				fmt.Fprintln(cmd.OutOrStdout(), line)
			}
			if bad > 0 {
				return fmt.Errorf("%d of %d nodes did not agree", bad, len(eps))
			}
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func containsAgree(line string) bool { return strings.Contains(line, "agrees with the majority") }
