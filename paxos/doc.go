// Package paxos holds the decisions of the three Multi-Paxos roles of
// "Paxos Made Live" §4: the proposer (which becomes the master), the acceptor
// and the learner.
//
// Everything here is deterministic, single-threaded Go. A role takes a
// message and the current time as a value and returns what to do: messages
// to send, records to persist and entries to apply. Nothing here reads a
// clock, starts a goroutine, or touches a disk or a network. The actors in
// package actors are the thin shells that feed mailbox messages and timer
// ticks in and carry the I/O out; the simulator drives the same code under a
// seed.
//
// The contract every shell keeps, stated once: the Records of an output are
// made durable (fsynced) before any of its Messages leave the process.
package paxos
