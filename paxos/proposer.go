package paxos

import (
	"math/rand/v2"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// ProposerConfig bounds a proposer. Zero fields take defaults.
type ProposerConfig struct {
	ID    uint32
	Peers []uint32 // every voter, this node included
	// HeartbeatInterval is how often the master tells the others it lives.
	HeartbeatInterval time.Duration
	// A follower that hears no master for a random time in
	// [ElectionTimeoutMin, ElectionTimeoutMax) campaigns.
	ElectionTimeoutMin time.Duration
	ElectionTimeoutMax time.Duration
	// RetransmitInterval is how long a prepare or accept waits for an
	// answer before it is sent again: remoting is at most once.
	RetransmitInterval time.Duration
	MaxBatchCommands   int // commands per instance
	MaxBatchBytes      int // payload bytes per instance
	MaxInflight        int // instances proposed and not yet chosen
	MaxQueue           int // commands waiting for a slot; more are refused
	// Rand drives the randomized election back-off; seed it for
	// repeatable runs.
	Rand *rand.Rand
}

func (c *ProposerConfig) setDefaults() {
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 100 * time.Millisecond
	}
	if c.ElectionTimeoutMin == 0 {
		c.ElectionTimeoutMin = 700 * time.Millisecond
	}
	if c.ElectionTimeoutMax <= c.ElectionTimeoutMin {
		c.ElectionTimeoutMax = 2 * c.ElectionTimeoutMin
	}
	if c.RetransmitInterval == 0 {
		c.RetransmitInterval = 250 * time.Millisecond
	}
	if c.MaxBatchCommands == 0 {
		c.MaxBatchCommands = 1024
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 1 << 20
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = 32
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = 32768
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(uint64(c.ID), 0x1ea5e))
	}
}

type proposerState uint8

const (
	stateFollower proposerState = iota
	stateCandidate
	stateMaster
)

func (s proposerState) String() string {
	return [...]string{"follower", "candidate", "master"}[s]
}

// inflight is one instance proposed in phase 2 and not yet chosen.
type inflight struct {
	entry  *messages.Entry
	acks   map[uint32]bool
	sentAt time.Time
}

// Proposer decides when to campaign, runs phase 1 once per mastership, and
// as master batches commands into instances and runs phase 2 for a bounded
// window of them at a time (§4).
type Proposer struct {
	cfg   ProposerConfig
	state proposerState

	ballot      uint64 // this proposer's current ballot (candidate or master)
	highestSeen uint64 // highest ballot seen anywhere
	masterID    uint32 // who we believe is master (0: unknown)
	electionAt  time.Time

	// chosenUpto: every instance <= chosenUpto is known chosen.
	chosenUpto uint64
	applied    uint64 // reported by the local learner

	// candidate
	promises    map[uint32]*messages.Promise
	prepareFrom uint64
	preparedAt  time.Time

	// master
	nextInstance uint64
	inflight     map[uint64]*inflight
	queue        []*messages.Command
	queueBytes   int
	heartbeatAt  time.Time
	noticeDirty  bool // noticeUpto moved since the last Chosen notice
	// noticeUpto is what this master's Chosen notices claim: every
	// instance from prepareFrom to noticeUpto was chosen under its own
	// ballot. It is not chosenUpto: that one also rises with what the local
	// learner learned, possibly chosen under a higher ballot with another
	// value, and a notice covering such an instance would make learners
	// take the value this master had accepted there (sim's
	// TestRegression_DeposedMasterNoticeCoversOnlyItsOwnBallot).
	noticeUpto uint64
	// lastAck is when each follower last acknowledged an accept of this
	// mastership; the most responsive are asked to accept durably.
	lastAck map[uint32]time.Time
}

// ProposerOutput is what one proposer step asks the shell to do.
type ProposerOutput struct {
	Messages []Envelope
	Replies  []Reply
}

// NewProposer returns a follower that will campaign if it hears no master.
func NewProposer(cfg ProposerConfig, now time.Time) *Proposer {
	cfg.setDefaults()
	p := &Proposer{cfg: cfg, inflight: make(map[uint64]*inflight), lastAck: make(map[uint32]time.Time)}
	p.resetElection(now)
	return p
}

