package core

import (
	"time"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// View is what a replica says about itself for reads (§5.2): whether it is
// master, until when its lease lets it answer reads alone, and how far it
// has applied the log. The replica's own reads decide with a fresh one;
// a shell may keep the latest in an atomic so that other goroutines
// serve lease and stale reads with no trip through the replica (the
// cached lease is then the one in force: the decision is the same
// function, Decide, and a view is never later than the truth).
type View struct {
	Stopped  bool
	Master   bool
	MasterID uint32
	// MasterAddress is the master's address as the membership records it.
	MasterAddress string
	// LeaseUntil is when this master's lease runs out on its own clock
	// (zero: it holds none it may serve on, for instance before it
	// applied its epoch's first instance).
	LeaseUntil time.Time
	// Applied is the last instance applied, KnownChosen the highest known
	// chosen, Epoch the epoch in force as applied and EpochMaster the
	// master that started it (§5.3).
	Applied, KnownChosen, Epoch uint64
	EpochMaster                 uint32
}

// Decision is what becomes of one read.
type Decision struct {
	// Serve: answer from the state machine now; Lease says the master's
	// lease allowed it (else it is a stale read, or a confirmed one).
	Serve, Lease bool
	// Confirm: the read waits for the master to confirm its mastership
	// with a majority (a quorum read, or a lease read with no lease).
	Confirm bool
	// Otherwise it is refused with Code and Err.
	Code messages.ErrorCode
	Err  string
}

// Decide is the lease-serving decision (§5.2), for a read with the given
// consistency at now: a stale read is answered from this replica's state
// as it is; a lease read is answered so while this replica is master and
// its lease holds at now; any other read elsewhere than the master is
// refused as not master.
func (v *View) Decide(c messages.Consistency, now time.Time) Decision {
	refuse := func(code messages.ErrorCode, why string) Decision { return Decision{Code: code, Err: why} }
	switch {
	case v.Stopped:
		return refuse(messages.ErrorCode_ERROR_CODE_NOT_MASTER, "replica stopped")
	case c == messages.Consistency_CONSISTENCY_STALE:
		return Decision{Serve: true}
	case c != messages.Consistency_CONSISTENCY_LEASE && c != messages.Consistency_CONSISTENCY_QUORUM:
		return refuse(messages.ErrorCode_ERROR_CODE_INVALID, "unknown consistency")
	case !v.Master:
		return refuse(messages.ErrorCode_ERROR_CODE_NOT_MASTER, "not master")
	case c == messages.Consistency_CONSISTENCY_LEASE && now.Before(v.LeaseUntil):
		return Decision{Serve: true, Lease: true}
	}
	return Decision{Confirm: true}
}

// Response is the answer to a read decided d: the fields a served read
// carries (where the state stands; how far behind a stale read is), or
// the refusal naming the master. The state machine's answer goes in
// Result.
func (v *View) Response(requestID uint64, c messages.Consistency, d Decision) *messages.ClientResponse {
	if !d.Serve {
		return &messages.ClientResponse{RequestId: requestID, Code: d.Code, Error: d.Err, MasterId: v.MasterID,
			MasterAddress: v.MasterAddress}
	}
	resp := &messages.ClientResponse{RequestId: requestID, Instance: v.Applied, Epoch: v.Epoch}
	if c == messages.Consistency_CONSISTENCY_STALE && v.KnownChosen > v.Applied {
		resp.Behind = v.KnownChosen - v.Applied
	}
	return resp
}

// View returns the replica's view at now.
func (r *Replica) View(now time.Time) View {
	v := View{Stopped: r.stopped, Applied: r.applied, KnownChosen: r.l.KnownChosen()}
	v.Epoch, v.EpochMaster = r.epochs.Epoch()
	if r.p == nil {
		return v
	}
	v.Master, v.MasterID = r.p.IsMaster() && !r.stopped, r.p.MasterID()
	v.MasterAddress = r.Address(v.MasterID)
	if until, _ := r.p.LeaseUntil(now); v.Master {
		v.LeaseUntil = until
	}
	return v
}

// ReadAnswer is a read decided by the replica.
type ReadAnswer struct {
	ID uint64
	Decision
}

// Read decides read id of the given consistency: served or refused now
// (in Ready.Reads), or once a majority confirmed this master's mastership.
func (r *Replica) Read(id uint64, c messages.Consistency, now time.Time) {
	if r.stopped || r.p == nil {
		r.rd.Reads = append(r.rd.Reads, ReadAnswer{ID: id, Decision: Decision{Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER, Err: "replica stopped"}})
		return
	}
	r.input(now, func() {
		v := r.View(now)
		d := v.Decide(c, now)
		if !d.Confirm {
			r.rd.Reads = append(r.rd.Reads, ReadAnswer{ID: id, Decision: d})
			return
		}
		r.proposerOut(r.p.Read(id, now), now)
	})
}

// confirmed answers a read the proposer confirmed (or refused).
func (r *Replica) confirmed(rr paxos.ReadResult, now time.Time) {
	d := Decision{Serve: rr.Code == messages.ErrorCode_ERROR_CODE_OK, Code: rr.Code, Err: rr.Err}
	r.rd.Reads = append(r.rd.Reads, ReadAnswer{ID: rr.ID, Decision: d})
}
