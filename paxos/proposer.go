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
	// Learners are non-voting members (§5.4): they are sent the log (lazy
	// accepts), heartbeats and chosen notices, but are never asked to vote
	// and never counted; a learner never campaigns.
	Learners []uint32
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
	// LeaseTimeout is how long an acceptor's lease grant lasts on its own
	// clock (§5.2). The master counts its lease as LeaseTimeout minus
	// ClockDriftMax from the moment it sent what was acknowledged.
	LeaseTimeout time.Duration
	// ClockDriftMax bounds how much two replicas' clocks may disagree about
	// the length of one LeaseTimeout. Lease reads are linearizable only
	// within this bound: it is an assumption, not something checked.
	ClockDriftMax time.Duration
	// BoostInterval is how often a master raises its ballot with a full
	// phase 1 (§5.2), so an old master that reconnects cannot churn
	// mastership. A higher ballot seen anywhere triggers one sooner.
	BoostInterval time.Duration
	// CheckInterval is how often a master puts a checksum value in the log
	// (§6.2): every replica checksums its state at that instance and the
	// results are compared. 0 takes the default (5 minutes); negative:
	// only when asked (RequestCheck).
	CheckInterval time.Duration
	// ReadTimeout bounds how long a read waits for mastership to be
	// confirmed before it is answered as unavailable.
	ReadTimeout time.Duration
	MaxReads    int // reads waiting for confirmation; more are refused
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
	if c.LeaseTimeout == 0 {
		c.LeaseTimeout = 2 * time.Second
	}
	if c.ClockDriftMax == 0 {
		c.ClockDriftMax = 100 * time.Millisecond
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = 5 * time.Minute
	}
	if c.BoostInterval == 0 {
		c.BoostInterval = 10 * time.Second
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = time.Second
	}
	if c.MaxReads == 0 {
		c.MaxReads = 32768
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
	// prepareDue is when a candidate sends its prepare again to the
	// acceptors that have not promised: a retransmission interval later,
	// or as soon as a lease that refused it runs out.
	prepareDue time.Time

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

	// epoch is this mastership's epoch: the instance of its first value.
	epoch uint64

	// Lease and confirmation bookkeeping (§5.2). Every Accept and Confirm
	// this master sends carries a fresh seq; sentAt remembers when each of
	// the last len(sentAt) seqs left. leaseAck is, per voter, the highest
	// seq it accepted (each acceptance grants the lease from its arrival,
	// later than the send); confirmAck the highest seq it answered with no
	// higher promise (acceptances count too).
	seq        uint64
	sentAt     [seqWindow]time.Time
	leaseAck   map[uint32]uint64
	confirmAck map[uint32]uint64
	// catchUpTo: its own acceptor let go of the log up to here; it does
	// not campaign before its learner has applied that far.
	catchUpTo uint64
	// checkAt is when this master last proposed a checksum value;
	// checkAsked, that one was asked for.
	checkAt    time.Time
	checkAsked bool
	// leaseEnd is the latest end of a lease this node held as master,
	// recorded as it steps down.
	leaseEnd time.Time
	// truncatedAt is how far each acceptor let go of its log (§5.5), as
	// its acceptances report.
	truncatedAt map[uint32]uint64
	lastSendAt  time.Time // last Accept sent: idle masters renew the lease

	// Quorum reads waiting for a confirmation round.
	reads       []pendingRead
	roundSeq    uint64 // the Confirm round in flight (0: none)
	roundAt     time.Time
	roundWanted bool // reads arrived after the round in flight was sent

	// Ballot boost (§5.2): a phase 1 under a higher ballot of its own while
	// staying master.
	boosting    bool
	boostBallot uint64
	boostAt     time.Time // when the last boost started (or the mastership)
	stats       ProposerStats
}

// seqWindow is how many recent sends a master remembers the time of; an
// answer to an older one no longer extends the lease.
const seqWindow = 4096

// pendingRead is a read that may be served once a majority confirmed, with
// a message sent after it arrived, that nobody promised a higher ballot.
type pendingRead struct {
	id   uint64
	need uint64 // the first seq sent after the read arrived
	at   time.Time
}

