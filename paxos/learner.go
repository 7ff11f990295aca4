package paxos

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// LearnerConfig bounds a learner. Zero fields take defaults.
type LearnerConfig struct {
	ID    uint32
	Peers []uint32 // every voter, this node included
	// CatchupDelay is how long a known gap may last before the learner asks
	// a peer for the missing entries (the entry is usually just in flight
	// from the local acceptor).
	CatchupDelay time.Duration
	// CatchupInterval is how often an idle learner asks a peer whether it
	// missed anything, so a replica that is behind catches up on its own.
	CatchupInterval   time.Duration
	MaxCatchupEntries int
	MaxCatchupBytes   int
	// Planted is a known bug this learner runs with (tests only: see
	// PlantedBug).
	Planted PlantedBug
}

func (c *LearnerConfig) setDefaults() {
	orDefault(&c.CatchupDelay, 150*time.Millisecond)
	orDefault(&c.CatchupInterval, time.Second)
	orDefault(&c.MaxCatchupEntries, 512)
	orDefault(&c.MaxCatchupBytes, 2<<20)
}

// Learner learns which value each instance chose and hands the chosen values
// to the state machine strictly in instance order, each exactly once (§4).
// It learns from the master's Chosen notices matched against the entries its
// local acceptor accepted, and from peers' logs when it is behind.
type Learner struct {
	cfg LearnerConfig
	// chosen holds every chosen entry this replica knows, for applying and
	// for serving peers that catch up, down to its snapshot
	// (SnapshotTaken lets go of what a snapshot covers).
	chosen map[uint64]*messages.Entry
	// pending holds accepted entries above contiguous not yet known chosen.
	pending map[uint64]*messages.Entry
	// contiguous: every instance <= contiguous is chosen and handed out.
	contiguous uint64
	// notice is the latest Chosen notice: entries accepted under
	// notice.Ballot at instances <= notice.ChosenUpto are chosen.
	notice messages.Chosen
	// knownChosen is the highest instance any peer reported chosen.
	knownChosen uint64
	knownFrom   uint32
	behindSince time.Time
	lastAsk     time.Time
	askCursor   int
	// asked counts the catch-up requests sent to each peer and not yet
	// answered (at most maxUnanswered each: lost answers must not grow
	// it); a response from a peer not asked is not taken (Asked).
	asked map[uint32]int
	// unconfirmed holds catch-up entries this learner has no evidence of
	// yet, by instance: the value one or more peers sent and who sent it.
	// An entry is taken as chosen once enough distinct peers agree
	// (confirmedBy).
	unconfirmed map[uint64]*unconfirmedEntry
	// restore state
	restoreLatest map[uint64]*messages.Entry
	restoreMark   uint64
	// checkpointed: the log replayed began with a checkpoint (§5.5).
	checkpointed bool
	// restoreHoles counts instances the durable chosen mark covers whose
	// value the restore did not find (see FinishRestore).
	restoreHoles uint64
	// snapshot is the instance of this replica's newest snapshot (§5.5);
	// dropped is the highest instance whose entry it no longer holds.
	// Peers that need the log below dropped get the snapshot instead.
	snapshot uint64
	dropped  uint64
}

// SnapshotOffer asks the shell to fetch and install the snapshot a peer
// offered, as of Instance.
type SnapshotOffer struct {
	From     uint32
	Instance uint64
}

// LearnerOutput is what one learner step asks the shell to do. Records
// (learned values and chosen marks) may be persisted lazily: a chosen value
// can always be learned again from a majority.
type LearnerOutput struct {
	Records  []*messages.Record
	Messages []Envelope
	Apply    []*messages.Entry // contiguous chosen entries, in instance order
	// Install, when set, is a peer's snapshot to fetch: this replica is
	// behind the log its peers still hold.
	Install *SnapshotOffer
	// Violation, when set, is a broken invariant the learner found (two
	// values chosen for one instance): the shell must stop the replica.
	Violation error
}

// ErrInvariant reports a broken protocol invariant found at run time.
var ErrInvariant = errors.New("paxos: invariant violated")

// NewLearner returns a learner that knows nothing chosen.
func NewLearner(cfg LearnerConfig) *Learner {
	cfg.setDefaults()
	return &Learner{
		cfg:         cfg,
		chosen:      make(map[uint64]*messages.Entry),
		pending:     make(map[uint64]*messages.Entry),
		asked:       make(map[uint32]int),
		unconfirmed: make(map[uint64]*unconfirmedEntry),
	}
}

