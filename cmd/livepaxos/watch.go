package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/livepaxos/livepaxos/client"
)

func watchOptions(prefix bool, from uint64) client.WatchOptions {
	return client.WatchOptions{Prefix: prefix, From: from}
}

func newWatchCmd() *cobra.Command {
	var f clientFlags
	var prefix bool
	var from uint64
	var count int
	cmd := &cobra.Command{
		Use:   "watch KEY [--prefix] [--from N]",
		Short: "Print a key's (or a prefix's) changes as they happen, in log order",
		Long: `Print each change of KEY (with --prefix, of every key that starts with it)
in log order, one line each: "INSTANCE put KEY VALUE" or "INSTANCE del KEY",
from instance --from N (default: from now), resuming at another node when one
fails. When the changes asked for are no longer held, the range's state is
printed instead ("INSTANCE state KEY VALUE" lines), then the changes after it.
--count N stops after N changes; otherwise it runs until interrupted.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 0 {
				return fmt.Errorf("%w: --count %d", errUsage, count)
			}
			return f.untilInterrupted(func(ctx context.Context, c *client.Client) error {
				ctx, cancel := context.WithCancel(ctx)
				defer cancel()
				w := cmd.OutOrStdout()
				seen := 0
				for u := range c.Watch(ctx, []byte(args[0]), watchOptions(prefix, from)) {
					if u.Reset {
						for _, kv := range u.KVs {
							fmt.Fprintf(w, "%d state %s %s\n", u.Instance, kv.Key, kv.Value)
						}
					}
					for _, e := range u.Events {
						if e.Delete {
							fmt.Fprintf(w, "%d del %s\n", e.Instance, e.Key)
						} else {
							fmt.Fprintf(w, "%d put %s %s\n", e.Instance, e.Key, e.Value)
						}
						if seen++; count > 0 && seen >= count {
							return nil
						}
					}
				}
				return nil
			})
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&prefix, "prefix", false, "watch every key that starts with KEY")
	cmd.Flags().Uint64Var(&from, "from", 0, "the first instance wanted (0: from now)")
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many changes (0: never)")
	return cmd
}