// ProposerStats counts what a proposer did as master, for status and the
// §5.2 ballot boost figure.
type ProposerStats struct {
	Proposed  uint64 // instances proposed in phase 2
	Boosts    uint64 // ballot boosts completed
	Boosted   uint64 // instances re-proposed by a boost's phase 1
	Renewals  uint64 // heartbeat instances proposed to renew an idle lease
	ReadRound uint64 // Confirm rounds sent for quorum reads
}

// ReadResult answers a quorum read: Code OK means the read may be served
// from the local state machine now.
type ReadResult struct {
	ID   uint64
	Code messages.ErrorCode
	Err  string
}

// ProposerOutput is what one proposer step asks the shell to do.
type ProposerOutput struct {
	Messages []Envelope
	Replies  []Reply
	Reads    []ReadResult
	// ReleaseLease: this node stepped down holding no lease it could still
	// serve reads on; the shell tells the local acceptor to drop the lease
	// it granted this node (Acceptor.ReleaseLease), so that another
	// candidate need not wait a lease timeout for it.
	ReleaseLease bool
	// Checks lists the instances of checksum values just proposed.
	Checks []uint64
}

// NewProposer returns a follower that will campaign if it hears no master.
func NewProposer(cfg ProposerConfig, now time.Time) *Proposer {
	cfg.setDefaults()
	p := &Proposer{cfg: cfg, inflight: make(map[uint64]*inflight), lastAck: make(map[uint32]time.Time),
		leaseAck: make(map[uint32]uint64), confirmAck: make(map[uint32]uint64), truncatedAt: make(map[uint32]uint64)}
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

// Epoch returns this master's epoch, 0 when not master.
func (p *Proposer) Epoch() uint64 {
	if p.state != stateMaster {
		return 0
	}
	return p.epoch
}

// Stats returns counters of this proposer's masterships.
func (p *Proposer) Stats() ProposerStats { return p.stats }

// LeaseUntil returns until when this master may serve reads from its state
// machine without asking anyone (§5.2), measured on its own clock: a
// majority of acceptors granted it the lease for LeaseTimeout from when they
// received messages it sent at leaseStart, and it counts ClockDriftMax less.
// ok is false when it is not master, holds no lease, or has not yet applied
// its epoch's first instance (before that, its state may miss writes a
// previous master acknowledged).
func (p *Proposer) LeaseUntil(now time.Time) (until time.Time, ok bool) {
	if p.state != stateMaster || p.applied < p.epoch {
		return time.Time{}, false
	}
	start, ok := p.quorumSent(p.leaseAck)
	if !ok {
		return time.Time{}, false
	}
	until = start.Add(p.cfg.LeaseTimeout - p.cfg.ClockDriftMax)
	return until, now.Before(until)
}

// quorumSent returns when the message was sent that a majority of voters
// (by acks, the highest seq each answered) have all answered, if any is
// still in the window.
func (p *Proposer) quorumSent(acks map[uint32]uint64) (time.Time, bool) {
	seqs := make([]uint64, 0, len(p.cfg.Peers))
	for _, peer := range p.cfg.Peers {
		seqs = append(seqs, acks[peer])
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] > seqs[j] })
	s := seqs[p.quorum()-1]
	if s == 0 || s+seqWindow <= p.seq {
		return time.Time{}, false
	}
	return p.sentAt[s%seqWindow], true
}

// nextSeq numbers a send made at now.
func (p *Proposer) nextSeq(now time.Time) uint64 {
	p.seq++
	p.sentAt[p.seq%seqWindow] = now
	return p.seq
}

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
	return p.noticeDirty || (len(p.queue) > 0 && len(p.inflight) < p.cfg.MaxInflight && !p.boosting)
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
		cmd.Epoch = p.epoch
		p.queue = append(p.queue, cmd)
		p.queueBytes += len(cmd.Payload)
	}
	return out
}