// IsMaster reports whether this proposer is master and accepts writes.
func (p *Proposer) IsMaster() bool { return p.state == stateMaster }

// State returns "follower", "candidate" or "master".
func (p *Proposer) State() string { return p.state.String() }

// Ballot returns the current ballot of this proposer's mastership or
// campaign, or the highest it has seen when following.
func (p *Proposer) Ballot() uint64 {
	if p.state == stateFollower {
		return p.highestSeen
	}
	return p.ballot
}

// MasterID returns the node believed to be master, 0 if unknown.
func (p *Proposer) MasterID() uint32 { return p.masterID }

// ChosenUpto returns the highest instance known chosen with all before it.
func (p *Proposer) ChosenUpto() uint64 { return p.chosenUpto }

// Applied returns the last instance the local learner reported applied.
func (p *Proposer) Applied() uint64 { return p.applied }

// QueueLen returns the number of commands waiting for an instance.
func (p *Proposer) QueueLen() int { return len(p.queue) }

// InflightLen returns the number of instances in phase 2.
func (p *Proposer) InflightLen() int { return len(p.inflight) }

// NeedsFlush reports whether Flush has work: queued commands and a free
// slot, or a Chosen notice to send. The shell batches by calling Flush once
// its mailbox has drained what arrived meanwhile.
func (p *Proposer) NeedsFlush() bool {
	if p.state != stateMaster {
		return false
	}
	return p.noticeDirty || (len(p.queue) > 0 && len(p.inflight) < p.cfg.MaxInflight)
}

func (p *Proposer) quorum() int { return quorum(len(p.cfg.Peers)) }

// isVoter reports whether id is in the group: only voters' promises and
// acknowledgements count towards a quorum, whatever a message claims.
func (p *Proposer) isVoter(id uint32) bool {
	for _, peer := range p.cfg.Peers {
		if peer == id {
			return true
		}
	}
	return false
}

func (p *Proposer) resetElection(now time.Time) {
	span := p.cfg.ElectionTimeoutMax - p.cfg.ElectionTimeoutMin
	p.electionAt = now.Add(p.cfg.ElectionTimeoutMin + time.Duration(p.cfg.Rand.Int64N(int64(span))))
}

// HoldElection keeps a follower from campaigning for d more than its usual
// election timeout. A replica restarting with history uses it: the master's
// transport may need a moment to reconnect to it, and campaigning before
// the first heartbeat arrives would only depose a working master.
func (p *Proposer) HoldElection(now time.Time, d time.Duration) {
	p.resetElection(now.Add(d))
}

// LearnerProgress tells the proposer how far the local learner has applied;
// everything up to it is chosen.
func (p *Proposer) LearnerProgress(applied uint64) {
	p.applied = max(p.applied, applied)
	p.chosenUpto = max(p.chosenUpto, applied)
}

// Submit queues a client command. Outside mastership, or when the queue is
// full, the command is refused at once and nothing is proposed.
func (p *Proposer) Submit(cmd *messages.Command) ProposerOutput {
	var out ProposerOutput
	switch {
	case p.state != stateMaster:
		out.Replies = append(out.Replies, Reply{Cmd: cmd, Response: &messages.ClientResponse{
			RequestId: cmd.RequestId, Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER,
			Error: "not master", MasterId: p.masterID}})
	case len(p.queue) >= p.cfg.MaxQueue:
		out.Replies = append(out.Replies, Reply{Cmd: cmd, Response: &messages.ClientResponse{
			RequestId: cmd.RequestId, Code: messages.ErrorCode_ERROR_CODE_OVERLOADED,
			Error: "proposal queue full", MasterId: p.cfg.ID}})
	default:
		p.queue = append(p.queue, cmd)
		p.queueBytes += len(cmd.Payload)
	}
	return out
}

