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
	if a.reader == nil {
		// The state machine cannot answer queries: the read goes through
		// the log, which is linearizable whatever was asked.
		ctx.RequestWithCustomSender(a.proposer, &messages.ClientRequest{RequestId: m.RequestId, Command: m.Query}, sender)
		return
	}
	if resp, ok := a.r.answerRead(a.reader, &a.lease, m, time.Now()); ok {
		ctx.Send(sender, resp)
		return
	}
	if len(a.waiting) >= MaxPendingReads {
		a.refuse(ctx, sender, m, messages.ErrorCode_ERROR_CODE_OVERLOADED, "too many reads waiting")
		return
	}
	a.nextID++
	a.waiting[a.nextID] = waitingRead{sender: sender, req: m}
	ctx.Send(a.proposer, &quorumRead{id: a.nextID})
}

// answerRead is the lease manager's decision (§5.2), given the lease as
// the proposer last told it: a stale read is answered from this replica's
// state as it is; a lease read is answered so while this replica is master
// and its lease holds at now; a read elsewhere than the master is refused
// as not master. ok is false when mastership must first be confirmed with
// a majority (a quorum read, or a lease read without a lease).
func (r *Replica) answerRead(reader Reader, lease *leaseUpdate, m *messages.ReadRequest, now time.Time) (resp *messages.ClientResponse, ok bool) {
	refuse := func(code messages.ErrorCode, msg string) (*messages.ClientResponse, bool) {
		return r.refusal(m.RequestId, lease.masterID, code, msg), true
	}
	switch {
	case r.stopped.Load():
		return refuse(messages.ErrorCode_ERROR_CODE_NOT_MASTER, "replica stopped")
	case m.Consistency == messages.Consistency_CONSISTENCY_STALE:
		return r.query(reader, m), true
	case m.Consistency != messages.Consistency_CONSISTENCY_LEASE && m.Consistency != messages.Consistency_CONSISTENCY_QUORUM:
		return refuse(messages.ErrorCode_ERROR_CODE_INVALID, "unknown consistency")
	case !lease.master:
		return refuse(messages.ErrorCode_ERROR_CODE_NOT_MASTER, "not master")
	case m.Consistency == messages.Consistency_CONSISTENCY_LEASE && now.Before(lease.until):
		return r.query(reader, m), true
	}
	return nil, false
}

// ServeRead serves a read on the calling goroutine when this replica can
// do so alone (§5.2): a stale read always; a lease read while this replica
// is master and its lease holds. ok is false otherwise: the read must go
// to the master's lease manager as a messages.ReadRequest (a quorum read
// always does, and a lease read without a lease confirms mastership
// there), or to this replica's when its state machine is not a Reader.
// The decision is the lease manager's own (answerRead). Safe for
// concurrent use.
func (r *Replica) ServeRead(m *messages.ReadRequest) (resp *messages.ClientResponse, ok bool) {
	reader, isReader := r.cfg.StateMachine.(Reader)
	lease := r.lease.Load()
	if !isReader || lease == nil || r.stopped.Load() {
		return nil, false
	}
	resp, ok = r.answerRead(reader, lease, m, time.Now())
	if !ok || resp.Code != messages.ErrorCode_ERROR_CODE_OK {
		return nil, false // refused here: the lease manager answers (or the master's does)
	}
	return resp, true
}

// query answers a read from the state machine as it is now.
func (r *Replica) query(reader Reader, m *messages.ReadRequest) *messages.ClientResponse {
	applied := r.appliedUpto.Load()
	resp := &messages.ClientResponse{RequestId: m.RequestId, Instance: applied, Epoch: r.epoch.Load()}
	if known := r.knownChosen.Load(); m.Consistency == messages.Consistency_CONSISTENCY_STALE && known > applied {
		resp.Behind = known - applied
	}
	result, err := reader.Query(m.Query)
	if err != nil {
		resp.Code, resp.Error = messages.ErrorCode_ERROR_CODE_INVALID, err.Error()
	} else {
		resp.Result = result
	}
	return resp
}

// refusal is a read's refusal naming the master as known.
func (r *Replica) refusal(id uint64, masterID uint32, code messages.ErrorCode, msg string) *messages.ClientResponse {
	return &messages.ClientResponse{RequestId: id, Code: code, Error: msg, MasterId: masterID,
		MasterAddress: r.view().addrs[masterID]}
}

// serve answers a read that waited for mastership to be confirmed.
func (a *leaseActor) serve(ctx actor.Context, to *actor.PID, m *messages.ReadRequest) {
	ctx.Send(to, a.r.query(a.reader, m))
}

func (a *leaseActor) refuse(ctx actor.Context, to *actor.PID, m *messages.ReadRequest, code messages.ErrorCode, msg string) {
	ctx.Send(to, a.r.refusal(m.RequestId, a.lease.masterID, code, msg))
}