// Read registers quorum read id: it may be served once a majority has
// confirmed, by answering a message sent after now, that no higher ballot
// was promised, and once this master applied its epoch's first instance.
// The answer comes in a later output's Reads (or this one's, refused).
func (p *Proposer) Read(id uint64, now time.Time) ProposerOutput {
	var out ProposerOutput
	switch {
	case p.state != stateMaster:
		out.Reads = append(out.Reads, ReadResult{ID: id, Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER, Err: "not master"})
		return out
	case len(p.reads) >= p.cfg.MaxReads:
		out.Reads = append(out.Reads, ReadResult{ID: id, Code: messages.ErrorCode_ERROR_CODE_OVERLOADED, Err: "too many reads waiting"})
		return out
	}
	p.reads = append(p.reads, pendingRead{id: id, need: p.seq + 1, at: now})
	if p.roundSeq == 0 {
		p.sendConfirm(&out, now)
	} else {
		p.roundWanted = true
	}
	return out
}

// sendConfirm starts a Confirm round.
func (p *Proposer) sendConfirm(out *ProposerOutput, now time.Time) {
	p.roundSeq, p.roundAt, p.roundWanted = p.nextSeq(now), now, false
	p.stats.ReadRound++
	for _, peer := range p.cfg.Peers {
		out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Confirm{
			From: p.cfg.ID, Ballot: p.ballot, Seq: p.roundSeq}})
	}
}

// releaseReads answers the reads a majority has confirmed, and starts the
// next round if reads wait for one.
func (p *Proposer) releaseReads(out *ProposerOutput, now time.Time) {
	if len(p.reads) == 0 || p.state != stateMaster || p.applied < p.epoch {
		return
	}
	seqs := make([]uint64, 0, len(p.cfg.Peers))
	for _, peer := range p.cfg.Peers {
		seqs = append(seqs, p.confirmAck[peer])
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] > seqs[j] })
	confirmed := seqs[p.quorum()-1]
	if p.roundSeq != 0 && confirmed >= p.roundSeq {
		p.roundSeq = 0
	}
	kept := p.reads[:0]
	for _, r := range p.reads {
		if r.need <= confirmed {
			out.Reads = append(out.Reads, ReadResult{ID: r.id, Code: messages.ErrorCode_ERROR_CODE_OK})
		} else {
			kept = append(kept, r)
		}
	}
	clear(p.reads[len(kept):])
	p.reads = kept
	if len(p.reads) > 0 && p.roundSeq == 0 {
		p.sendConfirm(out, now)
	}
}

// expireReads refuses reads that waited too long, and resends a round
// whose answers may have been lost.
func (p *Proposer) expireReads(out *ProposerOutput, now time.Time) {
	kept := p.reads[:0]
	for _, r := range p.reads {
		if now.Sub(r.at) >= p.cfg.ReadTimeout {
			out.Reads = append(out.Reads, ReadResult{ID: r.id, Code: messages.ErrorCode_ERROR_CODE_UNAVAILABLE,
				Err: "mastership not confirmed in time"})
		} else {
			kept = append(kept, r)
		}
	}
	clear(p.reads[len(kept):])
	p.reads = kept
	if len(p.reads) > 0 && (p.roundSeq == 0 || now.Sub(p.roundAt) >= p.cfg.RetransmitInterval) {
		p.sendConfirm(out, now)
	}
}

// failReads refuses every waiting read: mastership ended.
func (p *Proposer) failReads(out *ProposerOutput) {
	for _, r := range p.reads {
		out.Reads = append(out.Reads, ReadResult{ID: r.id, Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER,
			Err: "master stepped down"})
	}
	p.reads, p.roundSeq, p.roundWanted = nil, 0, false
}

// Flush proposes queued commands into free pipeline slots, one batch per
// instance, and sends a Chosen notice if the chosen prefix moved.
func (p *Proposer) Flush(now time.Time) ProposerOutput {
	var out ProposerOutput
	if p.state != stateMaster {
		return out
	}
	var fresh []*messages.Entry
	for len(p.queue) > 0 && len(p.inflight) < p.cfg.MaxInflight && !p.boosting {
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
		fresh = append(fresh, p.newInstance(&messages.Value{Commands: batch}, now))
	}
	if len(p.queue) == 0 {
		p.queue = nil // let the drained backing array go
	}
	if len(fresh) > 0 {
		p.broadcastAccept(&out, fresh, p.durableVoters(), now)
	}
	if p.noticeDirty {
		p.noticeDirty = false
		p.broadcast(&out, func() proto.Message {
			return &messages.Chosen{From: p.cfg.ID, Ballot: p.ballot, ChosenUpto: p.noticeUpto}
		})
	}
	return out
}

