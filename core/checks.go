package core

import (
	"errors"
	"fmt"
	"time"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// ErrDiverged stops a replica whose state's checksum differs from the one
// a majority of its group computed at the same instance (§6.2).
var ErrDiverged = errors.New("core: this replica's state diverged from the group's")

// maxChecksumBytes bounds a peer's reported checksum.
const maxChecksumBytes = 64

// checkState is the runtime consistency checks' side (§6.2).
type checkState struct {
	tally *paxos.ChecksumTally
	// waiters asked for a check: answered with the checksum value's
	// instance once it is proposed.
	waiters []uint64
	// checks counts verdicts on this replica's own checksum;
	// checkedInstance is the newest instance it agreed at.
	checks, checkedInstance uint64
	divergence              string
}

// RequestCheck has the master put a checksum value in the log at its next
// tick; id is answered (Ready.Answers) with its instance, or why not.
func (r *Replica) RequestCheck(id uint64, now time.Time) {
	if r.stopped || r.p == nil {
		r.rd.Answers = append(r.rd.Answers, Answer{ID: id, Msg: &messages.CheckResponse{Error: "replica stopped"}})
		return
	}
	r.input(now, func() {
		if !r.p.RequestCheck() {
			r.rd.Answers = append(r.rd.Answers, Answer{ID: id, Msg: &messages.CheckResponse{Error: "not master"}})
			return
		}
		r.checks.waiters = append(r.checks.waiters, id)
	})
}

// checksProposed answers the waiters once a checksum value is proposed,
// or once this replica is no longer master.
func (r *Replica) checksProposed(instances []uint64) {
	switch {
	case len(r.checks.waiters) == 0:
		return
	case len(instances) > 0:
		for _, id := range r.checks.waiters {
			r.rd.Answers = append(r.rd.Answers, Answer{ID: id, Msg: &messages.CheckResponse{Instance: instances[0]}})
		}
	case !r.p.IsMaster():
		for _, id := range r.checks.waiters {
			r.rd.Answers = append(r.rd.Answers, Answer{ID: id, Msg: &messages.CheckResponse{Error: "mastership lost"}})
		}
	default:
		return
	}
	r.checks.waiters = nil
}

// ChecksumComputed takes this replica's checksum of its state right after
// the checksum value at instance (Apply.Checksum): it is sent to every
// member and compared with theirs.
func (r *Replica) ChecksumComputed(instance uint64, sum []byte, now time.Time) {
	r.input(now, func() {
		for _, id := range memberIDs(r.members) {
			// Only voters' states are compared: a learner's report would
			// be dropped (admit), so it sends none.
			if id != r.id && r.isVoter() {
				r.route(paxos.Envelope{To: id, Msg: &messages.ChecksumReport{From: r.id, Instance: instance, Checksum: sum}})
			}
		}
		r.verdict(r.checks.tally.Record(instance, r.id, sum))
	})
}

// peerChecksum records a peer's report; a malformed one changes nothing.
func (r *Replica) peerChecksum(m *messages.ChecksumReport) {
	if paxos.MemberOf(r.members, m.From) == nil || m.From == r.id || len(m.Checksum) == 0 || len(m.Checksum) > maxChecksumBytes {
		return
	}
	r.verdict(r.checks.tally.Record(m.Instance, m.From, m.Checksum))
}

// verdict acts on what a comparison found: a replica that disagrees with
// its group's majority stops serving rather than spread bad state; a peer
// that does is reported loudly.
func (r *Replica) verdict(v paxos.Verdict) {
	if v.Instance == 0 {
		return
	}
	if r.cfg.Observer != nil {
		r.cfg.Observer.Checked(v)
	}
	if v.Agreed {
		r.checks.checks++
		r.checks.checkedInstance = max(r.checks.checkedInstance, v.Instance)
	}
	for _, n := range v.Diverged {
		r.checks.divergence = fmt.Sprintf("node %d's state diverged from the majority's at instance %d", n, v.Instance)
		r.cfg.Logger.Error("consistency check failed", "node", r.id, "diverged", n, "instance", v.Instance)
	}
	if v.SelfDiverged {
		r.checks.checks++
		r.checks.divergence = fmt.Sprintf("this node's state (node %d) diverged from the majority's at instance %d", r.id, v.Instance)
		r.fail(fmt.Errorf("%w: %s; stopping", ErrDiverged, r.checks.divergence))
	}
}
