package paxos

import (
	"fmt"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// Acceptor is the acceptor's state and decisions (§4). Its promised ballot
// and accepted entries are durable: every change it makes comes back as a
// Record in its output, and the shell persists those records before the
// reply leaves.
type Acceptor struct {
	id       uint32
	promised uint64
	// rebuilt: this replica's disk was lost and made anew (SetRebuilt).
	rebuilt  bool
	accepted map[uint64]*messages.Entry
	// chosenUpto is the highest instance a master told this acceptor was
	// chosen. Reported in promises as a hint; not durable.
	chosenUpto uint64
	// lazy holds instances accepted by a lazy Accept and not since by a
	// durable one: their records may not be on disk, so a durable Accept of
	// the same entry must record it again before acknowledging it.
	lazy map[uint64]bool
	// durablePromised is the highest ballot the records handed out by
	// non-lazy steps cover. A lazy Accept raises promised in memory only;
	// any answer that relies on more than durablePromised records it first.
	durablePromised uint64
	// seen is the highest ballot of any prepare, refused or not, reported
	// to the master so it can raise its ballot above it (§5.2).
	seen uint64
	// The master lease this acceptor grants (§5.2): every acceptance under
	// a ballot grants its owner leaseTimeout from the moment it arrives, and
	// until then prepares from any other node are refused. Not durable:
	// StartLease assumes, after a restart, a grant made just before the
	// crash.
	leaseTimeout time.Duration
	leaseNode    uint32
	leaseUntil   time.Time
	// leaseBallot is the ballot of the grant: a master that handed
	// mastership over under a ballot releases the grants made under it or
	// below (Prepare.handover_ballot), never a later mastership's.
	leaseBallot uint64
	// truncated: the log up to here is let go of after a snapshot (§5.5).
	// Prepares from at or below it are refused, and accepts there are not
	// stored: what was accepted there is no longer known here.
	truncated uint64
	// marked: the log was marked (MarkLog) when the highest instance
	// accepted was markedUpto; the next Truncate carries forward only
	// what was accepted up to there.
	marked     bool
	markedUpto uint64
	// incarnation is this replica's (§5.1): a request for a vote that
	// names another (the sender's configuration records the incarnation
	// this replica had before it lost its disk) is refused, with this one
	// named, so the master replaces it; until then it votes for nothing.
	incarnation uint64
	// fresh: the acceptor started on an empty disk and has not yet been
	// asked for a vote under its own incarnation. It may be a replica that
	// lost its disk, and votes of its lost incarnation may count wherever
	// the configuration records no incarnation for it: it answers nothing
	// but requests that name its own (§5.1).
	fresh bool
	// bootstrap is the set of incarnations a poll of a brand-new group
	// found fresh and empty, as a Prepare naming this incarnation carried
	// it; durable (Proven) and reported in promises.
	bootstrap []*messages.Member
	// maxPromiseBytes is the byte budget of one Promise's accepted
	// entries (SetMaxPromiseBytes).
	maxPromiseBytes int
	// planted is the known bug this acceptor runs with (tests only).
	planted PlantedBug
}

// DefaultMaxPromiseBytes is the byte budget of the accepted entries one
// Promise carries. An acceptor that accepted more above a candidate's first
// instance (up to a pipeline window of instances of up to 1 MiB each, or a
// whole untruncated log) answers in pages (Promise.accepted_upto): one
// Promise of 90 MB exceeded the peer transport's message limit
// (cluster.DefaultMaxMessageBytes, 64 MiB), was never delivered, and the
// candidate asked again for ever. A page always holds at least one entry,
// so a Promise is at most the budget or one entry, whichever is larger,
// plus its few other fields. The candidate asks for one page at a time per
// acceptor, so pages do not pile up in the transport's batches.
const DefaultMaxPromiseBytes = 4 << 20

// SetMaxPromiseBytes sets the byte budget of one Promise's accepted
// entries (0: DefaultMaxPromiseBytes). The simulator makes it tiny so that
// promises come in pages routinely.
func (a *Acceptor) SetMaxPromiseBytes(n int) {
	if n <= 0 {
		n = DefaultMaxPromiseBytes
	}
	a.maxPromiseBytes = n
}

// Plant switches a known bug on in this acceptor (tests only: see
// PlantedBug).
func (a *Acceptor) Plant(bug PlantedBug) { a.planted = bug }

// SetBootstrap restores the bootstrap set recorded before a restart.
func (a *Acceptor) SetBootstrap(set []*messages.Member) { a.bootstrap = set }

// Bootstrap returns the recorded bootstrap set, nil if none.
func (a *Acceptor) Bootstrap() []*messages.Member { return a.bootstrap }

// SetIncarnation sets the incarnation this acceptor answers as, and
// whether it is fresh (started on an empty disk and not yet asked for a
// vote under its incarnation: see Fresh).
func (a *Acceptor) SetIncarnation(inc uint64, fresh bool) {
	a.incarnation, a.fresh = inc, fresh && inc != 0
}

// Fresh reports whether the acceptor still answers only requests that
// name its incarnation.
func (a *Acceptor) Fresh() bool { return a.fresh }

// stranger reports whether a request naming incarnation to (0: the
// sender's configuration records none) may not be answered with a vote:
// it names another incarnation of this replica, or none while this one is
// fresh. A request naming this incarnation ends freshness (out.Proven).
func (a *Acceptor) stranger(to uint64, out *AcceptorOutput) bool {
	switch {
	case a.incarnation == 0:
		return false
	case to == a.incarnation:
		if a.fresh {
			a.fresh, out.Proven = false, true
		}
		return false
	case a.planted == BugCorruptVotesAtOnce:
		return false
	case to != 0:
		return true
	}
	return a.fresh
}

// empty reports whether the acceptor holds nothing at all, and never held
// anything: a rebuilt one (SetRebuilt) may have voted before it lost its
// disk, so it is not empty even with nothing in it.
func (a *Acceptor) empty() bool {
	return !a.rebuilt && a.promised == 0 && len(a.accepted) == 0 && a.truncated == 0
}

// SetRebuilt marks an acceptor whose disk was lost and made anew: it
// never counts as empty, so a group that lost every voter's data is never
// taken for a brand-new one (§5.1's poll).
func (a *Acceptor) SetRebuilt(rebuilt bool) { a.rebuilt = rebuilt }

// AcceptorOutput is what one acceptor step asks the shell to do, in order:
// persist Records, then send Reply and hand Learn to the local learner.
type AcceptorOutput struct {
	Records []*messages.Record
	// Lazy: the records need no fsync of their own and there is no reply
	// (a lazy Accept).
	Lazy  bool
	Reply *Envelope
	// Learn holds the entries just accepted; the local learner keeps them
	// until a Chosen notice names their ballot.
	Learn []*messages.Entry
	// Proven: the acceptor stopped being fresh (SetIncarnation); the shell
	// records that durably before the reply leaves.
	Proven bool
}

// NewAcceptor returns an acceptor with nothing promised or accepted.
func NewAcceptor(id uint32) *Acceptor {
	return &Acceptor{id: id, accepted: make(map[uint64]*messages.Entry), lazy: make(map[uint64]bool),
		maxPromiseBytes: DefaultMaxPromiseBytes}
}

// StartLease turns lease grants on with timeout and, as the acceptor may
// have granted one just before it stopped, holds a lease for the owner of
// its promised ballot until now+timeout. Call it once, after Restore.
func (a *Acceptor) StartLease(timeout time.Duration, now time.Time) {
	a.leaseTimeout = timeout
	if timeout > 0 && a.promised > 0 {
		a.leaseNode, a.leaseUntil, a.leaseBallot = BallotOwner(a.promised), now.Add(timeout), a.promised
	}
}

// LeaseHolder returns the node this acceptor grants the lease to at now,
// or 0.
func (a *Acceptor) LeaseHolder(now time.Time) uint32 {
	if now.Before(a.leaseUntil) {
		return a.leaseNode
	}
	return 0
}

// ReleaseLease drops a lease this acceptor granted to node under ballot
// or below: node stepped down holding no lease it could still serve reads
// on (ProposerOutput.ReleaseLease for its own acceptor, a resigned
// Heartbeat for the others'). A candidate whose acceptances reached only
// its own acceptor before a rival deposed it would otherwise keep every
// other candidate waiting out the grant (a fail-over of two lease
// timeouts instead of one), and a master that resigned for want of a
// majority would hold off the next election by a lease timeout. A grant
// under a higher ballot of node's (it campaigned again since the resigned
// heartbeat left) is kept.
func (a *Acceptor) ReleaseLease(node uint32, ballot uint64) {
	if a.leaseNode == node && a.leaseBallot <= ballot {
		a.leaseUntil = time.Time{}
	}
}

// grant gives the owner of ballot b the lease from now.
func (a *Acceptor) grant(b uint64, now time.Time) {
	if a.leaseTimeout > 0 {
		a.leaseNode, a.leaseUntil, a.leaseBallot = BallotOwner(b), now.Add(a.leaseTimeout), b
	}
}

// Promised returns the highest ballot this acceptor has promised.
func (a *Acceptor) Promised() uint64 { return a.promised }

// AcceptedAt returns the entry accepted at instance, or nil.
func (a *Acceptor) AcceptedAt(instance uint64) *messages.Entry { return a.accepted[instance] }

// Restore replays one durable record at startup.
func (a *Acceptor) Restore(rec *messages.Record) error {
	switch k := rec.Kind.(type) {
	case *messages.Record_Promise:
		a.promised = max(a.promised, k.Promise.Ballot)
		a.durablePromised = a.promised
	case *messages.Record_Truncated:
		a.truncate(k.Truncated.Upto)
	case *messages.Record_Accept:
		e := k.Accept
		if e.Instance == 0 || e.Value == nil {
			return fmt.Errorf("paxos: malformed accept record for instance %d", e.Instance)
		}
		if e.Instance <= a.truncated {
			a.promised = max(a.promised, e.Ballot)
			a.durablePromised = a.promised
			return nil
		}
		a.promised = max(a.promised, e.Ballot)
		a.durablePromised = a.promised
		if prev := a.accepted[e.Instance]; prev == nil || prev.Ballot <= e.Ballot {
			a.accepted[e.Instance] = e
		}
	}
	return nil
}

// Truncated returns the instance up to which this acceptor let go of its
// log (0: never).
func (a *Acceptor) Truncated() uint64 { return a.truncated }

// Truncate lets go of everything accepted up to upto, which a durable
// snapshot covers, and returns the checkpoint: the records that rebuild
// this acceptor's state without the older ones (the truncation point, the
// promise, and every entry accepted above upto). The shell writes them as
// a storage checkpoint, which deletes the older log segments (§5.5).
// Everything up to upto must be chosen (the snapshot applied it).
//
// After MarkLog the checkpoint deletes only the segments before the mark:
// the records since stay, and a replay reads them before the checkpoint.
// So it carries only the entries above upto and up to the highest
// instance accepted at the mark, each as accepted now, which a replay
// keeps over any older acceptance of its instance after the mark (a
// replay keeps the highest ballot). A snapshot taken while entries are
// accepted at full speed no longer writes them all again (their bytes can
// stall the log for a tenth of a second).
func (a *Acceptor) Truncate(upto uint64) []*messages.Record {
	if upto == 0 {
		return nil // nothing to let go of
	}
	a.truncate(upto)
	recs := []*messages.Record{
		{Kind: &messages.Record_Truncated{Truncated: &messages.TruncatedRecord{Upto: a.truncated}}},
		{Kind: &messages.Record_Promise{Promise: &messages.PromiseRecord{Ballot: a.durablePromised}}},
	}
	for _, e := range a.acceptedFrom(a.truncated + 1) {
		if a.marked && (e.Instance > a.markedUpto || a.planted == BugCheckpointForgetsBeforeMark) {
			break // written after the mark: the log keeps it
		}
		recs = append(recs, &messages.Record{Kind: &messages.Record_Accept{Accept: e}})
	}
	a.marked, a.markedUpto = false, 0
	return recs
}

// MarkLog notes that the shell marks the log here (storage.WAL.Mark): the
// next checkpoint (Truncate) keeps every record written after this point.
// A replica marks its log when it freezes the state for a snapshot, whose
// checkpoint comes once the snapshot is durable.
func (a *Acceptor) MarkLog() {
	a.marked, a.markedUpto = true, 0
	for i := range a.accepted {
		a.markedUpto = max(a.markedUpto, i)
	}
}

func (a *Acceptor) truncate(upto uint64) {
	if upto <= a.truncated {
		return
	}
	for i := range a.accepted {
		if i <= upto {
			delete(a.accepted, i)
			delete(a.lazy, i)
		}
	}
	a.truncated = upto
}

// HandlePrepare is phase 1b. A duplicate of the prepare already promised is
// answered again, with nothing new to persist. While another node holds the
// lease, a prepare for a new ballot is refused (§5.2): the master serves
// reads locally on the strength of that refusal.
func (a *Acceptor) HandlePrepare(m *messages.Prepare, now time.Time) AcceptorOutput {
	var out AcceptorOutput
	a.seen = max(a.seen, m.Ballot)
	if h := m.HandoverBallot; h != 0 && a.leaseNode == BallotOwner(h) && a.leaseBallot <= h {
		// The master of ballot h handed mastership to this candidate after
		// it stopped serving reads on any lease of h or below (handover.go).
		a.leaseUntil = time.Time{}
	}
	leased := m.Ballot > a.promised && now.Before(a.leaseUntil) && BallotOwner(m.Ballot) != a.leaseNode &&
		a.planted != BugIgnoreLease
	// A prepare from an instance this acceptor let go of cannot be
	// answered truthfully: its candidate must catch up first (§5.5).
	behind := a.truncated > 0 && max(m.FirstInstance, 1) <= a.truncated && a.planted != BugPromiseBelowTruncation
	stranger := a.stranger(m.ToIncarnation, &out)
	if !stranger && m.ToIncarnation != 0 && len(m.Bootstrap) > 0 && a.bootstrap == nil {
		a.bootstrap, out.Proven = m.Bootstrap, true
	}
	if m.Ballot < a.promised || m.Ballot == 0 || leased || behind || stranger {
		pr := &messages.Promise{From: a.id, Ballot: m.Ballot, Promised: a.promised, ChosenUpto: max(a.chosenUpto, a.truncated),
			Leased: leased, Truncated: a.truncated, Incarnation: a.incarnation, Fresh: a.fresh, Empty: a.empty(), Bootstrap: a.bootstrap}
		if leased {
			pr.LeaseRemainingUs = uint64(a.leaseUntil.Sub(now).Microseconds()) + 1
		}
		out.Reply = &Envelope{To: m.From, Msg: pr}
		return out
	}
	prior, wasEmpty := a.promised, a.empty()
	if m.Ballot > a.durablePromised {
		// New, or promised so far only in memory by a lazy Accept.
		a.promised = m.Ballot
		a.durablePromised = m.Ballot
		out.Records = append(out.Records, &messages.Record{Kind: &messages.Record_Promise{
			Promise: &messages.PromiseRecord{Ballot: m.Ballot}}})
	}
	// A repeated Prepare of the promised ballot from a later first
	// instance asks for the next page. It is answered from the acceptor's
	// state now, not when it promised: since then it can have accepted
	// nothing under a lower ballot (it promised not to), nor under a
	// higher one (it would have promised that and refused this), nor under
	// this one (its candidate proposes nothing before phase 1 is over).
	accepted, upto := a.promisePage(m.FirstInstance, m.Paged)
	out.Reply = &Envelope{To: m.From, Msg: &messages.Promise{
		From: a.id, Ballot: m.Ballot, Ok: true, Promised: a.promised,
		Accepted: accepted, AcceptedUpto: upto, FirstInstance: m.FirstInstance,
		ChosenUpto: a.chosenUpto, Prior: prior, Incarnation: a.incarnation,
		Fresh: a.fresh, Empty: wasEmpty, Bootstrap: a.bootstrap}}
	return out
}

// promisePage lists the entries accepted at or after first, in instance
// order, up to the byte budget if paged, and the last instance the list
// covers when the budget stopped it short of the end (0: it is complete).
// At least one entry is listed, so a candidate always gets further.
func (a *Acceptor) promisePage(first uint64, paged bool) ([]*messages.Entry, uint64) {
	all := a.acceptedFrom(first)
	if !paged {
		return all, 0 // a candidate that does not page takes any page for the whole
	}
	bytes := 0
	for n, e := range all {
		bytes += proto.Size(e)
		if bytes > a.maxPromiseBytes && n > 0 {
			return all[:n:n], all[n-1].Instance
		}
	}
	return all, 0
}

// acceptedFrom lists accepted entries at or after first, in instance order.
func (a *Acceptor) acceptedFrom(first uint64) []*messages.Entry {
	var es []*messages.Entry
	for i, e := range a.accepted {
		if i >= first {
			es = append(es, e)
		}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Instance < es[j].Instance })
	return es
}

