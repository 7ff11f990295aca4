// Package core is the one replica core of livepaxos: the deterministic
// replica that production, the simulator and the tests all run.
//
// A Replica owns the three roles of package paxos (proposer, acceptor,
// learner) and everything that follows from the log around them: epochs
// (§5.3), the membership in force (§5.4), the routing of answers to the
// clients whose commands this replica proposed, runtime consistency
// checks (§6.2), the lease-serving decision (§5.2) and the snapshot
// policy (§5.5). It reads no clock, starts no goroutine and touches no
// disk or network: inputs come in as method calls, each with the time as
// a value, and what to do comes out as one batch, a Ready:
//
//	inputs                               Ready
//	  Step(msg)      a protocol message     Prove     the identity file
//	  Tick           the timers             Writes    records for the log, in order
//	  Persisted(n)   the log is durable     Messages  messages that may leave now
//	  Propose, Read  client requests        Apply     entries to apply, in order
//	  Applied        state machine results  Reads     reads to serve or refuse
//	  ...                                   Replies   answers to clients, ...
//
// The rule that makes it safe to run, stated once and kept here and
// nowhere else: DURABLE BEFORE VISIBLE. An acceptor's answer (a promise or
// an acceptance, and the entries it hands to its own learner) is held
// inside the Replica until the shell has reported, with Persisted, that
// every record handed out before it is durable; only then does it appear
// in Ready.Messages (or reach this replica's own proposer). A shell can
// therefore send every message of a Ready at once; its one duty is to
// report durability truthfully, in order: Persisted(n) means the first n
// records of Ready.Writes (numbered from 1 since New, lazy ones included)
// are on disk.
//
// Driver is the one shell loop built on it: it takes a Ready apart in a
// fixed order (identity, writes, messages, apply, reads, replies) against
// small interfaces at the edge (a LogStore, a Transport, a Clock, the
// client side, the snapshot device), so the actor shell of package actors,
// the simulator of package sim and the in-memory test cluster here differ
// only in their devices.
package core