// newInstance puts v in flight at the next instance.
func (p *Proposer) newInstance(v *messages.Value, now time.Time) *messages.Entry {
	e := &messages.Entry{Instance: p.nextInstance, Ballot: p.ballot, Value: v}
	p.nextInstance++
	p.inflight[e.Instance] = &inflight{entry: e, acks: make(map[uint32]bool), sentAt: now}
	p.stats.Proposed++
	return e
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
	case *messages.Confirmed:
		p.onConfirmed(&out, m, now)
	}
	return out
}

// Tick drives the timers: elections, retransmission and heartbeats.
func (p *Proposer) Tick(now time.Time) ProposerOutput {
	var out ProposerOutput
	switch p.state {
	case stateFollower:
		if !now.Before(p.electionAt) {
			if p.applied < p.catchUpTo || !p.isVoter(p.cfg.ID) {
				// Behind its own acceptor's truncation it cannot win; a
				// learner never campaigns.
				p.resetElection(now)
			} else {
				p.campaign(&out, now)
			}
		}
	case stateCandidate:
		if !now.Before(p.electionAt) {
			p.campaign(&out, now) // no quorum in time: try again, higher
		} else if !now.Before(p.prepareDue) {
			p.sendPrepare(&out, now)
		}
	case stateMaster:
		if now.Sub(p.heartbeatAt) >= p.cfg.HeartbeatInterval {
			p.heartbeatAt = now
			p.sendHeartbeats(&out)
			p.noticeDirty = true // learners hear the chosen prefix at least this often
		}
		p.retransmit(&out, now)
		p.expireReads(&out, now)
		p.maybeBoost(&out, now)
		p.maybeRenew(&out, now)
		p.maybeCheck(&out, now)
	}
	return out
}

// RequestCheck has the master put a checksum value in the log at its next
// tick (§6.2). It returns false when this proposer is not master.
func (p *Proposer) RequestCheck() bool {
	if p.state != stateMaster {
		return false
	}
	p.checkAsked = true
	return true
}

// maybeCheck proposes a checksum value every CheckInterval, or when asked:
// every replica that applies it checksums its state there (§6.2).
func (p *Proposer) maybeCheck(out *ProposerOutput, now time.Time) {
	due := p.checkAsked || (p.cfg.CheckInterval > 0 && now.Sub(p.checkAt) >= p.cfg.CheckInterval)
	if !due || p.boosting || len(p.inflight) >= p.cfg.MaxInflight || p.applied < p.epoch {
		return
	}
	if p.checkAt.IsZero() && !p.checkAsked {
		p.checkAt = now // the first one an interval into the mastership
		return
	}
	p.checkAsked, p.checkAt = false, now
	e := p.newInstance(&messages.Value{Noop: true, Checksum: true}, now)
	out.Checks = append(out.Checks, e.Instance)
	p.broadcastAccept(out, []*messages.Entry{e}, p.durableVoters(), now)
}

// maybeRenew proposes a heartbeat value when the master has sent no Accept
// for half a lease: the acceptances renew the lease through the log (§5.2).
func (p *Proposer) maybeRenew(out *ProposerOutput, now time.Time) {
	if p.boosting || len(p.inflight) > 0 || len(p.queue) > 0 || now.Sub(p.lastSendAt) < p.cfg.LeaseTimeout/2 {
		return
	}
	p.stats.Renewals++
	p.broadcastAccept(out, []*messages.Entry{p.newInstance(&messages.Value{Noop: true}, now)}, p.durableVoters(), now)
}

