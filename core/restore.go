package core

import (
	"time"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// Restore replays one durable record at startup, oldest first, after
// RestoreSnapshot if there was a snapshot.
func (r *Replica) Restore(rec *messages.Record) error {
	if err := r.a.Restore(rec); err != nil {
		return err
	}
	r.l.Restore(rec)
	if t, ok := rec.Kind.(*messages.Record_Truncated); ok {
		r.truncated = max(r.truncated, t.Truncated.Upto)
	}
	return nil
}

// FinishRestore completes the startup: every instance the log marks
// chosen is handed out to apply again (Ready.Apply, marked Replay: their
// clients were answered before), and the proposer starts as a follower
// above the ballot its own acceptor promised. A replica with history
// holds its first campaign for RestartGrace, so that it hears the current
// master before it could depose it.
func (r *Replica) FinishRestore(now time.Time) error {
	out, err := r.l.FinishRestore()
	if err != nil {
		return err
	}
	for _, e := range out.Apply {
		r.apply(e, false, now) // the proposer comes next, from the membership replayed
	}
	r.lastNow = now
	// Checksums are compared among the members as the log left them.
	r.checks.tally = paxos.NewChecksumTally(r.id, len(r.members.GetMembers()), r.cfg.ChecksumsKept)
	// The acceptor may have granted a lease just before it stopped:
	// honour it as if granted now (§5.2).
	r.a.StartLease(r.cfg.Proposer.LeaseTimeout, now)
	pcfg := r.cfg.Proposer
	pcfg.Fresh = r.a.Fresh()
	r.p = paxos.NewProposer(pcfg, now)
	r.p.MembershipApplied(r.members, r.membersAt, now) // as the log left it: a follower, nothing to emit
	r.l.SetPeers(memberIDs(r.members))
	r.p.LearnerProgress(r.l.Contiguous())
	r.p.ObserveBallot(r.a.Promised())
	r.p.HoldUntilApplied(r.a.Truncated())
	if r.a.Promised() > 0 {
		// It has been part of the group: give the master time to reach it
		// before campaigning.
		r.p.HoldElection(now, r.cfg.RestartGrace)
	}
	return nil
}

// RestoreHoles returns how many instances the log marked chosen without
// holding their value at startup: a snapshot was passed over (damaged) or
// the log checkpointed after it; they are learned again from peers.
func (r *Replica) RestoreHoles() uint64 { return r.l.RestoreHoles() }
