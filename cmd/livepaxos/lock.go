package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/db"
)

// cmdExit ends the CLI with a command's own exit status, silently.
type cmdExit struct{ code int }

func (e cmdExit) Error() string { return fmt.Sprintf("command exited with status %d", e.code) }

func newLockCmd() *cobra.Command {
	var f clientFlags
	var ttl, lockDelay time.Duration
	var shared bool
	cmd := &cobra.Command{
		Use:   "lock NAME [flags] -- CMD [ARG...]",
		Short: "Run a command while holding a lock (its sequencer in LIVEPAXOS_SEQUENCER)",
		Long: `Open a session, take the lock NAME (waiting in line up to --timeout), and run
CMD while holding it, with the lock's sequencer in LIVEPAXOS_SEQUENCER (pass it
to what CMD writes to: 'livepaxos put --sequencer "$LIVEPAXOS_SEQUENCER" ...'
refuses once the lock is lost). If the session ends (its KeepAlives could not
reach a master within --ttl), CMD is killed and lock exits with status 1;
otherwise the lock is released when CMD ends, and lock exits with CMD's status.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 || len(args) < 2 {
				return fmt.Errorf("%w: want lock NAME -- CMD [ARG...]", errUsage)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if lockDelay < 0 || lockDelay > db.MaxLockDelay {
				return fmt.Errorf("%w: --lock-delay %v: want 0 to %v", errUsage, lockDelay, db.MaxLockDelay)
			}
			if ttl < db.MinSessionTTL || ttl > db.MaxSessionTTL {
				return fmt.Errorf("%w: --ttl %v: want %v to %v", errUsage, ttl, db.MinSessionTTL, db.MaxSessionTTL)
			}
			return f.untilInterrupted(func(sigs context.Context, c *client.Client) error {
				return runLocked(cmd, c, sigs, f.timeout, args[0], args[1:], client.SessionOptions{TTL: ttl},
					client.LockOptions{Shared: shared, LockDelay: lockDelay})
			})
		},
	}
	f.add(cmd)
	cmd.Flags().DurationVar(&ttl, "ttl", client.DefaultSessionTTL, "the session's TTL")
	cmd.Flags().DurationVar(&lockDelay, "lock-delay", 0, "how long the lock stays free after this session expires holding it (0: 15s)")
	cmd.Flags().BoolVar(&shared, "shared", false, "take the lock shared")
	return cmd
}

// runLocked runs the lock command with a client: sigs ends when the CLI is
// interrupted.
func runLocked(cmd *cobra.Command, c *client.Client, sigs context.Context, timeout time.Duration, name string, argv []string,
	sopts client.SessionOptions, lopts client.LockOptions) error {
	actx, cancel := context.WithTimeout(sigs, timeout)
	defer cancel()
	s, err := c.NewSession(actx, sopts)
	if err != nil {
		return err
	}
	l, err := s.Lock(actx, name, lopts)
	if err != nil {
		closeSession(s, timeout)
		return fmt.Errorf("lock %q: %w", name, err)
	}
	seq := db.FormatSequencer(l.Sequencer())
	fmt.Fprintf(cmd.ErrOrStderr(), "livepaxos: holding %s (sequencer %s)\n", name, seq)
	child := exec.Command(argv[0], argv[1:]...)
	child.Env = append(os.Environ(), "LIVEPAXOS_SEQUENCER="+seq)
	child.Stdin, child.Stdout, child.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
	if err := child.Start(); err != nil {
		closeSession(s, timeout)
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	select {
	case err := <-exited:
		closeSession(s, timeout) // releases the lock, no lock-delay
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return cmdExit{code: ee.ExitCode()}
		}
		return err
	case <-l.Lost():
		child.Process.Kill()
		<-exited
		return fmt.Errorf("lock %q lost (%v): command killed", name, s.Err())
	case <-sigs.Done():
		child.Process.Signal(syscall.SIGTERM)
		<-exited
		closeSession(s, timeout)
		return cmdExit{code: 130}
	}
}