// maybeBoost starts a ballot boost every BoostInterval, or soon after an
// acceptor reported a higher ballot than this master's; it abandons one
// that has not gathered a majority within an election timeout.
func (p *Proposer) maybeBoost(out *ProposerOutput, now time.Time) {
	if p.boosting {
		if now.Sub(p.boostAt) >= p.cfg.ElectionTimeoutMin {
			p.boosting, p.promises = false, nil // try again later; the mastership goes on
		} else if now.Sub(p.preparedAt) >= p.cfg.RetransmitInterval {
			p.sendBoostPrepare(out, now)
		}
		return
	}
	due := now.Sub(p.boostAt) >= p.cfg.BoostInterval ||
		(p.highestSeen > p.ballot && now.Sub(p.boostAt) >= p.cfg.RetransmitInterval)
	if !due {
		return
	}
	p.boosting = true
	p.boostAt = now
	p.boostBallot = NextBallot(max(p.highestSeen, p.ballot), p.cfg.ID)
	p.seen(p.boostBallot)
	p.promises = make(map[uint32]*messages.Promise)
	p.prepareFrom = p.applied + 1 // as a campaign does: see campaign
	p.sendBoostPrepare(out, now)
}

func (p *Proposer) sendBoostPrepare(out *ProposerOutput, now time.Time) {
	p.preparedAt = now
	for _, peer := range p.cfg.Peers {
		if p.promises[peer] == nil {
			out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Prepare{
				From: p.cfg.ID, Ballot: p.boostBallot, FirstInstance: p.prepareFrom}})
		}
	}
}

// finishBoost completes a boost's phase 1 as becomeMaster does, except that
// an instance nobody reported keeps this master's own value in flight
// (it proposed it, under a lower ballot of its own, and nobody else can
// have proposed there since). Every instance still in flight moves to the
// new ballot; the mastership, its queue and its epoch go on.
//
// If the promises show that another proposer got further than this
// master's ballot meanwhile (a promise or acceptance above it), the
// mastership was interrupted: it ends, and a new one with a new epoch
// starts from these promises, as after an election.
func (p *Proposer) finishBoost(out *ProposerOutput, now time.Time) {
	if p.interrupted() {
		promises, ballot, from := p.promises, p.boostBallot, p.prepareFrom
		p.stepDown(out, now)
		p.state, p.ballot, p.promises, p.prepareFrom = stateCandidate, ballot, promises, from
		p.becomeMaster(out, now)
		return
	}
	best := p.bestReported()
	top := max(p.nextInstance-1, p.prepareFrom-1)
	for i := range best {
		top = max(top, i)
	}
	if p.noticeDirty { // let learners match what the old ballot chose
		p.noticeDirty = false
		p.broadcast(out, func() proto.Message {
			return &messages.Chosen{From: p.cfg.ID, Ballot: p.ballot, ChosenUpto: p.noticeUpto}
		})
	}
	old := p.inflight
	p.inflight = make(map[uint64]*inflight)
	p.ballot = p.boostBallot
	p.boosting, p.promises = false, nil
	p.noticeUpto = p.prepareFrom - 1
	var entries []*messages.Entry
	for i := p.prepareFrom; i <= top; i++ {
		var v *messages.Value
		switch {
		case best[i] != nil && Planted != BugIgnorePromiseValues:
			v = best[i].Value
		case old[i] != nil:
			v = old[i].entry.Value
		default:
			v = &messages.Value{Noop: true}
		}
		e := &messages.Entry{Instance: i, Ballot: p.ballot, Value: v}
		p.inflight[i] = &inflight{entry: e, acks: make(map[uint32]bool), sentAt: now}
		entries = append(entries, e)
	}
	p.nextInstance = top + 1
	p.stats.Boosts++
	p.stats.Boosted += uint64(len(entries))
	clear(p.lastAck)
	if len(entries) > 0 {
		p.broadcastAccept(out, entries, nil, now)
	}
	p.heartbeatAt = now
	p.sendHeartbeats(out)
}

