// Package actors runs a livepaxos replica as a protoactor subtree: a
// "replica" parent that spawns and supervises the proposer, acceptor and
// learner actors (the lease manager and snapshotter join them in later
// releases).
//
// Each actor is a thin shell around the deterministic role logic in package
// paxos: it feeds mailbox messages and timer ticks in, persists records
// through the write-ahead log, and only then sends replies. A host embeds a
// replica with NewReplica and spawns Replica.Props under the name in
// Config.Name (peers address each other's role actors as
// "<name>/proposer", "<name>/acceptor", "<name>/learner").
package actors
