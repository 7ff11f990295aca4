// Package tests holds multi-process integration tests: each test starts real
// `livepaxos node` processes on 127.0.0.1, drives them with the Go client
// and the CLI, kills them by PID, damages their data directories, and checks
// what the paper ("Paxos Made Live") promises: acknowledged writes survive
// master failure, crashes of every node, and torn log tails; corrupt logs and
// bad input are refused.
//
// The binary comes from $LIVEPAXOS_BIN (set by `make test`); when it is
// unset the tests build it themselves, so `go test ./tests/` works alone.
// There is no non-test code here.
package tests
