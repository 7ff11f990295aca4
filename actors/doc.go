// Package actors runs a livepaxos replica as a protoactor subtree, and is
// the API for embedding one in your own actor system with your own state
// machine.
//
// The replica is the deterministic replica core of package core (which
// holds the proposer, acceptor and learner of package paxos, and the
// epochs, membership, leases, consistency checks and snapshot policy
// around them). The actors are its I/O shell only:
//
//   - "<name>" (Config.Name, default "replica") is the parent: it spawns
//     and supervises the two below; any failure stops the replica.
//   - "<name>/core" runs the core through core.Driver: it feeds it the
//     protocol messages, client requests and reads that arrive, a tick
//     every TickInterval and the log's durability reports, and does what
//     the core hands back: records to the write-ahead log
//     (storage.WAL), messages to peers, entries to the state machine,
//     answers to clients (shell.go). Peers and clients address it; the
//     role names ProposerName and LeaseName are kept and name it too.
//   - "<name>/snapshotter" is the snapshot device: it writes the snapshots
//     the core takes, serves them to peers in chunks and fetches a peer's
//     when the replica is behind what the peers still hold (§5.5).
//
// A host builds a Replica with NewReplica (which opens the data directory
// and replays it), spawns it with Start, and uses Propose, Read, Snapshot
// and ChangeMembers from the same process, or Client from another; Close
// stops the actors and releases the directory. Example shows it whole.
package actors