// Flush proposes queued commands into free pipeline slots, one batch per
// instance, and sends a Chosen notice if the chosen prefix moved.
func (p *Proposer) Flush(now time.Time) ProposerOutput {
	var out ProposerOutput
	if p.state != stateMaster {
		return out
	}
	var fresh []*messages.Entry
	for len(p.queue) > 0 && len(p.inflight) < p.cfg.MaxInflight {
		n, bytes := 0, 0
		for n < len(p.queue) && n < p.cfg.MaxBatchCommands {
			sz := len(p.queue[n].Payload)
			if n > 0 && bytes+sz > p.cfg.MaxBatchBytes {
				break
			}
			bytes += sz
			n++
		}
		batch := make([]*messages.Command, n)
		copy(batch, p.queue[:n])
		clear(p.queue[:n])
		p.queue = p.queue[n:]
		p.queueBytes -= bytes
		e := &messages.Entry{Instance: p.nextInstance, Ballot: p.ballot, Value: &messages.Value{Commands: batch}}
		p.nextInstance++
		p.inflight[e.Instance] = &inflight{entry: e, acks: make(map[uint32]bool), sentAt: now}
		fresh = append(fresh, e)
	}
	if len(p.queue) == 0 {
		p.queue = nil // let the drained backing array go
	}
	if len(fresh) > 0 {
		p.broadcastAccept(&out, fresh, p.durableVoters())
	}
	if p.noticeDirty {
		p.noticeDirty = false
		p.broadcast(&out, func() proto.Message {
			return &messages.Chosen{From: p.cfg.ID, Ballot: p.ballot, ChosenUpto: p.noticeUpto}
		})
	}
	return out
}

// Step handles a message for the proposer role.
func (p *Proposer) Step(msg proto.Message, now time.Time) ProposerOutput {
	var out ProposerOutput
	switch m := msg.(type) {
	case *messages.Heartbeat:
		p.onHeartbeat(&out, m, now)
	case *messages.Promise:
		p.onPromise(&out, m, now)
	case *messages.Accepted:
		p.onAccepted(&out, m, now)
	}
	return out
}

// Tick drives the timers: elections, retransmission and heartbeats.
func (p *Proposer) Tick(now time.Time) ProposerOutput {
	var out ProposerOutput
	switch p.state {
	case stateFollower:
		if !now.Before(p.electionAt) {
			p.campaign(&out, now)
		}
	case stateCandidate:
		if !now.Before(p.electionAt) {
			p.campaign(&out, now) // no quorum in time: try again, higher
		} else if now.Sub(p.preparedAt) >= p.cfg.RetransmitInterval {
			p.sendPrepare(&out, now)
		}
	case stateMaster:
		if now.Sub(p.heartbeatAt) >= p.cfg.HeartbeatInterval {
			p.heartbeatAt = now
			p.sendHeartbeats(&out)
			p.noticeDirty = true // learners hear the chosen prefix at least this often
		}
		p.retransmit(&out, now)
	}
	return out
}

func (p *Proposer) seen(b uint64) { p.highestSeen = max(p.highestSeen, b) }

// ObserveBallot tells the proposer of a ballot seen elsewhere (at restart:
// the one its own acceptor promised), so its next campaign goes above it.
func (p *Proposer) ObserveBallot(b uint64) { p.seen(b) }

func (p *Proposer) onHeartbeat(out *ProposerOutput, m *messages.Heartbeat, now time.Time) {
	if m.Ballot < p.highestSeen || m.From == p.cfg.ID {
		return
	}
	p.seen(m.Ballot)
	if p.state != stateFollower && m.Ballot > p.ballot {
		p.stepDown(out)
	}
	if p.state == stateFollower {
		p.masterID = m.From
		p.chosenUpto = max(p.chosenUpto, m.ChosenUpto)
		p.resetElection(now)
	}
}

// campaign starts phase 1 with a ballot above every ballot seen. One
// Prepare covers every instance from the first one the local learner has
// not applied. Not from chosenUpto: a heartbeat may report instances
// chosen whose values no live learner holds any more (their chosen marks
// are lazy records, lost in a crash) and whose master is gone; only a
// re-proposal under the new ballot makes them learnable again (sim seeds 705,
// 1509 and 1706 in TestRegressionSeeds).
func (p *Proposer) campaign(out *ProposerOutput, now time.Time) {
	p.ballot = NextBallot(max(p.highestSeen, p.ballot), p.cfg.ID)
	p.seen(p.ballot)
	p.state = stateCandidate
	p.masterID = 0
	p.promises = make(map[uint32]*messages.Promise)
	p.prepareFrom = p.applied + 1
	p.resetElection(now)
	p.sendPrepare(out, now)
}

