package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/livepaxos/livepaxos/client"
)

func newElectCmd() *cobra.Command {
	var f clientFlags
	var ttl time.Duration
	var observe bool
	cmd := &cobra.Command{
		Use:   "elect NAME VALUE | elect NAME --observe",
		Short: "Campaign in a leader election (or observe its leaders)",
		Long: `Campaign for the election NAME: wait in line for its lock, then publish VALUE
as the leader's (the key NAME, bound to the session), print "elected NAME
VALUE", and lead until interrupted (then resign: exit 0) or until the session
ends (exit 1). With --observe, print each leader's value as it is elected
("leader VALUE", or "none" when a leader went).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if observe && len(args) == 1 || !observe && len(args) == 2 {
				return nil
			}
			return fmt.Errorf("%w: want elect NAME VALUE, or elect NAME --observe", errUsage)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.untilInterrupted(func(sigs context.Context, c *client.Client) error {
				w := cmd.OutOrStdout()
				if observe {
					for v := range c.Observe(sigs, args[0]) {
						if v == nil {
							fmt.Fprintln(w, "none")
						} else {
							fmt.Fprintf(w, "leader %s\n", v)
						}
					}
					return nil
				}
				s, err := c.NewSession(sigs, client.SessionOptions{TTL: ttl})
				if err != nil {
					return err
				}
				defer closeSession(s, f.timeout)
				l, err := s.Campaign(sigs, args[0], []byte(args[1]))
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "elected %s %s\n", args[0], args[1])
				select {
				case <-l.Lost():
					return fmt.Errorf("leadership of %s lost: %v", args[0], s.Err())
				case <-sigs.Done():
					ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
					defer cancel()
					return l.Resign(ctx)
				}
			})
		},
	}
	f.add(cmd)
	cmd.Flags().DurationVar(&ttl, "ttl", client.DefaultSessionTTL, "the session's TTL")
	cmd.Flags().BoolVar(&observe, "observe", false, "print the election's leaders instead of campaigning")
	return cmd
}
