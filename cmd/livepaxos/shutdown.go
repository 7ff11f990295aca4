package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// shutdownDeadline bounds a node's stop after the hand-over: closing the
// client port, the replica (its log's last fsync) and the peer port. A
// disk that hangs must not keep a node that was told to stop from
// stopping: a service manager waits for it, then kills it without a word.
const shutdownDeadline = 10 * time.Second

// exitShutdownTimeout is the exit status of a node whose stop overran its
// deadline.
const exitShutdownTimeout = 3

// exitProcess ends the process; tests replace it.
var exitProcess = defaultExit

// defaultExit is os.Exit.
var defaultExit = os.Exit

// stopWithin runs stop and waits for it at most d, or until a second
// SIGINT or SIGTERM. If it does not finish, the node says why and exits at
// once with exitShutdownTimeout: what stop had not made durable was never
// acknowledged (durable before visible), so nothing acknowledged is lost.
func stopWithin(d time.Duration, logger *slog.Logger, stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		stop()
	}()
	again := make(chan os.Signal, 1)
	signal.Notify(again, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(again)
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
		return
	case <-timer.C:
		logger.Error("stop did not finish in time (a hung disk or peer?): exiting now", "deadline", d)
	case s := <-again:
		logger.Error("second signal while stopping: exiting now", "signal", s.String())
	}
	exitProcess(exitShutdownTimeout)
}
