package paxos

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
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
	// Members is the configuration in force after the instances the local
	// learner has applied (§5.4); nil: version 1 of Peers and Learners.
	// MembershipApplied keeps it current.
	Members *messages.Membership
	// Incarnation is this node's incarnation (§5.1): a node whose
	// configuration records another one lost its disk and never campaigns.
	Incarnation uint64
	// Fresh: the node started on an empty data directory. Once a master's
	// heartbeat names another incarnation of it, it knows it lost its disk
	// and does not campaign until the configuration it applied records its
	// new one: its votes must not stand in for the old incarnation's.
	Fresh bool
	// Bootstrap is the bootstrap set this node's acceptor recorded, if
	// any (messages.Prepare.bootstrap).
	Bootstrap []*messages.Member
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

	// Membership (§5.4). members is the configuration in force at the
	// proposer's frontier: after the values it proposed as master, else
	// after what its learner applied (appliedMembers, in force from
	// appliedMembersAt+1). voters and learners are members' ids.
	members          *messages.Membership
	membersFrom      uint64 // the first instance members governs
	appliedMembers   *messages.Membership
	appliedMembersAt uint64
	voters, learners []uint32
	// pendingChange is a membership command waiting for the pipeline to
	// drain: it is proposed alone once nothing is in flight. changeAt is
	// the instance of a membership value in flight (0: none): nothing is
	// proposed after it until it is chosen, so every instance in flight is
	// governed by members. changeNext is the configuration it makes.
	pendingChange *messages.Command
	changeAt      uint64
	changeNext    *messages.Membership
	// reprepareFrom: a change of quorum was chosen just below it, and this
	// mastership must run phase 1 again with the new voters before it
	// proposes there (a boost from reprepareFrom).
	reprepareFrom uint64
	// epochPending: elected, but its epoch-start value waits until a
	// change of quorum found among the re-proposals is chosen and phase 1
	// ran with the new voters.
	epochPending bool
	// incarnations are the incarnations voters answered with: the master
	// records one in the configuration when none is, and replaces one when
	// a replica refuses for answering as another (it lost its disk, §5.1).
	incarnations map[uint32]uint64
	replaced     map[uint32]uint64
	// learnerIncs are the learners' incarnations, as they answered the
	// master's probes (a Confirm naming none): a learner is promoted with
	// its incarnation recorded, so it votes at once.
	learnerIncs map[uint32]uint64
	// lastNow is the time of the last Step or Tick: Submit, which takes
	// none, acts at it.
	lastNow time.Time
	// replacedSeen: a heartbeat named another incarnation of this node, or
	// an answer showed a voter that is not fresh and empty (the group is
	// not brand new, so this fresh node's campaign could not win).
	replacedSeen bool
	// acceptorProven: its own acceptor is no longer fresh.
	acceptorProven bool
	// freshPoll collects, for the campaign in progress, the voters that
	// refused as fresh and empty (§5.1); once every voter of a brand-new
	// group has, no vote was ever given anywhere, and bootstrapIncs names
	// their incarnations in every request until the configuration records
	// them.
	freshPoll     map[uint32]uint64
	bootstrapIncs map[uint32]uint64

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
		leaseAck: make(map[uint32]uint64), confirmAck: make(map[uint32]uint64), truncatedAt: make(map[uint32]uint64),
		incarnations: make(map[uint32]uint64), replaced: make(map[uint32]uint64), learnerIncs: make(map[uint32]uint64)}
	m := cfg.Members
	if m == nil {
		m = &messages.Membership{Version: 1}
		for _, id := range cfg.Peers {
			m.Members = append(m.Members, &messages.Member{Id: id, Role: VoterRole})
		}
		for _, id := range cfg.Learners {
			m.Members = append(m.Members, &messages.Member{Id: id, Role: LearnerRole})
		}
	}
	p.appliedMembers = m
	p.setMembers(m)
	p.adoptBootstrap(cfg.Bootstrap)
	p.resetElection(now)
	return p
}