// unconfirmedEntry is a catch-up entry awaiting agreement (confirmedBy).
type unconfirmedEntry struct {
	entry *messages.Entry
	from  map[uint32]bool
}

// maxUnconfirmed bounds the entries awaiting agreement, in instances past
// the contiguous prefix: two catch-up answers' worth.
func (l *Learner) maxUnconfirmed() uint64 { return 2 * uint64(l.cfg.MaxCatchupEntries) }

// sourcesNeeded is how many distinct peers must send the same value for an
// instance before a catch-up entry is taken on their word alone: one more
// than the faults the group tolerates, so at least one of them is honest.
func (l *Learner) sourcesNeeded() int { return (len(l.cfg.Peers)-1)/2 + 1 }

// confirmedBy reports whether catch-up entry e from peer may be taken as
// chosen: it matches what this learner's acceptor accepted under the same
// ballot (one value per ballot), or it comes from the master whose Chosen
// notices this learner follows (Paxos trusts its master: one that lied
// could have two values chosen anyway), or enough distinct peers sent the
// same value (sourcesNeeded). Otherwise it waits in unconfirmed, and a
// peer that sends another value starts the count over: one of the two is
// wrong, and only agreement says which.
func (l *Learner) confirmedBy(e *messages.Entry, peer uint32) bool {
	if acc := l.pending[e.Instance]; acc != nil && acc.Ballot == e.Ballot && proto.Equal(acc.Value, e.Value) {
		return true
	}
	if peer != 0 && peer == l.notice.From {
		return true
	}
	need := l.sourcesNeeded()
	if need <= 1 {
		return true
	}
	u := l.unconfirmed[e.Instance]
	if u == nil || !proto.Equal(u.entry.Value, e.Value) {
		if e.Instance <= l.contiguous+l.maxUnconfirmed() {
			l.unconfirmed[e.Instance] = &unconfirmedEntry{entry: e, from: map[uint32]bool{peer: true}}
		}
		return false
	}
	u.from[peer] = true
	if len(u.from) < need {
		return false
	}
	delete(l.unconfirmed, e.Instance)
	return true
}

// maxUnanswered caps a peer's count of unanswered catch-up requests.
const maxUnanswered = 16

// Asked reports whether a catch-up response from peer would answer a
// request this learner sent it and has not had answered yet.
func (l *Learner) Asked(peer uint32) bool { return l.asked[peer] > 0 }

// Contradicts reports whether a catch-up entry disagrees with what this
// learner holds as evidence of a quorum's choice: the value it knows
// chosen at that instance, or the value its acceptor accepted there under
// the entry's own ballot (one value per ballot and instance).
func (l *Learner) Contradicts(e *messages.Entry) bool {
	if held := l.chosen[e.Instance]; held != nil {
		return !proto.Equal(held.Value, e.Value)
	}
	if acc := l.pending[e.Instance]; acc != nil && acc.Ballot == e.Ballot {
		return !proto.Equal(acc.Value, e.Value)
	}
	return false
}

// Contiguous returns the highest instance up to which everything is chosen
// and handed to the state machine.
func (l *Learner) Contiguous() uint64 { return l.contiguous }

// KnownChosen returns the highest instance known to be chosen anywhere.
func (l *Learner) KnownChosen() uint64 { return max(l.knownChosen, l.contiguous) }

// ChosenAt returns the chosen entry at instance, or nil if not known.
func (l *Learner) ChosenAt(instance uint64) *messages.Entry { return l.chosen[instance] }

// RestoreSnapshot tells a learner, before it replays the log, that the
// state machine was restored from its snapshot as of instance: everything
// up to it counts as chosen and applied. The log below it is still read,
// to serve peers that catch up, as far as it goes.
func (l *Learner) RestoreSnapshot(instance uint64) {
	l.snapshot = max(l.snapshot, instance)
	l.contiguous = max(l.contiguous, instance)
}

// SnapshotTaken records that this replica now has a snapshot as of
// instance, and lets go of the chosen entries up to it: peers that need
// them are offered the snapshot.
func (l *Learner) SnapshotTaken(instance uint64) {
	if instance <= l.snapshot || instance > l.contiguous {
		return
	}
	l.snapshot = instance
	for i := l.dropped + 1; i <= instance; i++ {
		delete(l.chosen, i)
	}
	l.dropped = instance
}

