package core

import (
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// Apply is one chosen entry handed to the apply side, in instance order,
// each instance once. The epoch and the membership are the replica's own
// business, decided here the same way on every replica; the state machine
// gets the commands marked Run.
type Apply struct {
	Entry *messages.Entry
	// Epoch is the epoch in force once the entry applies (§5.3); NewEpoch:
	// the entry starts it, and the state machine observes it before the
	// entry's commands.
	Epoch    uint64
	NewEpoch bool
	// Commands says, per command of Entry.Value, in order, what happens
	// to it.
	Commands []CommandApply
	// Checksum: the entry is a checksum value (§6.2); the state machine
	// is checksummed right after it (ChecksumComputed takes the digest).
	Checksum bool
	// Replay: the entry is replayed from the log at startup; its clients
	// had their answers before the restart.
	Replay bool
}

// CommandApply is what happens to one command of an applied entry.
type CommandApply struct {
	// Run: hand the payload to the state machine's Apply; Applied takes
	// the result.
	Run bool
	// Answer: a client of this replica waits for the result. A state
	// machine that is a QuietApplier applies the others without computing
	// a result nobody reads.
	Answer bool
	// Admitted: the command's epoch was current (§5.3). A command not
	// admitted is applied nowhere and its client is told so.
	Admitted bool
	// Membership: a membership command (§5.4), applied by the replica
	// itself; Version is the membership version in force after it.
	Membership bool
	Version    uint64
}

// Result is the state machine's answer to one command marked Run.
type Result struct {
	Result []byte
	Err    error
}

// Reply answers a client whose command this replica proposed, routed by
// Cmd.ReplyAddress and Cmd.ReplyId.
type Reply struct {
	Cmd      *messages.Command
	Response *messages.ClientResponse
	// Err is the state machine's own error when Apply refused the command
	// (Response carries its text): a shell that answers a caller in the
	// same process hands it over as it is, so errors.Is works there.
	Err error
}

// awaited is a command handed to the state machine whose result is
// awaited: answered if this replica proposed it.
type awaited struct {
	cmd      *messages.Command // nil: nobody to answer
	instance uint64
	epoch    uint64
}

// ErrApplyOrder is why a replica stops when an entry reaches its apply
// side out of log order. It is an invariant failure (errors.Is matches
// paxos.ErrInvariant too).
var ErrApplyOrder = fmt.Errorf("%w: entries applied out of log order", paxos.ErrInvariant)

// apply hands one chosen entry to the apply side (reply: its clients may
// be answered; false when the log is replayed at startup).
func (r *Replica) apply(e *messages.Entry, reply bool, now time.Time) {
	if r.applied != 0 && e.Instance <= r.applied {
		// The learner hands entries out in log order; one that goes back
		// is a bug here, and the state machine must never see it.
		r.fail(fmt.Errorf("%w: instance %d handed to apply after instance %d", ErrApplyOrder, e.Instance, r.applied))
		return
	}
	a := Apply{Entry: e, Replay: !reply}
	if r.epochs.Enter(e) {
		a.NewEpoch = true
		epoch, master := r.epochs.Epoch()
		r.remember(mark{instance: e.Instance, epoch: epoch, master: master, epochSet: true})
	}
	a.Epoch, _ = r.epochs.Epoch()
	r.applied = e.Instance
	cmds := e.Value.GetCommands()
	if !e.Value.GetNoop() {
		a.Commands = make([]CommandApply, len(cmds))
	}
	for i, cmd := range cmds {
		if e.Value.GetNoop() {
			break
		}
		c := &a.Commands[i]
		c.Admitted = r.epochs.Admits(cmd)
		answer := reply && cmd.Origin == r.id && cmd.ReplyAddress != ""
		switch {
		case !c.Admitted:
			if answer {
				r.reply(Reply{Cmd: cmd, Response: paxos.MasterChanged(cmd, e.Instance)})
			}
		case cmd.Membership:
			c.Membership = true
			res, err := r.applyMembership(e.Instance, cmd.Payload, now)
			c.Version = r.members.GetVersion()
			if answer {
				resp := &messages.ClientResponse{RequestId: cmd.RequestId, Result: res, Instance: e.Instance, Epoch: a.Epoch}
				if err != nil {
					resp.Code, resp.Error = messages.ErrorCode_ERROR_CODE_INVALID, err.Error()
				}
				r.reply(Reply{Cmd: cmd, Response: resp, Err: err})
			}
		case r.cfg.Planted == paxos.BugDivergentApply && cmd.Origin != r.id && i == 0 && e.Instance%5 == 0:
			// The planted bug: this replica's state drifts while its log
			// agrees.
		default:
			c.Run, c.Answer = true, answer
			w := awaited{instance: e.Instance, epoch: a.Epoch}
			if answer {
				w.cmd = cmd
			}
			r.awaiting = append(r.awaiting, w)
		}
	}
	a.Checksum = e.Value.GetChecksum()
	if r.cfg.Observer != nil {
		r.cfg.Observer.Applying(&a)
	}
	r.rd.Apply = append(r.rd.Apply, a)
}

// Applied takes the state machine's results of the commands marked Run,
// in the order Ready.Apply listed them, and answers their clients.
func (r *Replica) Applied(results []Result, now time.Time) {
	if r.stopped {
		return
	}
	for _, res := range results {
		if len(r.awaiting) == 0 {
			r.fail(fmt.Errorf("%w: a result for a command that was not handed out", paxos.ErrInvariant))
			return
		}
		w := r.awaiting[0]
		r.awaiting[0] = awaited{}
		r.awaiting = r.awaiting[1:]
		if w.cmd == nil {
			continue
		}
		resp := &messages.ClientResponse{RequestId: w.cmd.RequestId, Result: res.Result, Instance: w.instance, Epoch: w.epoch}
		if res.Err != nil {
			resp.Code, resp.Error = errorCode(res.Err), res.Err.Error()
		}
		r.reply(Reply{Cmd: w.cmd, Response: resp, Err: res.Err})
	}
	if len(r.awaiting) == 0 {
		r.awaiting = nil
	}
}

// reply queues an answer, naming the master as this replica knows it.
func (r *Replica) reply(rep Reply) {
	if rep.Cmd.ReplyAddress == "" {
		return
	}
	resp := rep.Response
	if resp.MasterId == 0 && r.p != nil {
		resp.MasterId = r.p.MasterID()
	}
	resp.MasterAddress = r.Address(resp.MasterId)
	r.rd.Replies = append(r.rd.Replies, rep)
}

// applyMembership applies a membership command from the log, the same way
// on every replica: it takes effect only if its version follows the one in
// force and paxos.CheckMembershipChange allows it (one voter at a time).
// The result is the new version.
func (r *Replica) applyMembership(instance uint64, payload []byte, now time.Time) ([]byte, error) {
	next := &messages.Membership{}
	if err := proto.Unmarshal(payload, next); err != nil {
		return nil, fmt.Errorf("%w: does not decode: %v", ErrMembership, err)
	}
	if err := paxos.CheckMembershipChange(r.members, next); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMembership, err)
	}
	r.setMembers(next, instance, now)
	r.cfg.Logger.Info("membership changed", "node", r.id, "version", next.Version,
		"voters", paxos.MembershipVoters(next), "learners", paxos.MembershipLearners(next))
	return []byte(strconv.FormatUint(next.Version, 10)), nil
}

// setMembers makes m the membership in force from instance at on: the
// learner asks its members, the proposer counts with it.
func (r *Replica) setMembers(m *messages.Membership, at uint64, now time.Time) {
	r.members, r.membersAt = m, at
	r.remember(mark{instance: at, members: m})
	r.l.SetPeers(memberIDs(m))
	if r.p != nil { // at startup the proposer is made after the replay, from r.members
		r.proposerOut(r.p.MembershipApplied(m, at, now), now)
	}
}

// memberIDs lists every member's id, in order.
func memberIDs(m *messages.Membership) []uint32 {
	ids := make([]uint32, 0, len(m.GetMembers()))
	for _, mem := range m.GetMembers() {
		ids = append(ids, mem.Id)
	}
	return ids
}