// setMembers makes m the configuration at the frontier.
func (p *Proposer) setMembers(m *messages.Membership) {
	p.members = m
	p.voters = MembershipVoters(m)
	p.learners = MembershipLearners(m)
}

// Members returns the configuration at this proposer's frontier.
func (p *Proposer) Members() *messages.Membership { return p.members }

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

// Epoch returns this master's epoch, 0 when not master or before its
// epoch has started.
func (p *Proposer) Epoch() uint64 {
	if p.state != stateMaster || p.epochPending {
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
	seqs := make([]uint64, 0, len(p.voters))
	for _, peer := range p.voters {
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
	return p.noticeDirty || (len(p.queue) > 0 && len(p.inflight) < p.cfg.MaxInflight && p.proposing()) ||
		(p.pendingChange != nil && len(p.inflight) == 0 && p.proposing())
}

// proposing reports whether the master may put new values in flight: not
// during a boost's phase 1, not past a membership value still in flight,
// and not before its epoch has started.
func (p *Proposer) proposing() bool {
	return p.state == stateMaster && !p.boosting && p.changeAt == 0 && !p.epochPending && p.reprepareFrom == 0
}

func (p *Proposer) quorum() int { return quorum(len(p.voters)) }

// counts reports whether a vote from incarnation inc of node id counts
// under the configuration in force at the frontier: only its voters'
// promises and acknowledgements count towards a quorum, whatever a message
// claims, and only from the incarnation it records (§5.1, §5.4).
func (p *Proposer) counts(id uint32, inc uint64) bool { return CountsVote(p.members, id, inc) }

// toIncarnation is what the frontier's configuration records of peer's
// incarnation, sent with every request for a vote.
func (p *Proposer) toIncarnation(peer uint32) uint64 {
	if inc := MemberOf(p.members, peer).GetIncarnation(); inc != 0 {
		return inc
	}
	return p.bootstrapIncs[peer]
}

// pollFresh notes a fresh and empty voter's refusal of this campaign's
// prepare. When every voter of the first configuration (no incarnation
// recorded) has refused so, the group is brand new: no promise or
// acceptance was ever given, so none can have been lost with a disk, and
// the prepare is sent again naming each voter's incarnation, which they
// answer (§5.1). A replica that lost its disk never gets here: the others
// are not empty.
func (p *Proposer) pollFresh(out *ProposerOutput, m *messages.Promise, now time.Time) {
	if p.state != stateCandidate || m.Ballot != p.ballot || !m.Fresh || !m.Empty || p.prepareFrom != 1 {
		return
	}
	if p.freshPoll == nil {
		p.freshPoll = make(map[uint32]uint64)
	}
	p.freshPoll[m.From] = m.Incarnation
	for _, id := range p.voters {
		if p.freshPoll[id] == 0 || MemberOf(p.members, id).Incarnation != 0 {
			return
		}
	}
	p.bootstrapIncs = p.freshPoll
	p.freshPoll = nil
	p.sendPrepare(out, now)
}

// adoptBootstrap takes a bootstrap set some acceptor recorded, if this
// proposer has none: the incarnations it names were every voter's when a
// poll found the group brand new. A replica that lost its disk since
// refuses requests naming its old incarnation, so naming them is safe.
func (p *Proposer) adoptBootstrap(set []*messages.Member) {
	if p.bootstrapIncs != nil || len(set) == 0 {
		return
	}
	p.bootstrapIncs = make(map[uint32]uint64, len(set))
	for _, m := range set {
		p.bootstrapIncs[m.Id] = m.Incarnation
	}
}

// bootstrapSet is bootstrapIncs as carried in a Prepare.
func (p *Proposer) bootstrapSet() []*messages.Member {
	if p.bootstrapIncs == nil {
		return nil
	}
	set := make([]*messages.Member, 0, len(p.bootstrapIncs))
	for _, id := range p.voters {
		if inc := p.bootstrapIncs[id]; inc != 0 {
			set = append(set, &messages.Member{Id: id, Incarnation: inc})
		}
	}
	return set
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
	case cmd.Membership:
		p.submitChange(&out, cmd)
	default:
		p.queue = append(p.queue, cmd)
		p.queueBytes += len(cmd.Payload)
	}
	return out
}

// submitChange takes a membership command (§5.4): one at a time, checked
// against the configuration at the frontier, proposed alone once the
// pipeline has drained. A membership command carries no epoch: its version
// alone decides whether it applies (a stale one finds another version in
// force), so a change a deposed master proposed still takes effect if
// chosen.
func (p *Proposer) submitChange(out *ProposerOutput, cmd *messages.Command) {
	refuse := func(code messages.ErrorCode, why string) {
		out.Replies = append(out.Replies, Reply{Cmd: cmd, Response: &messages.ClientResponse{
			RequestId: cmd.RequestId, Code: code, Error: why, MasterId: p.cfg.ID}})
	}
	if p.pendingChange != nil || p.changeAt != 0 || p.epochPending || p.reprepareFrom != 0 {
		refuse(messages.ErrorCode_ERROR_CODE_OVERLOADED, "another membership change is in progress; try again")
		return
	}
	next := &messages.Membership{}
	if err := proto.Unmarshal(cmd.Payload, next); err != nil {
		refuse(messages.ErrorCode_ERROR_CODE_INVALID, "membership does not decode: "+err.Error())
		return
	}
	if err := CheckMembershipChange(p.members, next); err != nil {
		refuse(messages.ErrorCode_ERROR_CODE_INVALID, err.Error())
		return
	}
	if !slices.Equal(MembershipVoters(next), p.voters) && p.unrecordedVoter() {
		// A voter whose incarnation is not recorded cannot vote yet (§5.1);
		// another change of voters could leave no majority that can.
		refuse(messages.ErrorCode_ERROR_CODE_OVERLOADED, "a voter's incarnation is not recorded yet: try again shortly")
		return
	}
	for _, id := range MembershipVoters(next) {
		if m := MemberOf(next, id); m.Incarnation == 0 && !slices.Contains(p.voters, id) {
			// A new voter is recorded with its incarnation, so that it
			// votes at once: otherwise recording it would take a majority
			// without it.
			if m.Incarnation = p.learnerIncs[id]; m.Incarnation == 0 {
				refuse(messages.ErrorCode_ERROR_CODE_OVERLOADED, fmt.Sprintf("not heard from node %d yet: try again shortly", id))
				return
			}
			cmd.Payload, _ = proto.Marshal(next)
		}
	}
	if len(MembershipVoters(next)) < len(p.voters) && len(p.replaced) > 0 {
		refuse(messages.ErrorCode_ERROR_CODE_INVALID, "a voter is rebuilding after losing its disk: no voter is removed until it is replaced")
		return
	}
	if !CountsVote(next, p.cfg.ID, p.cfg.Incarnation) {
		// Removing the master: it hands mastership over first (§5.4). It
		// steps down and keeps out of elections until the lease the
		// acceptors granted it has run out and another has had time to
		// win (before that, it alone could be elected); the client retries
		// with the new master, which proposes the change.
		p.stepDown(out, p.lastNow)
		p.HoldElection(p.lastNow, p.cfg.LeaseTimeout+2*p.cfg.ElectionTimeoutMax)
		refuse(messages.ErrorCode_ERROR_CODE_NOT_MASTER, "the master hands mastership over before it is removed: retry with the next master")
		return
	}
	cmd.Epoch = 0
	p.pendingChange = cmd
}

// unrecordedVoter reports whether the configuration at the frontier
// records no incarnation for some voter.
func (p *Proposer) unrecordedVoter() bool {
	for _, id := range p.voters {
		if MemberOf(p.members, id).Incarnation == 0 {
			return true
		}
	}
	return false
}

// proposeChange proposes the pending membership command alone, once
// nothing is in flight.
func (p *Proposer) proposeChange(now time.Time) *messages.Entry {
	cmd := p.pendingChange
	p.pendingChange = nil
	return p.newInstance(&messages.Value{Commands: []*messages.Command{cmd}}, now)
}

// changeChosen is called once the membership value at changeAt is chosen:
// its configuration governs every later instance. If it changes how votes
// are counted, phase 1 runs again with the new voters (a boost from the
// next instance) before anything is proposed past it: a candidate of the
// old configuration may have had values accepted there by voters this
// mastership never asked (docs/membership.md).
func (p *Proposer) changeChosen(out *ProposerOutput, now time.Time) {
	at, next := p.changeAt, p.changeNext
	p.changeAt, p.changeNext = 0, nil
	old := p.members
	for _, id := range append(p.voters[:len(p.voters):len(p.voters)], p.learners...) {
		if MemberOf(next, id) == nil && id != p.cfg.ID {
			// A removed member is sent nothing from now on: this last
			// notice lets it learn the change that removed it (its status
			// then says so).
			out.Messages = append(out.Messages, Envelope{To: id, Msg: &messages.Chosen{
				From: p.cfg.ID, Ballot: p.ballot, ChosenUpto: p.noticeUpto}})
		}
	}
	p.setMembers(next)
	if ChangesQuorum(old, next) && Planted != BugQuorumFromStaleConfig {
		p.reprepareFrom = at + 1
		p.startBoost(out, now, at+1)
		return
	}
	if Planted == BugQuorumFromStaleConfig && ChangesQuorum(old, next) {
		p.setMembers(old) // the bug: go on counting with the configuration it was elected under
	}
	if p.epochPending {
		p.broadcastAccept(out, []*messages.Entry{p.startEpoch(now)}, nil, now)
	}
}

// startEpoch puts this mastership's first value of its own in flight: the
// no-op that starts its epoch (§5.3) at the next instance.
func (p *Proposer) startEpoch(now time.Time) *messages.Entry {
	p.epoch, p.epochPending = p.nextInstance, false
	return p.newInstance(&messages.Value{Noop: true, StartsEpoch: true, EpochMaster: p.cfg.ID}, now)
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
	for _, peer := range p.voters {
		out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Confirm{
			From: p.cfg.ID, Ballot: p.ballot, Seq: p.roundSeq, ToIncarnation: p.toIncarnation(peer)}})
	}
}