// InstallSnapshot moves the learner past a snapshot the shell installed
// into the state machine: everything up to instance is applied, and the
// instances after it are learned as usual.
func (l *Learner) InstallSnapshot(instance uint64, now time.Time) LearnerOutput {
	var out LearnerOutput
	if instance <= l.contiguous {
		return out
	}
	for i := l.contiguous + 1; i <= instance; i++ {
		delete(l.chosen, i)
		delete(l.pending, i)
	}
	l.contiguous = instance
	l.snapshot = max(l.snapshot, instance)
	l.dropped = max(l.dropped, instance)
	l.advance(&out, true)
	l.maybeAsk(&out, now)
	return out
}

// SnapshotInstance returns the instance of this replica's snapshot (0:
// none).
func (l *Learner) SnapshotInstance() uint64 { return l.snapshot }

// Restore replays one durable record at startup; FinishRestore completes it.
func (l *Learner) Restore(rec *messages.Record) {
	if l.restoreLatest == nil {
		l.restoreLatest = make(map[uint64]*messages.Entry)
	}
	switch k := rec.Kind.(type) {
	case *messages.Record_Accept:
		l.restoreLatest[k.Accept.Instance] = k.Accept
	case *messages.Record_Learned:
		// A learned value is chosen: no later record replaces it. The
		// acceptor may still accept a late Accept of an older ballot at
		// that instance, with another value (sim's
		// TestRegression_RestoreKeepsLearnedValue).
		l.chosen[k.Learned.Instance] = k.Learned
	case *messages.Record_Chosen:
		l.restoreMark = max(l.restoreMark, k.Chosen.Upto)
	case *messages.Record_Truncated:
		l.checkpointed = true
		l.dropped = max(l.dropped, k.Truncated.Upto)
	}
}

// RestoreHoles returns how many instances the log marked chosen without
// holding their value at restore (they are learned again from peers).
func (l *Learner) RestoreHoles() uint64 { return l.restoreHoles }

// FinishRestore marks every instance up to the durable chosen mark as chosen
// (once chosen, any later accept at an instance carries the same value, so
// the latest record for an instance holds it) and returns them to apply.
func (l *Learner) FinishRestore() (LearnerOutput, error) {
	var out LearnerOutput
	for i := uint64(1); i <= l.restoreMark; i++ {
		if l.chosen[i] != nil {
			continue // learned
		}
		e := l.restoreLatest[i]
		if e != nil && l.checkpointed && i > l.dropped {
			// The learned record that made this instance chosen here may
			// have gone with the segments a checkpoint deleted, and the
			// acceptor's record can be a stale value it accepted (it
			// never voted for the chosen one): only a master's notice or a
			// peer may say it is chosen again (sim seed 26383).
			l.knownChosen = max(l.knownChosen, l.restoreMark)
			continue
		}
		if e == nil {
			if i <= l.snapshot {
				continue // the snapshot has it
			}
			// The value went with a snapshot that is gone (damaged, so
			// passed over) or with log segments a checkpoint deleted: it
			// is learned again from peers. Without snapshots this cannot
			// happen; the simulator checks that it does not.
			l.knownChosen = max(l.knownChosen, l.restoreMark)
			l.restoreHoles++
			continue
		}
		l.chosen[i] = e
	}
	for i, e := range l.restoreLatest {
		if (i > l.restoreMark || l.checkpointed) && l.chosen[i] == nil && i > l.contiguous {
			l.pending[i] = e
		}
	}
	l.restoreLatest = nil
	l.advance(&out, false)
	return out, nil
}

// HandleLearn takes entries the local acceptor has durably accepted.
func (l *Learner) HandleLearn(entries []*messages.Entry) LearnerOutput {
	var out LearnerOutput
	for _, e := range entries {
		if e.Instance <= l.contiguous || l.chosen[e.Instance] != nil {
			continue
		}
		if prev := l.pending[e.Instance]; prev != nil && prev.Ballot > e.Ballot {
			continue
		}
		l.pending[e.Instance] = e
		if e.Ballot == l.notice.Ballot && e.Instance <= l.notice.ChosenUpto {
			l.chosen[e.Instance] = e
		}
	}
	l.advance(&out, true)
	return out
}

