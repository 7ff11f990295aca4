package paxos

import (
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// Envelope is one message to one node (a node id): one replica core takes
// every role's messages.
type Envelope struct {
	To  uint32
	Msg proto.Message
}

// Reply is a response to a client whose command carries its return address.
type Reply struct {
	Cmd      *messages.Command
	Response *messages.ClientResponse
}