// HandleAccept is phase 2b. Accepting under a ballot implies promising it,
// so an accept record also raises the promise on recovery. Re-accepting the
// same (instance, ballot) is acknowledged without a new record: duplicates
// change nothing.
//
// Accepting grants the ballot's owner the lease from now: the master counts
// its lease from the moment it sent the Accept (seq names it), earlier than
// any acceptor starts its own count.
func (a *Acceptor) HandleAccept(m *messages.Accept, now time.Time) AcceptorOutput {
	var out AcceptorOutput
	// A fresh acceptor still stores a lazy Accept naming no incarnation (a
	// learner's copy of the log, or a voter's the configuration does not
	// record yet): it is never answered, so it is no vote.
	storeOnly := m.Lazy && m.ToIncarnation == 0 && a.fresh
	if m.Ballot < a.promised || m.Ballot == 0 || (!storeOnly && a.stranger(m.ToIncarnation, &out)) {
		out.Reply = &Envelope{To: m.From, Msg: &messages.Accepted{
			From: a.id, Ballot: m.Ballot, Promised: a.promised, Seq: m.Seq, Seen: a.seen, Incarnation: a.incarnation, Fresh: a.fresh}}
		return out
	}
	a.promised = m.Ballot
	a.chosenUpto = max(a.chosenUpto, m.ChosenUpto)
	a.grant(m.Ballot, now)
	ack := &messages.Accepted{From: a.id, Ballot: m.Ballot, Ok: true, Promised: m.Ballot, Seq: m.Seq, Seen: a.seen,
		Truncated: a.truncated, Incarnation: a.incarnation}
	for _, e := range m.Entries {
		if e.Instance == 0 || e.Value == nil || (e.Instance <= a.truncated && a.planted != BugPromiseBelowTruncation) {
			continue // malformed or let go of: never acknowledge what was not stored
		}
		ack.Instances = append(ack.Instances, e.Instance)
		if prev := a.accepted[e.Instance]; prev != nil && prev.Ballot == m.Ballot {
			if a.lazy[e.Instance] && !m.Lazy {
				// Accepted lazily before: make it durable before acknowledging.
				delete(a.lazy, e.Instance)
				out.Records = append(out.Records, &messages.Record{Kind: &messages.Record_Accept{Accept: prev}})
			}
			continue
		}
		stored := &messages.Entry{Instance: e.Instance, Ballot: m.Ballot, Value: e.Value}
		a.accepted[e.Instance] = stored
		if m.Lazy {
			a.lazy[e.Instance] = true
		} else {
			delete(a.lazy, e.Instance)
		}
		out.Records = append(out.Records, &messages.Record{Kind: &messages.Record_Accept{Accept: stored}})
		out.Learn = append(out.Learn, stored)
	}
	if m.Lazy {
		out.Lazy = true
		return out // nobody counts this acceptance: no reply
	}
	if m.Ballot > a.durablePromised && len(out.Records) == 0 {
		// Nothing new to write, but the promise this answer implies is not
		// on disk yet (an empty Accept, or one raised by a lazy Accept).
		out.Records = append(out.Records, &messages.Record{Kind: &messages.Record_Promise{
			Promise: &messages.PromiseRecord{Ballot: m.Ballot}}})
	}
	a.durablePromised = m.Ballot // every record above carries the ballot
	out.Reply = &Envelope{To: m.From, Msg: ack}
	return out
}

// HandleConfirm answers whether this acceptor has promised any ballot above
// m.Ballot. It changes nothing and persists nothing: a promise that counts
// towards another master's majority was on disk, and so in memory, before
// it was sent.
func (a *Acceptor) HandleConfirm(m *messages.Confirm) AcceptorOutput {
	var out AcceptorOutput
	stranger := a.stranger(m.ToIncarnation, &out)
	out.Reply = &Envelope{To: m.From, Msg: &messages.Confirmed{
		From: a.id, Ballot: m.Ballot, Ok: m.Ballot != 0 && a.promised <= m.Ballot && !stranger,
		Promised: a.promised, Seq: m.Seq, Incarnation: a.incarnation, Fresh: a.fresh}}
	return out
}