// HandleChosen takes a master's notice that entries accepted under its
// ballot up to ChosenUpto are chosen.
func (l *Learner) HandleChosen(m *messages.Chosen, now time.Time) LearnerOutput {
	var out LearnerOutput
	if m.Ballot > l.notice.Ballot || (m.Ballot == l.notice.Ballot && m.ChosenUpto > l.notice.ChosenUpto) {
		l.notice = messages.Chosen{From: m.From, Ballot: m.Ballot, ChosenUpto: m.ChosenUpto}
	}
	l.noteKnown(m.ChosenUpto, m.From, now)
	for i, e := range l.pending {
		if e.Ballot == m.Ballot && i <= m.ChosenUpto {
			l.chosen[i] = e
		}
	}
	if l.cfg.Planted == BugApplyOutOfOrder {
		l.plantedApplyEarly(&out)
	}
	l.advance(&out, true)
	l.maybeAsk(&out, now)
	return out
}

// HandleCatchupRequest serves a peer chosen entries from its first missing
// instance, bounded in count and bytes.
func (l *Learner) HandleCatchupRequest(m *messages.CatchupRequest) LearnerOutput {
	resp := &messages.CatchupResponse{From: l.cfg.ID, ChosenUpto: l.KnownChosen()}
	limit := min(int(m.MaxEntries), l.cfg.MaxCatchupEntries)
	if limit <= 0 {
		limit = l.cfg.MaxCatchupEntries
	}
	if first := max(m.FirstInstance, 1); l.snapshot > 0 && first <= l.snapshot && l.chosen[first] == nil {
		// The log from there is gone here: offer the snapshot instead.
		resp.SnapshotInstance = l.snapshot
		return LearnerOutput{Messages: []Envelope{{To: m.From, Msg: resp}}}
	}
	bytes := 0
	for i := max(m.FirstInstance, 1); i <= l.contiguous && len(resp.Entries) < limit; i++ {
		e := l.chosen[i]
		if e == nil {
			break
		}
		bytes += proto.Size(e)
		if bytes > l.cfg.MaxCatchupBytes && len(resp.Entries) > 0 {
			break
		}
		resp.Entries = append(resp.Entries, e)
	}
	return LearnerOutput{Messages: []Envelope{{To: m.From, Msg: resp}}}
}

// HandleCatchupResponse takes chosen entries from a peer and, if still
// behind, asks the same peer for the next chunk at once.
func (l *Learner) HandleCatchupResponse(m *messages.CatchupResponse, now time.Time) LearnerOutput {
	var out LearnerOutput
	if l.asked[m.From] > 1 {
		l.asked[m.From]--
	} else {
		delete(l.asked, m.From)
	}
	l.noteKnown(m.ChosenUpto, m.From, now)
	learned := false
	for _, e := range m.Entries {
		if e.Instance == 0 || e.Value == nil {
			continue
		}
		if held := l.chosen[e.Instance]; held != nil {
			if !proto.Equal(held.Value, e.Value) && out.Violation == nil {
				// Two different values chosen for one instance, by this
				// replica's account and a peer's: state that cannot be
				// trusted must not spread (§6.2); the shell stops.
				out.Violation = fmt.Errorf("%w: instance %d: this replica holds %v as chosen, node %d sent %v",
					ErrInvariant, e.Instance, held.Value, m.From, e.Value)
			}
			continue
		}
		if e.Instance <= l.contiguous {
			continue
		}
		if !l.confirmedBy(e, m.From) {
			continue
		}
		l.chosen[e.Instance] = e
		learned = true
		out.Records = append(out.Records, &messages.Record{Kind: &messages.Record_Learned{Learned: e}})
	}
	l.advance(&out, true)
	l.dropUnconfirmedBelow(l.contiguous)
	switch {
	case l.unconfirmed[l.contiguous+1] != nil:
		// The next instance waits for another peer's word: ask one.
		if peer := l.peerOtherThan(m.From); peer != 0 {
			l.ask(&out, peer, now)
		}
	case learned && l.KnownChosen() > l.contiguous:
		l.ask(&out, m.From, now)
	}
	if len(m.Entries) == 0 && m.SnapshotInstance > l.contiguous {
		out.Install = &SnapshotOffer{From: m.From, Instance: m.SnapshotInstance}
	}
	return out
}

