// Package cluster configures protoactor remoting for a Paxos group whose
// members change through its log (§5.4).
//
// protoactor's defaults suit virtual actors on a trusted network, not a
// consensus group that must keep running when a peer misbehaves. This package
// builds the actor system and its remote with the limits a replica needs:
//
//   - peers.go parses and prints the initial membership given on the command
//     line (--peers, --learners), so that every node agrees on ids and
//     addresses; later the members change through the log.
//   - remote.go starts remoting with a raised gRPC message limit, small writer
//     batches, gRPC keepalive on both ends and no panic on a busy port.
//   - guard.go is a gRPC interceptor that keeps a node alive when a peer or a
//     stray client sends a message type it does not know, a garbled message, or
//     a batch with out-of-range indexes: protoactor would crash the process.
//   - logging.go routes protoactor's logs to the node's slog logger, quietly
//     (peerwatch.go reports a peer down and back once).
package cluster
