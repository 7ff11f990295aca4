package client

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/tlsconf"
)

// maxMessageBytes bounds one gRPC message either way (as the nodes do).
const maxMessageBytes = 16 << 20

// nodeConn is the client's connections to one node's client port: Conns
// gRPC connections, each with at most one open Stream for writes and
// reads. Unary calls use the first connection.
type nodeConn struct {
	addr  string
	ccs   []*grpc.ClientConn
	kvs   []messages.KVClient
	slots []streamSlot
}

// streamSlot holds one connection's Stream, opened on first use and
// again after it breaks.
type streamSlot struct {
	mu      sync.Mutex
	st      *muxStream
	opening chan struct{} // closed when the open under way ends
	err     error         // of the last open that failed
}

func dialNode(addr string, conns int, tlsCfg *tls.Config) (*nodeConn, error) {
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = tlsconf.ClientCredentials(tlsCfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.MaxCallSendMsgSize(maxMessageBytes)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
		// A node that comes back is found within a second or two; one
		// that does not answer a connect is given up on after 3 s.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 3 * time.Second,
		}),
	}
	n := &nodeConn{addr: addr, slots: make([]streamSlot, conns)}
	for range conns {
		cc, err := grpc.NewClient(addr, opts...)
		if err != nil {
			n.close()
			return nil, err
		}
		n.ccs = append(n.ccs, cc)
		n.kvs = append(n.kvs, messages.NewKVClient(cc))
	}
	return n, nil
}

func (n *nodeConn) close() {
	for i := range n.slots {
		s := &n.slots[i]
		s.mu.Lock()
		st := s.st
		s.mu.Unlock()
		if st != nil {
			st.close()
		}
	}
	for _, cc := range n.ccs {
		cc.Close()
	}
}

// stream returns connection i's open Stream, opening one if there is none
// or it broke. It waits for the open at most until ctx ends; an open that
// fails means nothing was sent (the error says why: refused, TLS, ...).
func (n *nodeConn) stream(ctx context.Context, i, queueLen int) (*muxStream, error) {
	s := &n.slots[i]
	s.mu.Lock()
	if s.st != nil && !s.st.broken() {
		st := s.st
		s.mu.Unlock()
		return st, nil
	}
	if s.opening == nil {
		ch := make(chan struct{})
		s.opening = ch
		go func() {
			st, err := openStream(n.kvs[i], queueLen)
			s.mu.Lock()
			s.st, s.err, s.opening = st, err, nil
			s.mu.Unlock()
			close(ch)
		}()
	}
	ch := s.opening
	s.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, errors.Join(errNotSent, errConnectTimeout)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, errors.Join(errNotSent, s.err)
	}
	if s.st == nil || s.st.broken() {
		return nil, errNotSent
	}
	return s.st, nil
}

// errConnectTimeout: a node did not accept a connection in time.
var errConnectTimeout = errors.New("no connection in time")

// ready waits, at most until ctx ends, for the node's first connection to
// be up, so that a unary call that fails after it was certainly sent can
// be told from one that never left (errNotSent).
func (n *nodeConn) ready(ctx context.Context) error {
	cc := n.ccs[0]
	cc.Connect()
	for {
		state := cc.GetState()
		switch state {
		case connectivity.Ready:
			return nil
		case connectivity.TransientFailure, connectivity.Shutdown:
			return errNotSent
		}
		if !cc.WaitForStateChange(ctx, state) {
			return errors.Join(errNotSent, errConnectTimeout)
		}
	}
}
