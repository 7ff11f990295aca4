package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/livepaxos/livepaxos/client"
)

// clientRun is what a client command does once connected: it is given a
// client and a context bounded by --timeout.
type clientRun func(ctx context.Context, c *client.Client) error

// clientCmd makes cmd a command that talks to a cluster: it takes the
// client flags (--endpoints, --timeout, TLS, --log-level), and when run it
// calls setup with its arguments (and the flags) before any connection is
// made, so that a usage error or unreadable input costs no dial, then runs
// what setup returns with a client.
func clientCmd(cmd *cobra.Command, setup func(cmd *cobra.Command, args []string, f *clientFlags) (clientRun, error)) *cobra.Command {
	var f clientFlags
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		run, err := setup(cmd, args, &f)
		if err != nil {
			return err
		}
		return f.withClient(run)
	}
	f.add(cmd)
	return cmd
}

// printAnswer is a clientRun that makes one call and prints its answer
// with format.
func printAnswer[T any](cmd *cobra.Command, format string, call func(ctx context.Context, c *client.Client) (T, error)) clientRun {
	return func(ctx context.Context, c *client.Client) error {
		v, err := call(ctx, c)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), format, v)
		return nil
	}
}

// untilInterrupted is withClient for a command that runs until it is
// interrupted (elect, lock, watch): run's context ends on SIGINT or
// SIGTERM, not after --timeout.
func (f *clientFlags) untilInterrupted(run clientRun) error {
	c, err := f.dial(1)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, c)
}

// closeSession closes s, giving the master up to timeout to end it; a
// context from a command that was interrupted would not leave it that.
func closeSession(s *client.Session, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s.Close(ctx)
}

// endpointsCmd is clientCmd for a command that speaks to each of the
// --endpoints in turn (check, snapshot): run is given their list.
func endpointsCmd(cmd *cobra.Command, run func(ctx context.Context, c *client.Client, cmd *cobra.Command, eps []string) error) *cobra.Command {
	return clientCmd(cmd, func(cmd *cobra.Command, _ []string, f *clientFlags) (clientRun, error) {
		eps, err := f.endpointList()
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, c *client.Client) error { return run(ctx, c, cmd, eps) }, nil
	})
}

// askEach asks every endpoint at once (one hung node must not eat the
// others' time) and returns, in the endpoints' order, the line ask wrote
// for each and its verdict.
func askEach[V any](eps []string, ask func(ep string) (line string, v V)) ([]string, []V) {
	lines, verdicts := make([]string, len(eps)), make([]V, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lines[i], verdicts[i] = ask(ep)
		}()
	}
	wg.Wait()
	return lines, verdicts
}

// defaultTimeout gives a client command's --timeout another default than
// the usual 10 s (and shows it in the help).
func defaultTimeout(cmd *cobra.Command, d time.Duration) {
	cmd.Flags().Lookup("timeout").DefValue = d.String()
	cmd.Flags().Set("timeout", d.String())
}
