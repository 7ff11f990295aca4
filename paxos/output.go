package paxos

import (
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// Role names the actor a message is for. The shell routes by it.
type Role uint8

const (
	RoleProposer Role = iota + 1
	RoleAcceptor
	RoleLearner
)

func (r Role) String() string {
	switch r {
	case RoleProposer:
		return "proposer"
	case RoleAcceptor:
		return "acceptor"
	case RoleLearner:
		return "learner"
	}
	return "unknown"
}

// Envelope is one message to one node. To is a node id; the shell finds the
// actor from the message type (RoleOf).
type Envelope struct {
	To  uint32
	Msg proto.Message
}

// RoleOf returns the role that receives msg, or 0 for a message no role
// takes.
func RoleOf(msg proto.Message) Role {
	switch msg.(type) {
	case *messages.Prepare, *messages.Accept, *messages.Confirm:
		return RoleAcceptor
	case *messages.Promise, *messages.Accepted, *messages.Heartbeat, *messages.Confirmed:
		return RoleProposer
	case *messages.Chosen, *messages.CatchupRequest, *messages.CatchupResponse:
		return RoleLearner
	}
	return 0
}

// Reply is a response to a client whose command carries its return address.
type Reply struct {
	Cmd      *messages.Command
	Response *messages.ClientResponse
}
