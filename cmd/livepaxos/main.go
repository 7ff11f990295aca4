// Command livepaxos runs a node of a livepaxos cluster and talks to one:
// node; put, get, del, cas, txn; lock, elect, watch; status, members,
// limits, check, snapshot (and snapshot save), restore, health, certs and
// bench. `livepaxos --help` lists them with a line each.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// errUsage marks a bad flag or argument: exit status 2.
var errUsage = errors.New("usage")

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		var ce cmdExit
		if errors.As(err, &ce) {
			os.Exit(ce.code) // the command said it all
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "livepaxos:") { // client errors carry it already
			msg = "livepaxos: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "livepaxos",
		Short:         "A Multi-Paxos replicated key-value database and lock service",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w: %v (see '%s --help')", errUsage, err, c.CommandPath())
	})
	root.AddCommand(newNodeCmd(), newPutCmd(), newGetCmd(), newDelCmd(), newCasCmd(),
		newTxnCmd(), newStatusCmd(), newMembersCmd(), newLimitsCmd(), newSnapshotCmd(), newRestoreCmd(), newCheckCmd(), newHealthCmd(), newBenchCmd(), newCertsCmd(),
		newLockCmd(), newWatchCmd(), newElectCmd())
	return root
}
