package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/livepaxos/livepaxos/messages"
)

// MaxPendingReads bounds the reads a lease manager holds while mastership
// is being confirmed; more are refused as overloaded.
const MaxPendingReads = 65536

// leaseUpdate is the proposer's word to the lease manager on its lease:
// until when (on this process's clock) the master may answer reads alone.
// It is sent whenever it changes.
type leaseUpdate struct {
	until    time.Time
	master   bool
	masterID uint32
}

// quorumRead asks the proposer to confirm mastership for read id.
type quorumRead struct{ id uint64 }

// readReady is the proposer's answer to a quorumRead.
type readReady struct {
	id   uint64
	code messages.ErrorCode
	err  string
}

type waitingRead struct {
	sender *actor.PID
	req    *messages.ReadRequest
}

// leaseActor is the lease manager (§5.2). The acceptors grant the lease and
// the proposer counts it (the grant must be decided with the promise, and
// the count with the acknowledgements); the lease manager holds the result
// and serves reads with it. A lease read is answered from the state
// machine here, with no Paxos round and no disk write, while the lease
// holds; otherwise the read waits for the proposer to confirm mastership
// with a majority. Stale reads are answered by any replica.
type leaseActor struct {
	r        *Replica
	reader   Reader
	proposer *actor.PID
	lease    leaseUpdate
	waiting  map[uint64]waitingRead
	nextID   uint64
}

func newLeaseActor(r *Replica) actor.Actor {
	reader, _ := r.cfg.StateMachine.(Reader)
	return &leaseActor{r: r, reader: reader, waiting: make(map[uint64]waitingRead)}
}

func (a *leaseActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.proposer = a.r.pid(a.r.cfg.NodeID, ProposerName)
	case *leaseUpdate:
		a.lease = *m
	case *messages.ReadRequest:
		a.read(ctx, m)
	case *readReady:
		w, ok := a.waiting[m.id]
		if !ok {
			return
		}
		delete(a.waiting, m.id)
		if m.code != messages.ErrorCode_ERROR_CODE_OK {
			a.refuse(ctx, w.sender, w.req, m.code, m.err)
			return
		}
		a.serve(ctx, w.sender, w.req)
	}
}

func (a *leaseActor) read(ctx actor.Context, m *messages.ReadRequest) {
	sender := ctx.Sender()
	if sender == nil {
		return
	}
	if a.r.stopped.Load() {
		a.refuse(ctx, sender, m, messages.ErrorCode_ERROR_CODE_NOT_MASTER, "replica stopped")
		return
	}
	if a.reader == nil {
		// The state machine cannot answer queries: the read goes through
		// the log, which is linearizable whatever was asked.
		ctx.RequestWithCustomSender(a.proposer, &messages.ClientRequest{RequestId: m.RequestId, Command: m.Query}, sender)
		return
	}
	switch m.Consistency {
	case messages.Consistency_CONSISTENCY_STALE:
		a.serve(ctx, sender, m)
	case messages.Consistency_CONSISTENCY_LEASE, messages.Consistency_CONSISTENCY_QUORUM:
		switch {
		case !a.lease.master:
			a.refuse(ctx, sender, m, messages.ErrorCode_ERROR_CODE_NOT_MASTER, "not master")
		case m.Consistency == messages.Consistency_CONSISTENCY_LEASE && time.Now().Before(a.lease.until):
			a.serve(ctx, sender, m)
		case len(a.waiting) >= MaxPendingReads:
			a.refuse(ctx, sender, m, messages.ErrorCode_ERROR_CODE_OVERLOADED, "too many reads waiting")
		default:
			a.nextID++
			a.waiting[a.nextID] = waitingRead{sender: sender, req: m}
			ctx.Send(a.proposer, &quorumRead{id: a.nextID})
		}
	default:
		a.refuse(ctx, sender, m, messages.ErrorCode_ERROR_CODE_INVALID, "unknown consistency")
	}
}

// serve answers a read from the state machine as it is now.
func (a *leaseActor) serve(ctx actor.Context, to *actor.PID, m *messages.ReadRequest) {
	applied := a.r.appliedUpto.Load()
	resp := &messages.ClientResponse{RequestId: m.RequestId, Instance: applied, Epoch: a.r.epoch.Load()}
	if known := a.r.knownChosen.Load(); m.Consistency == messages.Consistency_CONSISTENCY_STALE && known > applied {
		resp.Behind = known - applied
	}
	result, err := a.reader.Query(m.Query)
	if err != nil {
		resp.Code, resp.Error = messages.ErrorCode_ERROR_CODE_INVALID, err.Error()
	} else {
		resp.Result = result
	}
	ctx.Send(to, resp)
}

func (a *leaseActor) refuse(ctx actor.Context, to *actor.PID, m *messages.ReadRequest, code messages.ErrorCode, msg string) {
	resp := &messages.ClientResponse{RequestId: m.RequestId, Code: code, Error: msg, MasterId: a.lease.masterID}
	resp.MasterAddress = a.r.view().addrs[resp.MasterId]
	ctx.Send(to, resp)
}