// Tick asks a peer for missing entries when a gap has lasted, and now and
// then asks anyway, so a replica that missed every notice still catches up.
func (l *Learner) Tick(now time.Time) LearnerOutput {
	var out LearnerOutput
	l.maybeAsk(&out, now)
	if len(out.Messages) == 0 && now.Sub(l.lastAsk) >= l.cfg.CatchupInterval {
		if peer := l.nextPeer(); peer != 0 {
			l.ask(&out, peer, now)
		}
	}
	return out
}

func (l *Learner) noteKnown(upto uint64, from uint32, now time.Time) {
	if upto > l.knownChosen {
		l.knownChosen = upto
		l.knownFrom = from
	}
	if l.knownChosen > l.contiguous && l.behindSince.IsZero() {
		l.behindSince = now
	}
}

// NoteChosenAt tells the learner that peer from, which just answered this
// node (a promise, say), knows every instance up to upto chosen. If no
// source knows more, the learner's next catch-up asks that peer: the one
// it heard of before, possibly a master cut off since, would only be
// rotated away from after 4 catch-up delays (sim seed 1231).
func (l *Learner) NoteChosenAt(upto uint64, from uint32, now time.Time) {
	if from == 0 || from == l.cfg.ID || upto <= l.contiguous || upto < l.knownChosen {
		return
	}
	if upto == l.knownChosen {
		l.knownFrom = from // as far as the source heard of before, and just heard from
	}
	l.noteKnown(upto, from, now)
}

func (l *Learner) maybeAsk(out *LearnerOutput, now time.Time) {
	if l.knownChosen <= l.contiguous || l.behindSince.IsZero() {
		return
	}
	if now.Sub(l.behindSince) < l.cfg.CatchupDelay || now.Sub(l.lastAsk) < l.cfg.CatchupDelay {
		return
	}
	peer := l.knownFrom
	if peer == l.cfg.ID || peer == 0 || now.Sub(l.behindSince) >= 4*l.cfg.CatchupDelay {
		peer = l.nextPeer() // the peer we asked may be gone: rotate
	}
	if peer != 0 {
		l.ask(out, peer, now)
	}
}

func (l *Learner) ask(out *LearnerOutput, peer uint32, now time.Time) {
	l.lastAsk = now
	l.asked[peer] = min(l.asked[peer]+1, maxUnanswered)
	out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.CatchupRequest{
		From: l.cfg.ID, FirstInstance: l.contiguous + 1, MaxEntries: uint32(l.cfg.MaxCatchupEntries)}})
}

// SetPeers replaces the members a catch-up asks, as a membership change
// applied (§5.4).
func (l *Learner) SetPeers(ids []uint32) { l.cfg.Peers = append([]uint32(nil), ids...) }

// peerOtherThan is the next peer in turn that is not peer (0 if none).
func (l *Learner) peerOtherThan(peer uint32) uint32 {
	for range l.cfg.Peers {
		if p := l.nextPeer(); p != peer {
			return p
		}
	}
	return 0
}

// dropUnconfirmedBelow forgets entries awaiting agreement at or below
// upto: learned by now.
func (l *Learner) dropUnconfirmedBelow(upto uint64) {
	for i := range l.unconfirmed {
		if i <= upto {
			delete(l.unconfirmed, i)
		}
	}
}

// nextPeer rotates through the other members.
func (l *Learner) nextPeer() uint32 {
	for range l.cfg.Peers {
		p := l.cfg.Peers[l.askCursor%len(l.cfg.Peers)]
		l.askCursor++
		if p != l.cfg.ID {
			return p
		}
	}
	return 0
}

// advance hands out every newly contiguous chosen entry and, when mark is
// set, records how far the log is now known chosen.
func (l *Learner) advance(out *LearnerOutput, mark bool) {
	start := l.contiguous
	for {
		e := l.chosen[l.contiguous+1]
		if e == nil {
			break
		}
		l.contiguous++
		delete(l.pending, l.contiguous)
		out.Apply = append(out.Apply, e)
	}
	if l.contiguous >= l.knownChosen {
		l.behindSince = time.Time{}
	}
	if mark && l.contiguous > start {
		out.Records = append(out.Records, &messages.Record{Kind: &messages.Record_Chosen{
			Chosen: &messages.ChosenRecord{Upto: l.contiguous}}})
	}
}