// interrupted reports whether a boost's promises show that this
// mastership cannot go on under its epoch: a ballot above its own was
// promised or accepted somewhere, or another master's epoch start was
// accepted after this epoch began. The last can come from a lower ballot:
// a rival elected just before this master proposed its own epoch start at
// an instance this master's phase 1 did not see; re-proposing it (the
// boost must, if it is the highest-ballot value reported) moves the log
// into the rival's epoch, and this master's commands would all be refused
// (sim seed 15125).
func (p *Proposer) interrupted() bool {
	for _, pr := range p.promises {
		if pr.Prior > p.ballot && pr.Prior != p.boostBallot { // not a duplicate of this prepare
			return true
		}
		for _, e := range pr.Accepted {
			if e.Ballot > p.ballot || (e.Value.GetStartsEpoch() && e.Instance > p.epoch) {
				return true
			}
		}
	}
	return false
}

// bestReported returns, per instance from prepareFrom, the entry accepted
// under the highest ballot among the promises.
func (p *Proposer) bestReported() map[uint64]*messages.Entry {
	best := make(map[uint64]*messages.Entry)
	for _, pr := range p.promises {
		for _, e := range pr.Accepted {
			if e.Instance < p.prepareFrom {
				continue
			}
			if b := best[e.Instance]; b == nil || e.Ballot > b.Ballot {
				best[e.Instance] = e
			}
		}
	}
	return best
}

func (p *Proposer) seen(b uint64) { p.highestSeen = max(p.highestSeen, b) }

// SetLearners replaces the non-voting members the proposer sends the log
// to, as a membership change applied (§5.4). The voters never change here.
func (p *Proposer) SetLearners(ids []uint32) { p.cfg.Learners = append([]uint32(nil), ids...) }

// HoldUntilApplied keeps the proposer from campaigning until its learner
// has applied upto: at restart, its own acceptor's truncation point (a
// candidate behind it would be refused by its own acceptor).
func (p *Proposer) HoldUntilApplied(upto uint64) { p.catchUpTo = max(p.catchUpTo, upto) }

// ObserveBallot tells the proposer of a ballot seen elsewhere (at restart:
// the one its own acceptor promised), so its next campaign goes above it.
func (p *Proposer) ObserveBallot(b uint64) { p.seen(b) }

func (p *Proposer) onHeartbeat(out *ProposerOutput, m *messages.Heartbeat, now time.Time) {
	if m.Ballot < p.highestSeen || m.From == p.cfg.ID {
		return
	}
	p.seen(m.Ballot)
	if p.state != stateFollower && m.Ballot > p.ballot {
		p.stepDown(out, now)
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
	p.prepareDue = now.Add(p.cfg.RetransmitInterval)
	for _, peer := range p.cfg.Peers {
		if p.promises[peer] == nil {
			out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Prepare{
				From: p.cfg.ID, Ballot: p.ballot, FirstInstance: p.prepareFrom}})
		}
	}
}

func (p *Proposer) onPromise(out *ProposerOutput, m *messages.Promise, now time.Time) {
	p.seen(m.Promised)
	if !m.Ok && m.From == p.cfg.ID && m.Truncated >= p.prepareFrom && p.state == stateCandidate && m.Ballot == p.ballot {
		// Its own acceptor let go of the log where this candidate's
		// learner still is (it lost a snapshot, say): it cannot win until
		// it has caught up, and campaigning meanwhile would only raise the
		// others' promises and keep them from electing anyone (sim seed
		// 1645). Its learner catches up on its own.
		p.catchUpTo = max(p.catchUpTo, m.Truncated)
		p.stepDown(out, now)
		p.resetElection(now)
		return
	}
	if !m.Ok {
		// A refusal for a lease held elsewhere (m.Leased) is no reason to
		// step down: the prepare is retransmitted until the lease expires.
		if m.Promised > max(p.ballot, p.boostBallot) && p.state != stateFollower {
			p.stepDown(out, now)
			p.resetElection(now) // randomized back-off before trying again
		} else if m.Leased && p.state == stateCandidate && m.Ballot == p.ballot {
			if end := now.Add(time.Duration(m.LeaseRemainingUs) * time.Microsecond); end.Before(p.prepareDue) {
				p.prepareDue = end
			}
		}
		return
	}
	if !p.isVoter(m.From) {
		return
	}
	// A ballot is used only once its own acceptor's promise of it is on
	// disk: that promise is what makes a restarted proposer pick a higher
	// ballot. Without it, a crash before the promise was synced let the
	// proposer reuse the ballot with another value (sim seed 11653).
	switch {
	case p.state == stateCandidate && m.Ballot == p.ballot:
		p.promises[m.From] = m
		if len(p.promises) >= p.quorum() && p.promises[p.cfg.ID] != nil {
			p.becomeMaster(out, now)
		}
	case p.state == stateMaster && p.boosting && m.Ballot == p.boostBallot:
		p.promises[m.From] = m
		if len(p.promises) >= p.quorum() && p.promises[p.cfg.ID] != nil {
			p.finishBoost(out, now)
		}
	}
}