func (p *Proposer) sendPrepare(out *ProposerOutput, now time.Time) {
	p.preparedAt = now
	for _, peer := range p.cfg.Peers {
		if p.promises[peer] == nil {
			out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Prepare{
				From: p.cfg.ID, Ballot: p.ballot, FirstInstance: p.prepareFrom}})
		}
	}
}

func (p *Proposer) onPromise(out *ProposerOutput, m *messages.Promise, now time.Time) {
	p.seen(m.Promised)
	if !m.Ok {
		if m.Promised > p.ballot && p.state != stateFollower {
			p.stepDown(out)
			p.resetElection(now) // randomized back-off before trying again
		}
		return
	}
	if p.state != stateCandidate || m.Ballot != p.ballot || !p.isVoter(m.From) {
		return // late, duplicate, or from outside the group
	}
	p.promises[m.From] = m
	if len(p.promises) >= p.quorum() {
		p.becomeMaster(out, now)
	}
}

// becomeMaster finishes phase 1: for every instance from prepareFrom to the
// highest any promise reported, it re-proposes the value accepted under the
// highest ballot, and fills instances nobody reported with no-ops. From then
// on only phase 2 runs.
func (p *Proposer) becomeMaster(out *ProposerOutput, now time.Time) {
	best := make(map[uint64]*messages.Entry)
	top := p.prepareFrom - 1
	for _, pr := range p.promises {
		for _, e := range pr.Accepted {
			if e.Instance < p.prepareFrom {
				continue
			}
			if b := best[e.Instance]; b == nil || e.Ballot > b.Ballot {
				best[e.Instance] = e
			}
			top = max(top, e.Instance)
		}
	}
	p.state = stateMaster
	p.masterID = p.cfg.ID
	p.promises = nil
	p.nextInstance = top + 1
	p.chosenUpto = max(p.chosenUpto, p.prepareFrom-1)
	p.noticeUpto = p.prepareFrom - 1
	var entries []*messages.Entry
	for i := p.prepareFrom; i <= top; i++ {
		v := &messages.Value{Noop: true}
		if b := best[i]; b != nil && Planted != BugIgnorePromiseValues {
			v = b.Value
		}
		e := &messages.Entry{Instance: i, Ballot: p.ballot, Value: v}
		p.inflight[i] = &inflight{entry: e, acks: make(map[uint32]bool), sentAt: now}
		entries = append(entries, e)
	}
	clear(p.lastAck)
	if len(entries) > 0 {
		p.broadcastAccept(out, entries, nil)
	}
	p.heartbeatAt = now
	p.sendHeartbeats(out)
}

// sendHeartbeats tells the other proposers this master lives.
func (p *Proposer) sendHeartbeats(out *ProposerOutput) {
	for _, peer := range p.cfg.Peers {
		if peer != p.cfg.ID {
			out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Heartbeat{
				From: p.cfg.ID, Ballot: p.ballot, ChosenUpto: p.chosenUpto}})
		}
	}
}

func (p *Proposer) onAccepted(out *ProposerOutput, m *messages.Accepted, now time.Time) {
	p.seen(m.Promised)
	if !m.Ok {
		if m.Promised > p.ballot && p.state == stateMaster {
			p.stepDown(out)
			p.resetElection(now)
		}
		return
	}
	if p.state != stateMaster || m.Ballot != p.ballot || !p.isVoter(m.From) {
		return
	}
	p.lastAck[m.From] = now
	moved := false
	for _, i := range m.Instances {
		f := p.inflight[i]
		if f == nil {
			continue // already chosen: a duplicate
		}
		f.acks[m.From] = true
		if len(f.acks) >= p.quorum() {
			delete(p.inflight, i)
			moved = true
		}
	}
	if moved {
		// Every instance below the lowest one still in flight is chosen.
		upto := p.nextInstance - 1
		for i := range p.inflight {
			upto = min(upto, i-1)
		}
		if upto > p.noticeUpto {
			p.noticeUpto = upto
			p.noticeDirty = true
		}
		p.chosenUpto = max(p.chosenUpto, upto)
	}
}

