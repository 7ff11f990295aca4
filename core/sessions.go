package core

import (
	"errors"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/session"
)

// Sessions at the master (issue 16, item 1). A state machine that keeps
// sessions (db.KV) is a SessionStore; the Driver then keeps their
// deadlines in a session.Keeper while its replica is master: KeepAlives
// extend them with no log write, and a session whose deadline passed is
// expired through the log.

// SessionStore is implemented by state machines that keep sessions.
type SessionStore interface {
	// LiveSessions lists the sessions the applied log holds.
	LiveSessions() []session.Info
	// TakeSessionEvents returns the sessions opened and ended by the
	// commands applied since the last call, in log order.
	TakeSessionEvents() []session.Event
	// ExpireCommand is the command that expires session id.
	ExpireCommand(id uint64) []byte
}

// keepSessions brings the keeper in line with the replica's mastership: a
// master that applied its own epoch's start and holds its lease takes the
// sessions over; one that is no longer master forgets them.
func (d *Driver) keepSessions(v View, now time.Time) {
	if d.store == nil {
		return
	}
	own := v.Master && !v.LeaseUntil.IsZero() && v.EpochMaster == d.r.ID()
	switch {
	case own && !d.keeper.Master():
		d.keeper.TakeOver(now, d.store.LiveSessions())
	case !v.Master && d.keeper.Master():
		d.keeper.StepDown()
	}
}

// expireDue proposes the expiry of each session whose deadline passed.
func (d *Driver) expireDue(now time.Time) {
	if d.store == nil {
		return
	}
	for _, id := range d.keeper.Due(now) {
		d.r.Propose(&messages.Command{Payload: d.store.ExpireCommand(id)}, now)
	}
}

// KeepAlive extends a session, or each of a batch (answered with
// Clients.Answer: a ClientResponse whose result is a KeepAliveResult; a
// batch's sessions that ended are marked so). Only a master whose
// lease holds answers: a deposed one's promise would not bind its
// successor.
func (d *Driver) KeepAlive(req *messages.KeepAliveRequest, token any) {
	d.run(func() {
		now := d.h.Now()
		v := d.r.View(now)
		resp := &messages.ClientResponse{RequestId: req.RequestId, MasterId: v.MasterID, MasterAddress: v.MasterAddress, Epoch: v.Epoch}
		switch {
		case d.store == nil:
			resp.Code, resp.Error = messages.ErrorCode_ERROR_CODE_INVALID, "the state machine keeps no sessions"
		case !v.Master || !now.Before(v.LeaseUntil) || !d.keeper.Master():
			resp.Code, resp.Error = messages.ErrorCode_ERROR_CODE_NOT_MASTER, "not master (or no lease yet)"
		case req.Session == 0:
			// A batch: every session gets its own promise or its end.
			res := &messages.KeepAliveResult{Promises: make([]*messages.SessionPromise, len(req.Sessions))}
			for i, id := range req.Sessions {
				p := &messages.SessionPromise{Session: id}
				if deadline, _, err := d.keeper.KeepAlive(id, now); err != nil {
					p.Ended = true
				} else {
					p.ValidMs = uint64(deadline.Sub(now) / time.Millisecond)
				}
				res.Promises[i] = p
			}
			resp.Result, _ = proto.Marshal(res)
		default:
			deadline, ttl, err := d.keeper.KeepAlive(req.Session, now)
			switch {
			case errors.Is(err, session.ErrNoSession), errors.Is(err, session.ErrExpiring):
				resp.Code, resp.Error = messages.ErrorCode_ERROR_CODE_SESSION_EXPIRED, err.Error()
			case err != nil:
				resp.Code, resp.Error = messages.ErrorCode_ERROR_CODE_NOT_MASTER, err.Error()
			default:
				resp.Result, _ = proto.Marshal(&messages.KeepAliveResult{
					ValidMs: uint64(deadline.Sub(now) / time.Millisecond), TtlMs: uint64(ttl / time.Millisecond)})
			}
		}
		d.h.Answer(token, resp)
	})
}

// SessionKeeper returns the keeper, for tests and the simulator.
func (d *Driver) SessionKeeper() *session.Keeper { return d.keeper }
