// Package sim is the deterministic simulator of "Paxos Made Live" §6: it
// runs N replicas of the production replica core (package core, behind
// the same core.Driver the actor shell uses) in one goroutine, under one
// seed, on simulated time, with a faulty network, faulty disks, drifting
// clocks and concurrent clients, and checks every step that the
// replicated log stays consistent.
//
// What is here is only what a simulator needs around the core: the
// simulated devices a node gives its Driver (disk.go: a write-ahead log
// with group commit and torn writes; network.go; clock.go; snapshots.go:
// snapshot files and their transfer; node.go ties them to a replica), the
// faults (faults.go, members.go: an operator changing the membership), the
// clients (client.go) and the checker (check.go, expect.go,
// linearizability.go), which holds the replicas to invariants it computes
// on its own from what they do (observe.go). It has no wiring of its own:
// nothing here calls a proposer, an acceptor or a learner.
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
// Planted bugs (paxos.PlantedBug) are a setting of the replicas
// (Config.Planted): they act in the production core, and each must be
// caught by its own invariant (planted_test.go).
package sim
