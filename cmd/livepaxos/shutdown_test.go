package main

import (
	"log/slog"
	"testing"
	"time"
)

// A stop that hangs (a disk that never answers an fsync) ends the process
// after the deadline, with its own exit status; one that finishes does not.
func TestStopWithinExitsWhenTheStopHangs(t *testing.T) {
	exited := make(chan int, 1)
	exitProcess = func(code int) { exited <- code }
	defer func() { exitProcess = defaultExit }()
	hang := make(chan struct{})
	defer close(hang)
	start := time.Now()
	stopWithin(50*time.Millisecond, slog.New(slog.DiscardHandler), func() { <-hang })
	select {
	case code := <-exited:
		if code != exitShutdownTimeout || time.Since(start) > 5*time.Second {
			t.Fatalf("exit %d after %v", code, time.Since(start))
		}
	default:
		t.Fatal("a hung stop did not end the process")
	}
	stopWithin(time.Minute, slog.New(slog.DiscardHandler), func() {})
	select {
	case code := <-exited:
		t.Fatalf("a stop that finished ended the process with %d", code)
	default:
	}
}
