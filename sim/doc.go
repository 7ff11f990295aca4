// Package sim is the deterministic simulator of "Paxos Made Live" §6: it
// runs N replicas of the real role logic of package paxos in one goroutine,
// under one seed, on simulated time, with a faulty network, faulty disks,
// drifting clocks and concurrent clients, and checks every step that the
// replicated log stays consistent.
//
// A run has the paper's two modes. In safety mode faults arrive at a high
// rate and only consistency is checked. In liveness mode the faults stop:
// the system must recover, and every operation submitted must then complete
// within a bounded simulated time, so deadlocks and livelocks fail the seed.
//
// Nothing in a run reads the wall clock, iterates a map where the order
// could matter, or starts a goroutine: the same seed gives the same run,
// step for step, and a failing seed is a complete bug report. The one
// exception is the linearizability checker, which runs after the simulation
// and only decides a verdict.
//
// The shell contract the simulator models is the one in actors: acceptor
// records are durable (a simulated group-commit fsync) before the
// acceptor's reply leaves; learner records are lazy and ride on the next
// fsync, so a crash may lose them, never out of order.
package sim
