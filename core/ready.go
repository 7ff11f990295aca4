package core

import (
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// Ready is what the replica asks its shell to do, in this order: write
// Prove, then Writes, send Messages, apply Apply (and hand the results
// back with Applied), serve Reads, and deliver the answers. Everything in
// it may happen at once: what had to wait for the disk has waited inside
// the replica (see the package comment).
type Ready struct {
	// Prove, when set, records durably that this data directory's
	// acceptor was asked for a vote under its own incarnation (§5.1): it
	// is no longer fresh, and it keeps the bootstrap set. Write it before
	// anything else of this batch, and synchronously.
	Prove *Prove
	// Writes are records for the log, in order (see Write).
	Writes []Write
	// Messages may leave now, each to its node.
	Messages []paxos.Envelope
	// Apply lists chosen entries to apply to the state machine, in
	// instance order, each once (see Apply); Applied takes the results.
	Apply []Apply
	// Reads are reads decided: served (answer from the state machine
	// now) or refused.
	Reads []ReadAnswer
	// Replies answer clients whose commands this replica proposed.
	Replies []Reply
	// Answers are the other answers to clients: consistency checks and
	// snapshots asked for.
	Answers []Answer
	// Snapshot, when set, asks for a snapshot of the state machine as of
	// now, after Apply (see SnapshotJob); SnapshotWritten reports it.
	Snapshot *SnapshotJob
	// Fetch, when set, asks for a peer's snapshot: this replica is behind
	// what its peers still hold in their logs (§5.5).
	Fetch *paxos.SnapshotOffer
	// Flush: proposals are queued; call Flush once the shell has taken in
	// what arrived meanwhile, so that they share instances (§4 batching).
	Flush bool
	// Committed: how long each instance this master proposed took from
	// its first Accept to chosen (for metrics: see Timings).
	Committed []time.Duration
	// Fatal, when set, stops the replica: a broken invariant or a state
	// found diverged. It has stopped serving by then.
	Fatal error
}

// Prove is the identity file's update (Ready.Prove).
type Prove struct {
	Bootstrap []*messages.Member
}

// WriteMode says how a Write reaches the disk.
type WriteMode uint8

const (
	// WriteSync records are fsynced; Persisted reports them.
	WriteSync WriteMode = iota
	// WriteLazy records ride on the next fsync and cause none: nothing
	// waits for them (learned values, chosen marks, lazy acceptances).
	WriteLazy
	// WriteCheckpoint records start a new log segment, or go after the
	// records that followed the last WriteMark; once they are durable
	// every segment before them (before that mark) is deleted (§5.5).
	// Persisted reports them like WriteSync.
	WriteCheckpoint
	// WriteMark carries no records: the log starts a new segment here,
	// which the next checkpoint keeps (storage.WAL.Mark). Nothing waits
	// for it.
	WriteMark
)

// Write is records for the log, after every earlier one.
type Write struct {
	Records []*messages.Record
	Mode    WriteMode
	// Upto is the number of records handed out up to and including this
	// write: once it is durable (and with it every record before), the
	// shell calls Persisted(Upto).
	Upto uint64
}

// held is an acceptor's answer waiting for the disk: it may leave once
// every record handed out before it (barrier) is durable. learn is what
// the acceptor hands its own learner at the same moment.
type held struct {
	barrier uint64
	reply   *paxos.Envelope
	learn   []*messages.Entry
}

// write hands records out for the log.
func (r *Replica) write(recs []*messages.Record, mode WriteMode) {
	if len(recs) == 0 {
		return
	}
	r.handed += uint64(len(recs))
	for _, rec := range recs {
		r.logBytes += uint64(proto.Size(rec))
	}
	if mode != WriteLazy {
		r.lastSync = r.handed
	}
	if k := len(r.rd.Writes) - 1; k >= 0 && r.rd.Writes[k].Mode == mode && mode != WriteCheckpoint {
		w := &r.rd.Writes[k]
		w.Records = append(w.Records, recs...)
		w.Upto = r.handed
		return
	}
	r.rd.Writes = append(r.rd.Writes, Write{Records: recs, Mode: mode, Upto: r.handed})
}

// Persisted tells the replica that the first upto records it handed out
// are durable: answers that waited for them leave.
func (r *Replica) Persisted(upto uint64, now time.Time) {
	r.input(now, func() {
		if upto > r.handed {
			upto = r.handed // a shell's slip must not release what is not written
		}
		r.durable = max(r.durable, upto)
		if r.checkpointAt != 0 && r.durable >= r.checkpointAt {
			r.truncated, r.checkpointAt = r.checkpointUpto, 0
		}
		r.release(now)
	})
}

// hold queues an acceptor's answer behind the records handed out so far.
func (r *Replica) hold(h held, now time.Time) {
	r.held = append(r.held, h)
	r.release(now)
}

// release lets go, in order, of the answers whose records are durable.
// This is the one place where "durable before visible" is kept.
func (r *Replica) release(now time.Time) {
	for len(r.held) > 0 && (r.held[0].barrier <= r.durable || r.cfg.Planted == paxos.BugReplyBeforePersist) {
		h := r.held[0]
		r.held[0] = held{}
		r.held = r.held[1:]
		r.deliver(h, now)
	}
	if len(r.held) == 0 {
		r.held = nil
	}
}

// deliver sends an acceptor's answer and hands its entries to the learner.
func (r *Replica) deliver(h held, now time.Time) {
	if h.reply != nil {
		if r.cfg.Observer != nil {
			r.cfg.Observer.Released(*h.reply)
		}
		r.route(*h.reply)
	}
	if len(h.learn) > 0 {
		r.learnerOut(r.l.HandleLearn(h.learn), now)
	}
}

// route sends env: to this replica's own roles at once (in order, after
// the step that sent it), to other nodes through Ready.Messages.
func (r *Replica) route(env paxos.Envelope) {
	if env.To == r.id {
		r.local = append(r.local, env.Msg)
		return
	}
	messages.StampCluster(env.Msg, r.cfg.Cluster)
	r.rd.Messages = append(r.rd.Messages, env)
}
