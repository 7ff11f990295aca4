package actors

import (
	"context"
	"fmt"
	"time"

	"github.com/livepaxos/livepaxos/core"
	"github.com/livepaxos/livepaxos/paxos"
)

// ErrNoSuccessor: TransferMastership found no voter to hand mastership to,
// or this replica is not master.
var ErrNoSuccessor = paxos.ErrNoSuccessor

// Leave tells every other member that this replica is about to stop on
// purpose, so that a master stops waiting on its acceptances at once
// rather than after a retransmission interval. Call it after
// TransferMastership, just before Close.
func (r *Replica) Leave() {
	r.mu.Lock()
	sys, running := r.sys, !r.closed
	r.mu.Unlock()
	if !running || sys == nil || r.stopped.Load() {
		return
	}
	sys.Root.Send(r.pid(r.cfg.NodeID, CoreName), &localRequest{run: func(d *core.Driver) { d.Leave() }})
}

// TransferMastership has this replica, master, hand mastership to voter to
// (0: the most caught-up voter) without a fail-over's outage
// (paxos/handover.go): it stops taking commands and serving lease reads,
// has what it has in flight chosen, and tells the successor to campaign at
// once; the acceptors release its lease to the successor. It returns the
// new master once this replica knows it, or ctx's error (the handover may
// still complete). Use it before stopping a master (a restart, a deploy).
func (r *Replica) TransferMastership(ctx context.Context, to uint32) (uint32, error) {
	r.mu.Lock()
	sys, running := r.sys, !r.closed
	r.mu.Unlock()
	if !running || sys == nil || r.stopped.Load() {
		return 0, fmt.Errorf("%w: replica stopped", ErrNoSuccessor)
	}
	select {
	case <-r.started:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	res := make(chan error, 1)
	sys.Root.Send(r.pid(r.cfg.NodeID, CoreName), &localRequest{run: func(d *core.Driver) {
		res <- d.TransferMastership(to)
	}})
	select {
	case err := <-res:
		if err != nil {
			return 0, err
		}
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	// The published view names the successor once its heartbeat arrives.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if id, self := r.Master(); id != 0 && id != r.cfg.NodeID && !self {
			return id, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
		}
	}
}
