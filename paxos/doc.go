// Package paxos holds the decisions of the three Multi-Paxos roles of
// "Paxos Made Live" §4: the proposer (which becomes the master), the acceptor
// and the learner.
//
// Everything here is deterministic, single-threaded Go. A role takes a
// message and the current time as a value and returns what to do: messages
// to send, records to persist and entries to apply. Nothing here reads a
// clock, starts a goroutine, or touches a disk or a network. The replica
// core of package core owns one of each role and everything that follows
// from their outputs (what is persisted before which message leaves, apply
// order, epochs, membership); production, the simulator and the tests run
// that core.
//
// The contract the core keeps for the roles, stated once: the Records of an
// acceptor's output are durable (fsynced) before its Reply leaves the
// process or reaches this replica's own proposer.
//
// The proposer is split by concern: proposer.go (its state, Step and Tick),
// quorum.go (majorities per configuration and incarnation), election.go
// (campaigns and phase 1), pipeline.go (phase 2, batching, the window in
// flight), lease.go (master leases and quorum reads), reconfig.go
// (membership changes and incarnations) and boost.go (ballot boosts).
package paxos