// retransmit resends accepts that have waited too long to the peers that
// have not acknowledged them, one message per peer.
func (p *Proposer) retransmit(out *ProposerOutput, now time.Time) {
	var late []*inflight
	for _, f := range p.inflight {
		if now.Sub(f.sentAt) >= p.cfg.RetransmitInterval {
			late = append(late, f)
		}
	}
	if len(late) == 0 {
		return
	}
	sort.Slice(late, func(i, j int) bool { return late[i].entry.Instance < late[j].entry.Instance })
	for _, peer := range p.cfg.Peers {
		var es []*messages.Entry
		for _, f := range late {
			if !f.acks[peer] {
				es = append(es, f.entry)
			}
		}
		if len(es) > 0 {
			out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Accept{
				From: p.cfg.ID, Ballot: p.ballot, Entries: es, ChosenUpto: p.chosenUpto}})
		}
	}
	for _, f := range late {
		f.sentAt = now
	}
}

// broadcastAccept sends entries to every voter. Voters outside durable
// (when it is not nil) get a lazy Accept: they store the entries but neither
// fsync nor answer, so that only a majority's fsyncs compete for the disk.
func (p *Proposer) broadcastAccept(out *ProposerOutput, entries []*messages.Entry, durable map[uint32]bool) {
	for _, peer := range p.cfg.Peers {
		out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Accept{
			From: p.cfg.ID, Ballot: p.ballot, Entries: entries, ChosenUpto: p.chosenUpto,
			Lazy: durable != nil && !durable[peer]}})
	}
}

// durableVoters picks the voters asked to accept durably: this node, and
// the followers that acknowledged most recently, as many as make a
// majority. Until enough followers have answered, it returns nil: everyone.
// A chosen follower that stops answering costs one retransmission interval
// (retransmissions go to every voter that has not acknowledged, durably);
// then it has acknowledged less recently than the one that answered the
// retransmission, and is passed over.
func (p *Proposer) durableVoters() map[uint32]bool {
	var followers []uint32
	for _, peer := range p.cfg.Peers {
		if _, ok := p.lastAck[peer]; ok && peer != p.cfg.ID {
			followers = append(followers, peer)
		}
	}
	need := p.quorum() - 1
	if len(followers) < need || len(followers) == len(p.cfg.Peers)-1 && need == len(followers) {
		return nil // nobody to spare
	}
	sort.Slice(followers, func(i, j int) bool {
		a, b := p.lastAck[followers[i]], p.lastAck[followers[j]]
		if !a.Equal(b) {
			return a.After(b)
		}
		return followers[i] < followers[j]
	})
	durable := map[uint32]bool{p.cfg.ID: true}
	for _, f := range followers[:need] {
		durable[f] = true
	}
	return durable
}

// broadcast sends a fresh message from mk to every voter. Each peer gets
// its own message so a shell may hand them to different transports.
func (p *Proposer) broadcast(out *ProposerOutput, mk func() proto.Message) {
	for _, peer := range p.cfg.Peers {
		out.Messages = append(out.Messages, Envelope{To: peer, Msg: mk()})
	}
}

// stepDown ends a mastership or campaign. Commands never proposed are
// refused as not-master (safe to retry); commands in flight may still be
// chosen by the next master, so their clients learn the outcome is unknown.
func (p *Proposer) stepDown(out *ProposerOutput) {
	p.state = stateFollower
	p.masterID = 0
	p.promises = nil
	for _, cmd := range p.queue {
		out.Replies = append(out.Replies, Reply{Cmd: cmd, Response: &messages.ClientResponse{
			RequestId: cmd.RequestId, Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER, Error: "master stepped down"}})
	}
	p.queue, p.queueBytes = nil, 0
	ids := make([]uint64, 0, len(p.inflight))
	for i := range p.inflight {
		ids = append(ids, i)
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	for _, i := range ids {
		for _, cmd := range p.inflight[i].entry.Value.Commands {
			if cmd.Origin != p.cfg.ID {
				continue
			}
			out.Replies = append(out.Replies, Reply{Cmd: cmd, Response: &messages.ClientResponse{
				RequestId: cmd.RequestId, Code: messages.ErrorCode_ERROR_CODE_MASTER_CHANGED,
				Error: "mastership lost while the command was in flight: outcome unknown"}})
		}
	}
	clear(p.inflight)
	p.noticeDirty = false
}