// releaseReads answers the reads a majority has confirmed, and starts the
// next round if reads wait for one.
func (p *Proposer) releaseReads(out *ProposerOutput, now time.Time) {
	if len(p.reads) == 0 || p.state != stateMaster || p.applied < p.epoch {
		return
	}
	seqs := make([]uint64, 0, len(p.voters))
	for _, peer := range p.voters {
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
	if p.pendingChange != nil && len(p.inflight) == 0 && p.proposing() {
		fresh = append(fresh, p.proposeChange(now))
	}
	for len(p.queue) > 0 && len(p.inflight) < p.cfg.MaxInflight && p.proposing() && p.pendingChange == nil {
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
		for _, cmd := range batch {
			cmd.Epoch = p.epoch
		}
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
	p.watchChange(e)
	p.nextInstance++
	p.inflight[e.Instance] = &inflight{entry: e, acks: make(map[uint32]bool), sentAt: now}
	p.stats.Proposed++
	return e
}

// watchChange notes a membership value put in flight at e: until it is
// chosen, nothing is proposed after it (only its own configuration is
// certain for the instances in flight).
func (p *Proposer) watchChange(e *messages.Entry) {
	if next := FoldMembership(p.members, e.Value); next != p.members {
		p.changeAt, p.changeNext = e.Instance, next
	}
}

// Step handles a message for the proposer role.
func (p *Proposer) Step(msg proto.Message, now time.Time) ProposerOutput {
	var out ProposerOutput
	p.lastNow = now
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
	p.lastNow = now
	switch p.state {
	case stateFollower:
		if !now.Before(p.electionAt) {
			if p.applied < p.catchUpTo || !CountsVote(p.appliedMembers, p.cfg.ID, p.cfg.Incarnation) || p.unproven() {
				// Behind its own acceptor's truncation it cannot win; a
				// learner never campaigns, nor a replica whose vote the
				// configuration does not count (it lost its disk, §5.1).
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
		p.maybeReconfigure()
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
	if !due || !p.proposing() || p.pendingChange != nil || len(p.inflight) >= p.cfg.MaxInflight || p.applied < p.epoch {
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
	if !p.proposing() || len(p.inflight) > 0 || len(p.queue) > 0 || p.pendingChange != nil || now.Sub(p.lastSendAt) < p.cfg.LeaseTimeout/2 {
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
		if now.Sub(p.boostAt) >= p.cfg.ElectionTimeoutMin && p.reprepareFrom != 0 {
			// The new voters did not answer: without their phase 1 this
			// mastership cannot go on past the change.
			p.stepDown(out, now)
			p.resetElection(now)
		} else if now.Sub(p.boostAt) >= p.cfg.ElectionTimeoutMin {
			p.boosting, p.promises = false, nil // try again later; the mastership goes on
		} else if now.Sub(p.preparedAt) >= p.cfg.RetransmitInterval {
			p.sendBoostPrepare(out, now)
		}
		return
	}
	due := now.Sub(p.boostAt) >= p.cfg.BoostInterval ||
		(p.highestSeen > p.ballot && now.Sub(p.boostAt) >= p.cfg.RetransmitInterval)
	if !due || p.changeAt != 0 || p.epochPending {
		return
	}
	// As a campaign does (see campaign), but never from below the
	// configuration in force: the instances before it are chosen, and the
	// new voters' promises say nothing about them.
	p.startBoost(out, now, max(p.applied+1, p.membersFrom))
}

// startBoost starts a phase 1 from instance from under a new ballot.
func (p *Proposer) startBoost(out *ProposerOutput, now time.Time, from uint64) {
	p.boosting = true
	p.boostAt = now
	p.boostBallot = NextBallot(max(p.highestSeen, p.ballot), p.cfg.ID)
	p.seen(p.boostBallot)
	p.promises = make(map[uint32]*messages.Promise)
	p.prepareFrom = from
	p.sendBoostPrepare(out, now)
}

func (p *Proposer) sendBoostPrepare(out *ProposerOutput, now time.Time) {
	p.preparedAt = now
	for _, peer := range p.voters {
		if p.promises[peer] == nil {
			out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Prepare{
				From: p.cfg.ID, Ballot: p.boostBallot, FirstInstance: p.prepareFrom, ToIncarnation: p.toIncarnation(peer)}})
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
		members, membersFrom := p.members, p.membersFrom // the promises were counted under these
		p.stepDown(out, now)
		p.state, p.ballot, p.promises, p.prepareFrom = stateCandidate, ballot, promises, from
		p.setMembers(members)
		p.membersFrom = membersFrom
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
	p.reprepareFrom = 0
	p.changeAt, p.changeNext = 0, nil
	entries := p.repropose(best, old, top, now)
	p.stats.Boosts++
	p.stats.Boosted += uint64(len(entries))
	clear(p.lastAck)
	if p.epochPending && p.changeAt == 0 {
		entries = append(entries, p.startEpoch(now))
	}
	if len(entries) > 0 {
		p.broadcastAccept(out, entries, nil, now)
	}
	p.heartbeatAt = now
	p.sendHeartbeats(out)
}

// repropose puts in flight, under the current ballot, every instance from
// prepareFrom to top: the value accepted under the highest ballot the
// promises report (best), else the one this master had in flight there
// (old, a boost's), else a no-op. It stops after the first value that
// changes how votes are counted (§5.4): the promises came from the
// configuration before it, and say nothing reliable about the instances
// after it; once it is chosen, phase 1 runs again with the new voters
// (changeChosen).
func (p *Proposer) repropose(best map[uint64]*messages.Entry, old map[uint64]*inflight, top uint64, now time.Time) []*messages.Entry {
	var entries []*messages.Entry
	p.nextInstance = p.prepareFrom
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
		p.nextInstance = i + 1
		if next := FoldMembership(p.members, v); next != p.members {
			if ChangesQuorum(p.members, next) {
				p.changeAt, p.changeNext = i, next
				break
			}
			p.setMembers(next) // learners only: no vote counts differently
		}
	}
	if p.changeAt == 0 {
		p.nextInstance = max(p.nextInstance, top+1)
	}
	return entries
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

// MembershipApplied tells the proposer that the local learner applied the
// configuration m at instance at (or installed a snapshot of it): m
// governs every instance after at (§5.4). A follower takes it at once. A
// master or candidate keeps its own view, which its own proposals carry
// ahead, unless m is newer than that view: then another master chose a
// change this one never proposed, its view is stale, and it adopts m if
// only learners differ, or else steps down (its campaign or its
// instances in flight were counted under the wrong voters).
func (p *Proposer) MembershipApplied(m *messages.Membership, at uint64, now time.Time) ProposerOutput {
	var out ProposerOutput
	if at < p.appliedMembersAt {
		return out
	}
	p.appliedMembers, p.appliedMembersAt = m, at
	p.LearnerProgress(at)
	switch {
	case p.state == stateFollower:
		p.setMembers(m)
		p.membersFrom = at + 1
	case m.GetVersion() <= p.members.GetVersion():
	case p.state == stateMaster && !ChangesQuorum(p.members, m):
		p.setMembers(m)
		p.membersFrom = at + 1
	default:
		p.stepDown(&out, now)
		p.resetElection(now)
	}
	return out
}

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
	if m.ToIncarnation != 0 && m.ToIncarnation != p.cfg.Incarnation {
		p.replacedSeen = true
	}
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
	p.freshPoll = nil
	p.setMembers(p.appliedMembers)
	p.membersFrom = p.appliedMembersAt + 1
	p.prepareFrom = max(p.applied, p.appliedMembersAt) + 1
	p.resetElection(now)
	p.sendPrepare(out, now)
}

func (p *Proposer) sendPrepare(out *ProposerOutput, now time.Time) {
	p.preparedAt = now
	p.prepareDue = now.Add(p.cfg.RetransmitInterval)
	for _, peer := range p.voters {
		if p.promises[peer] == nil {
			out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Prepare{
				From: p.cfg.ID, Ballot: p.ballot, FirstInstance: p.prepareFrom, ToIncarnation: p.toIncarnation(peer),
				Bootstrap: p.bootstrapSet()}})
		}
	}
}

func (p *Proposer) onPromise(out *ProposerOutput, m *messages.Promise, now time.Time) {
	p.seen(m.Promised)
	p.noteIncarnation(m.From, m.Incarnation, m.Ok, m.Fresh, m.Ballot)
	if m.From != p.cfg.ID && p.toIncarnation(m.From) == 0 && (!m.Fresh || !m.Empty) && p.cfg.Fresh && !p.acceptorProven {
		// Not a brand-new group: this fresh node cannot win until the
		// group records its incarnation; campaigning would only raise the
		// others' promises and keep them from electing anyone.
		p.replacedSeen = true
		if p.state == stateCandidate && p.unproven() {
			p.stepDown(out, now)
			return
		}
	}
	if p.bootstrapIncs == nil && len(m.Bootstrap) > 0 && p.state == stateCandidate {
		p.adoptBootstrap(m.Bootstrap)
		p.sendPrepare(out, now) // again, naming the incarnations
	}
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
	if !m.Ok && m.Fresh {
		p.pollFresh(out, m, now)
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
	if !p.counts(m.From, m.Incarnation) {
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
	p.chosenUpto = max(p.chosenUpto, p.prepareFrom-1)
	p.noticeUpto = p.prepareFrom - 1
	p.changeAt, p.changeNext, p.reprepareFrom = 0, nil, 0
	entries := p.repropose(best, nil, top, now)
	if p.changeAt != 0 {
		// Its epoch starts once the change is chosen and phase 1 ran
		// with the new voters (finishBoost); no read or command before.
		p.epoch, p.epochPending = math.MaxUint64, true
	} else {
		entries = append(entries, p.startEpoch(now))
	}
	clear(p.lastAck)
	clear(p.leaseAck)
	clear(p.confirmAck)
	clear(p.truncatedAt)
	p.boosting, p.boostAt = false, now
	p.broadcastAccept(out, entries, nil, now)
	p.heartbeatAt = now
	p.sendHeartbeats(out)
}

// sendHeartbeats tells the other proposers this master lives, and probes
// the learners whose incarnation it has not heard (see learnerIncs).
func (p *Proposer) sendHeartbeats(out *ProposerOutput) {
	for _, l := range p.learners {
		if p.learnerIncs[l] == 0 {
			out.Messages = append(out.Messages, Envelope{To: l, Msg: &messages.Confirm{From: p.cfg.ID, Ballot: p.ballot}})
		}
	}
	for _, peer := range append(p.voters[:len(p.voters):len(p.voters)], p.learners...) {
		if peer != p.cfg.ID {
			out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Heartbeat{
				From: p.cfg.ID, Ballot: p.ballot, ChosenUpto: p.chosenUpto, ToIncarnation: p.toIncarnation(peer)}})
		}
	}
}

func (p *Proposer) onAccepted(out *ProposerOutput, m *messages.Accepted, now time.Time) {
	p.seen(m.Promised)
	p.seen(m.Seen)
	p.noteIncarnation(m.From, m.Incarnation, m.Ok, m.Fresh, m.Ballot)
	if !m.Ok {
		if m.Promised > max(p.ballot, p.boostBallot) && p.state == stateMaster ||
			p.state == stateMaster && p.replaced[m.From] != 0 && p.stuckBelowTruncation() {
			p.stepDown(out, now)
			p.resetElection(now)
		}
		return
	}
	if p.state != stateMaster || m.Ballot != p.ballot || !p.counts(m.From, m.Incarnation) {
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
		if p.changeAt != 0 && len(p.inflight) == 0 {
			p.changeChosen(out, now)
		}
	}
}

// AcceptorProven tells the proposer that its own acceptor is no longer
// fresh (a request named its incarnation).
func (p *Proposer) AcceptorProven() { p.acceptorProven = true }

// unproven reports whether this node started on an empty directory, heard
// from a master that records another incarnation of it, and has not yet
// applied a configuration that records its own (ProposerConfig.Fresh).
func (p *Proposer) unproven() bool {
	return p.cfg.Fresh && !p.acceptorProven && p.replacedSeen &&
		MemberOf(p.appliedMembers, p.cfg.ID).GetIncarnation() != p.cfg.Incarnation
}

// noteIncarnation remembers the incarnation a voter answered with: a vote,
// or a fresh acceptor's refusal (it answers nothing until a request names
// its incarnation), from one the configuration does not record yet is
// recorded (registered), and a refusal from another incarnation than the
// recorded one (the acceptor lost its disk and starts again, §5.1) asks
// for it to be replaced, by maybeReconfigure. Only answers to this
// proposer's current ballots are taken: a delayed one may come from an
// incarnation that is gone.
func (p *Proposer) noteIncarnation(id uint32, inc uint64, ok, fresh bool, ballot uint64) {
	if inc == 0 || p.state == stateFollower || (ballot != p.ballot && ballot != p.boostBallot) {
		return
	}
	mem := MemberOf(p.members, id)
	if mem == nil || mem.Role == LearnerRole {
		return
	}
	switch {
	case (ok || fresh) && mem.Incarnation == 0:
		p.incarnations[id] = inc
	case !ok && mem.Incarnation != 0 && mem.Incarnation != inc:
		p.replaced[id] = inc
	}
}

// maybeReconfigure has the master record the incarnations of voters the
// configuration does not record yet (all at once), or else replace one
// voter's incarnation by the one it answers with now, through the log like
// any membership change (§5.1). Until the replacement is chosen, the
// replica's new incarnation neither votes nor is counted; from then on
// only it is.
func (p *Proposer) maybeReconfigure() {
	if !p.proposing() || p.pendingChange != nil || p.applied < p.epoch {
		return
	}
	next := proto.Clone(p.members).(*messages.Membership)
	changed := false
	for _, mem := range next.Members {
		if inc := p.incarnations[mem.Id]; mem.Role == VoterRole && mem.Incarnation == 0 && inc != 0 {
			mem.Incarnation, changed = inc, true
		}
	}
	if !changed {
		for _, id := range p.voters {
			if inc := p.replaced[id]; inc != 0 && inc != MemberOf(next, id).Incarnation {
				MemberOf(next, id).Incarnation, changed = inc, true
				break
			}
		}
	}
	if !changed {
		return
	}
	next.Version++
	if CheckMembershipChange(p.members, next) != nil {
		return
	}
	payload, _ := proto.Marshal(next)
	p.pendingChange = &messages.Command{Origin: p.cfg.ID, Membership: true, Payload: payload}
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
	for _, id := range p.voters {
		// A voter that lost its disk cannot accept for its old
		// incarnation either (§5.1).
		if p.truncatedAt[id] >= low || p.replaced[id] != 0 {
			gone++
		}
	}
	return gone > len(p.voters)-p.quorum()
}

func (p *Proposer) onConfirmed(out *ProposerOutput, m *messages.Confirmed, now time.Time) {
	p.seen(m.Promised)
	if mem := MemberOf(p.members, m.From); mem != nil && mem.Role == LearnerRole && m.Incarnation != 0 {
		p.learnerIncs[m.From] = m.Incarnation
	}
	if p.state != stateMaster || !p.counts(m.From, m.Incarnation) || m.Ballot != p.ballot {
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
	for _, peer := range p.voters {
		var es []*messages.Entry
		for _, f := range late {
			if !f.acks[peer] {
				es = append(es, f.entry)
			}
		}
		if len(es) > 0 {
			out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Accept{
				From: p.cfg.ID, Ballot: p.ballot, Entries: es, ChosenUpto: p.chosenUpto, Seq: seq, ToIncarnation: p.toIncarnation(peer)}})
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
	for _, peer := range p.voters {
		out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Accept{
			From: p.cfg.ID, Ballot: p.ballot, Entries: entries, ChosenUpto: p.chosenUpto,
			Lazy: durable != nil && !durable[peer], Seq: seq, ToIncarnation: p.toIncarnation(peer)}})
	}
	for _, l := range p.learners { // they store the log; nobody counts them
		out.Messages = append(out.Messages, Envelope{To: l, Msg: &messages.Accept{
			From: p.cfg.ID, Ballot: p.ballot, Entries: entries, ChosenUpto: p.chosenUpto, Lazy: true, Seq: seq, ToIncarnation: p.toIncarnation(l)}})
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
	for _, peer := range p.voters {
		if _, ok := p.lastAck[peer]; ok && peer != p.cfg.ID {
			followers = append(followers, peer)
		}
	}
	need := p.quorum() - 1
	if len(followers) < need || len(followers) == len(p.voters)-1 && need == len(followers) {
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
	for _, peer := range p.voters {
		out.Messages = append(out.Messages, Envelope{To: peer, Msg: mk()})
	}
	for _, l := range p.learners {
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
	if cmd := p.pendingChange; cmd != nil && cmd.ReplyAddress != "" {
		out.Replies = append(out.Replies, Reply{Cmd: cmd, Response: &messages.ClientResponse{
			RequestId: cmd.RequestId, Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER, Error: "master stepped down"}})
	}
	p.pendingChange, p.changeAt, p.changeNext, p.reprepareFrom, p.epochPending = nil, 0, nil, 0, false
	p.setMembers(p.appliedMembers)
	p.membersFrom = p.appliedMembersAt + 1
	clear(p.incarnations)
	clear(p.replaced)
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