// becomeMaster finishes phase 1: for every instance from prepareFrom to the
// highest any promise reported, it re-proposes the value accepted under the
// highest ballot, and fills instances nobody reported with no-ops. From then
// on only phase 2 runs.
//
// Its first value of its own, right after them, starts its epoch (§5.3).
// That value's acceptances also give it its first lease.
func (p *Proposer) becomeMaster(out *ProposerOutput, now time.Time) {
	best := p.bestReported()
	top := p.prepareFrom - 1
	for i := range best {
		top = max(top, i)
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
	p.epoch = p.nextInstance
	entries = append(entries, p.newInstance(&messages.Value{Noop: true, StartsEpoch: true, EpochMaster: p.cfg.ID}, now))
	clear(p.lastAck)
	clear(p.leaseAck)
	clear(p.confirmAck)
	clear(p.truncatedAt)
	p.boosting, p.boostAt = false, now
	p.broadcastAccept(out, entries, nil, now)
	p.heartbeatAt = now
	p.sendHeartbeats(out)
}

// sendHeartbeats tells the other proposers this master lives.
func (p *Proposer) sendHeartbeats(out *ProposerOutput) {
	for _, peer := range append(p.cfg.Peers[:len(p.cfg.Peers):len(p.cfg.Peers)], p.cfg.Learners...) {
		if peer != p.cfg.ID {
			out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Heartbeat{
				From: p.cfg.ID, Ballot: p.ballot, ChosenUpto: p.chosenUpto}})
		}
	}
}

func (p *Proposer) onAccepted(out *ProposerOutput, m *messages.Accepted, now time.Time) {
	p.seen(m.Promised)
	p.seen(m.Seen)
	if !m.Ok {
		if m.Promised > max(p.ballot, p.boostBallot) && p.state == stateMaster {
			p.stepDown(out, now)
			p.resetElection(now)
		}
		return
	}
	if p.state != stateMaster || m.Ballot != p.ballot || !p.isVoter(m.From) {
		return
	}
	p.lastAck[m.From] = now
	if m.Seq > p.leaseAck[m.From] && m.Seq <= p.seq {
		p.leaseAck[m.From] = m.Seq
	}
	if m.Seq > p.confirmAck[m.From] && m.Seq <= p.seq {
		p.confirmAck[m.From] = m.Seq
		defer p.releaseReads(out, now)
	}
	if m.Truncated > p.truncatedAt[m.From] {
		p.truncatedAt[m.From] = m.Truncated
		if p.stuckBelowTruncation() {
			p.stepDown(out, now)
			p.resetElection(now)
			return
		}
	}
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

// stuckBelowTruncation reports whether so many acceptors let go of their
// log past an instance still in flight that no majority can accept it any
// more. The instance is chosen (they applied it from a snapshot), but not
// necessarily with this master's value, and this master cannot learn which
// through phase 2: it steps down, catches up, and may campaign again from
// past the truncation (§5.5). It happens only to a master elected from
// promises given just before the truncation.
func (p *Proposer) stuckBelowTruncation() bool {
	low := uint64(0)
	for i := range p.inflight {
		if low == 0 || i < low {
			low = i
		}
	}
	if low == 0 {
		return false
	}
	gone := 0
	for _, t := range p.truncatedAt {
		if t >= low {
			gone++
		}
	}
	return gone > len(p.cfg.Peers)-p.quorum()
}

func (p *Proposer) onConfirmed(out *ProposerOutput, m *messages.Confirmed, now time.Time) {
	p.seen(m.Promised)
	if p.state != stateMaster || !p.isVoter(m.From) || m.Ballot != p.ballot {
		return
	}
	if !m.Ok {
		if m.Promised > max(p.ballot, p.boostBallot) {
			p.stepDown(out, now)
			p.resetElection(now)
		}
		return
	}
	if m.Seq > p.confirmAck[m.From] && m.Seq <= p.seq {
		p.confirmAck[m.From] = m.Seq
		p.releaseReads(out, now)
	}
}

// LearnerApplied is LearnerProgress for a master: reads waiting for the
// epoch's first instance to apply may go.
func (p *Proposer) LearnerApplied(applied uint64, now time.Time) ProposerOutput {
	var out ProposerOutput
	p.LearnerProgress(applied)
	p.releaseReads(&out, now)
	return out
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
	seq := p.nextSeq(now)
	p.lastSendAt = now
	for _, peer := range p.cfg.Peers {
		var es []*messages.Entry
		for _, f := range late {
			if !f.acks[peer] {
				es = append(es, f.entry)
			}
		}
		if len(es) > 0 {
			out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Accept{
				From: p.cfg.ID, Ballot: p.ballot, Entries: es, ChosenUpto: p.chosenUpto, Seq: seq}})
		}
	}
	for _, f := range late {
		f.sentAt = now
	}
}

