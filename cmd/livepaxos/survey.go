package main

import (
	"context"
	"errors"
	"sync"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/messages"
)

// errNoNodeAnswered is the one failure of the operator's read-only
// commands (members list, status, check): with any node answering they
// print what they found and succeed, since a dead node is exactly what an
// operator runs them to see.
var errNoNodeAnswered = errors.New("no node reachable")

// survey is what asking every node at once found: each node's own status,
// by node id, and why each address that did not answer did not.
type survey struct {
	byID map[uint32]*messages.StatusResponse
	// byEndpoint: each address that answered, with its answer.
	byEndpoint map[string]*messages.StatusResponse
	// errs: addresses that did not answer, with the reason.
	errs map[string]error
	// asked: every address asked, in order (the --endpoints first).
	asked []string
}

// surveyNodes asks every endpoint for its status at once (one hung node
// must not eat the others' time), then, when members is set, every member
// of the newest membership any of them knows on its recorded client
// address, unless that node already answered through another address. A
// node is up when it answered through any address: a live node is never
// reported unreachable because one of its addresses, or one endpoint
// before it, was not.
func surveyNodes(ctx context.Context, c *client.Client, eps []string, members bool) *survey {
	s := &survey{byID: map[uint32]*messages.StatusResponse{}, byEndpoint: map[string]*messages.StatusResponse{}, errs: map[string]error{}}
	s.ask(ctx, c, eps)
	if !members {
		return s
	}
	var more []string
	seen := map[string]bool{}
	for _, ep := range s.asked {
		seen[ep] = true
	}
	if m := s.newest(); m != nil {
		for _, mem := range m.Members {
			if _, answered := s.byID[mem.Id]; !answered && mem.ClientAddress != "" && !seen[mem.ClientAddress] {
				seen[mem.ClientAddress] = true
				more = append(more, mem.ClientAddress)
			}
		}
	}
	s.ask(ctx, c, more)
	return s
}

func (s *survey) ask(ctx context.Context, c *client.Client, eps []string) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ep := range eps {
		s.asked = append(s.asked, ep)
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := c.Status(ctx, ep)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.errs[ep] = err
				return
			}
			s.byEndpoint[ep] = st
			if old, ok := s.byID[st.NodeId]; !ok || old.LastApplied < st.LastApplied {
				s.byID[st.NodeId] = st
			}
		}()
	}
	wg.Wait()
}

// newest is the answer with the newest membership (the highest version):
// the one whose member list the others' rows follow.
func (s *survey) newest() *messages.StatusResponse {
	var best *messages.StatusResponse
	for _, st := range s.byID {
		if best == nil || st.MembershipVersion > best.MembershipVersion ||
			(st.MembershipVersion == best.MembershipVersion && st.NodeId < best.NodeId) {
			best = st
		}
	}
	return best
}

// answered reports whether any node answered.
func (s *survey) answered() bool { return len(s.byID) > 0 }
