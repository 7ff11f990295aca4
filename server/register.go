package server

import (
	"sync/atomic"
	"time"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// registerLoop keeps this node's client address in the membership: as
// etcd members publish their client URLs, a node asks the master, through
// the log, to record the address it serves clients on whenever the
// configuration it applied records another one (or none). Clients given
// one node find the others, and every node can name the master's client
// address in its answers. It stops with Close.
func (s *Server) registerLoop() {
	t := time.NewTicker(s.cfg.RegisterEvery)
	defer t.Stop()
	var inFlight atomic.Bool
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if inFlight.Load() || !s.needsRegistration() {
			continue
		}
		if master, _ := s.replica.Master(); master == 0 {
			continue
		}
		inFlight.Store(true)
		self := s.replica.NodeID()
		req := &request{kind: kindMembers, deadline: time.Now().Add(s.cfg.RequestTimeout),
			members: &messages.MembersRequest{ClientAddress: &messages.Member{Id: self, ClientAddress: s.replica.ClientAddress()}}}
		s.dispatch(req, func(a answer) {
			defer inFlight.Store(false)
			if r, ok := a.msg.(*messages.ClientResponse); ok && r.Code == messages.ErrorCode_ERROR_CODE_OK {
				s.log.Info("client address recorded in the membership", "node", self, "client_address", s.replica.ClientAddress())
				return
			}
			// Another change in progress, an election: the next tick asks again.
			s.log.Debug("recording the client address", "node", self, "answer", a.msg, "err", a.err)
		})
	}
}

// needsRegistration reports whether this node is a member whose recorded
// client address differs from the one it serves on.
func (s *Server) needsRegistration() bool {
	addr := s.replica.ClientAddress()
	if addr == "" {
		return false
	}
	me := paxos.MemberOf(s.replica.Members(), s.replica.NodeID())
	return me != nil && me.ClientAddress != addr
}