// broadcastAccept sends entries to every voter. Voters outside durable
// (when it is not nil) get a lazy Accept: they store the entries but neither
// fsync nor answer, so that only a majority's fsyncs compete for the disk.
func (p *Proposer) broadcastAccept(out *ProposerOutput, entries []*messages.Entry, durable map[uint32]bool, now time.Time) {
	seq := p.nextSeq(now)
	p.lastSendAt = now
	for _, peer := range p.cfg.Peers {
		out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Accept{
			From: p.cfg.ID, Ballot: p.ballot, Entries: entries, ChosenUpto: p.chosenUpto,
			Lazy: durable != nil && !durable[peer], Seq: seq}})
	}
	for _, l := range p.cfg.Learners { // they store the log; nobody counts them
		out.Messages = append(out.Messages, Envelope{To: l, Msg: &messages.Accept{
			From: p.cfg.ID, Ballot: p.ballot, Entries: entries, ChosenUpto: p.chosenUpto, Lazy: true, Seq: seq}})
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

// broadcast sends a fresh message from mk to every voter and learner. Each peer gets
// its own message so a shell may hand them to different transports.
func (p *Proposer) broadcast(out *ProposerOutput, mk func() proto.Message) {
	for _, peer := range p.cfg.Peers {
		out.Messages = append(out.Messages, Envelope{To: peer, Msg: mk()})
	}
	for _, l := range p.cfg.Learners {
		out.Messages = append(out.Messages, Envelope{To: l, Msg: mk()})
	}
}

// stepDown ends a mastership or campaign. Commands never proposed are
// refused as not-master (safe to retry); commands in flight may still be
// chosen by the next master, so their clients learn the outcome is unknown.
func (p *Proposer) stepDown(out *ProposerOutput, now time.Time) {
	if until, _ := p.LeaseUntil(now); until.After(p.leaseEnd) {
		p.leaseEnd = until
	}
	// No read can be served on a lease of this node's any more once its
	// own clock is past every lease it ever held.
	out.ReleaseLease = !now.Before(p.leaseEnd)
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
				RequestId: cmd.RequestId, Code: messages.ErrorCode_ERROR_CODE_OUTCOME_UNKNOWN,
				Error: "mastership lost while the command was in flight: outcome unknown"}})
		}
	}
	clear(p.inflight)
	p.noticeDirty = false
	p.boosting, p.boostBallot = false, 0
	p.failReads(out)
}
