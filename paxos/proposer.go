package paxos

import (
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
	// BootstrapFrom is the instance a brand-new group's first prepare is
	// from (0 or 1: the group starts from an empty log). A group restored
	// from a backup at instance I starts from I+1: every voter restored
	// the same state, so instances up to I are chosen by construction.
	BootstrapFrom uint64
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
	// MaxQueueBytes bounds the payload bytes of the commands waiting
	// (default 64 MiB): a few clients with large values cannot make the
	// master hold gigabytes. One command alone is always taken.
	MaxQueueBytes int
	// MaxAcceptBytes is the byte budget of the entries one Accept carries
	// (default DefaultMaxAcceptBytes): more go in several Accepts.
	MaxAcceptBytes int
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
	// QuorumTimeout: a master that has heard no majority of voters answer
	// anything it sent within this long steps down (check-quorum, see
	// liveness.go). Default: LeaseTimeout - ClockDriftMax, when its own
	// lease, counted from sends a majority answered, is over for sure, so
	// that the acceptors may drop theirs at once.
	QuorumTimeout time.Duration
	// Rand drives the randomized election back-off; seed it for
	// repeatable runs.
	Rand *rand.Rand
	// Planted is a known bug this proposer runs with (tests only: see
	// PlantedBug).
	Planted PlantedBug
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c ProposerConfig) WithDefaults() ProposerConfig {
	c.setDefaults()
	return c
}

func (c *ProposerConfig) setDefaults() {
	orDefault(&c.HeartbeatInterval, 100*time.Millisecond)
	orDefault(&c.ElectionTimeoutMin, 300*time.Millisecond)
	if c.ElectionTimeoutMax <= c.ElectionTimeoutMin {
		c.ElectionTimeoutMax = 2 * c.ElectionTimeoutMin
	}
	orDefault(&c.RetransmitInterval, 250*time.Millisecond)
	orDefault(&c.MaxBatchCommands, 1024)
	orDefault(&c.MaxBatchBytes, 1<<20)
	orDefault(&c.MaxInflight, 32)
	orDefault(&c.MaxQueue, 32768)
	orDefault(&c.MaxQueueBytes, 64<<20)
	orDefault(&c.MaxAcceptBytes, DefaultMaxAcceptBytes)
	orDefault(&c.LeaseTimeout, 800*time.Millisecond)
	orDefault(&c.ClockDriftMax, 100*time.Millisecond)
	orDefault(&c.CheckInterval, 5*time.Minute)
	orDefault(&c.BoostInterval, 10*time.Second)
	orDefault(&c.ReadTimeout, time.Second)
	orDefault(&c.MaxReads, 32768)
	if c.QuorumTimeout < c.LeaseTimeout-c.ClockDriftMax {
		c.QuorumTimeout = c.LeaseTimeout - c.ClockDriftMax // resigning earlier would leave its lease to wait out
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
	// proposedAt: its first send (sentAt moves with retransmissions).
	proposedAt time.Time
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
	// heardAt is when this follower last heard its master's heartbeat: it
	// refuses pre-votes for an election timeout after (liveness.go).
	heardAt time.Time
	// Pre-vote in progress (liveness.go): the round's ballot and the
	// voters that said yes.
	prevoting     bool
	prevoteBallot uint64
	prevotes      map[uint32]bool
	// campaignAt is when this node's acceptor last took part in another
	// node's campaign at a ballot no lower than any seen here, and
	// campaigner that node (liveness.go, NoteCampaign).
	campaignAt time.Time
	campaigner uint32

	// chosenUpto: every instance <= chosenUpto is known chosen.
	chosenUpto uint64
	applied    uint64 // reported by the local learner

	// Phase 1 (a campaign, or a master's boost): promises holds, per
	// acceptor that promised, how far its promise has come (it may come in
	// pages: Promise.accepted_upto); best the entry accepted under the
	// highest ballot at each instance from prepareFrom, over every page
	// received; bestInterrupts, that some page showed a boost's mastership
	// interrupted (see interrupted).
	promises       map[uint32]*promised
	best           map[uint64]*messages.Entry
	bestInterrupts bool
	prepareFrom    uint64
	preparedAt     time.Time
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
	// heardAck is, per voter, the highest seq it answered in any way that
	// shows the two can talk (check-quorum); masterAt when this
	// mastership began.
	heardAck map[uint32]uint64
	masterAt time.Time
	// catchUpTo: its own acceptor let go of the log up to here; it does
	// not campaign before its learner has applied that far.
	catchUpTo uint64
	// refusedBelow: a peer refused this campaign's Prepare because it let
	// go of its log past prepareFrom (§5.5); once the local learner has
	// applied that far, phase 1 starts again after it (reprepareCaughtUp).
	refusedBelow uint64
	// checkAt is when this master last proposed a checksum value;
	// checkAsked, that one was asked for.
	checkAt    time.Time
	checkAsked bool
	// leaseEnd is the latest end of a lease this node held as master,
	// recorded as it steps down.
	leaseEnd time.Time
	// votersSince is when the voters last changed: check-quorum gives a
	// new configuration a whole QuorumTimeout to show a majority of it
	// answering (a voter just added has answered nothing yet).
	votersSince time.Time
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
	// handover: this master is handing mastership over (handover.go);
	// handoverBallot: this candidate campaigns because the master of that
	// ballot handed mastership to it, and its Prepares say so.
	handover       *handover
	handoverBallot uint64
	// leavingAt: when each peer said it is about to stop (Leaving).
	leavingAt map[uint32]time.Time
	boostAt   time.Time // when the last boost started (or the mastership)
	stats     ProposerStats
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
	Resigned  uint64 // masterships ended for want of a majority's answers
	PreVotes  uint64 // pre-vote rounds started
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
	// Committed: for each instance this master just saw chosen, how long
	// after its first Accept (for metrics; nothing decides on it).
	Committed []time.Duration
	// Resigned: that node said it stepped down as master of
	// ResignedBallot with its own lease over; the shell has the local
	// acceptor drop the lease it granted it (Acceptor.ReleaseLease).
	Resigned       uint32
	ResignedBallot uint64
}

// NewProposer returns a follower that will campaign if it hears no master.
func NewProposer(cfg ProposerConfig, now time.Time) *Proposer {
	cfg.setDefaults()
	p := &Proposer{cfg: cfg, inflight: make(map[uint64]*inflight), lastAck: make(map[uint32]time.Time),
		leaseAck: make(map[uint32]uint64), confirmAck: make(map[uint32]uint64), heardAck: make(map[uint32]uint64), truncatedAt: make(map[uint32]uint64),
		incarnations: make(map[uint32]uint64), replaced: make(map[uint32]uint64), learnerIncs: make(map[uint32]uint64),
		leavingAt: make(map[uint32]time.Time)}
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
	voters := MembershipVoters(m)
	if !slices.Equal(voters, p.voters) {
		p.votersSince = p.lastNow
	}
	p.voters = voters
	p.learners = MembershipLearners(m)
}

// Members returns the configuration at this proposer's frontier.
func (p *Proposer) Members() *messages.Membership { return p.members }

// IsMaster reports whether this proposer is master and accepts writes.
// A master handing mastership over accepts none: it is not master here.
func (p *Proposer) IsMaster() bool { return p.state == stateMaster && p.handover == nil }

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

// QueueLen returns the number of commands waiting for an instance.
func (p *Proposer) QueueLen() int { return len(p.queue) }

// InflightLen returns the number of instances in phase 2.
func (p *Proposer) InflightLen() int { return len(p.inflight) }

// LearnerProgress tells the proposer how far the local learner has applied;
// everything up to it is chosen.
func (p *Proposer) LearnerProgress(applied uint64) {
	p.applied = max(p.applied, applied)
	p.chosenUpto = max(p.chosenUpto, applied)
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
	case *messages.Handover:
		p.onHandover(&out, m, now)
	case *messages.Leaving:
		p.onLeaving(&out, m, now)
	case *messages.PreVote:
		p.onPreVote(&out, m, now)
	case *messages.PreVoted:
		p.onPreVoted(&out, m, now)
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
			if p.applied < p.catchUpTo || !p.countsVote(p.appliedMembers, p.cfg.ID, p.cfg.Incarnation) || p.unproven() {
				// Behind its own acceptor's truncation it cannot win; a
				// learner never campaigns, nor a replica whose vote the
				// configuration does not count (it lost its disk, §5.1).
				p.resetElection(now)
			} else {
				p.handoverBallot = 0 // on its own account
				p.startPreVote(&out, now)
			}
		}
	case stateCandidate:
		if !now.Before(p.electionAt) {
			// No quorum in time: ask again before trying higher, so that
			// a candidate cut off from a majority stops raising ballots.
			p.stepDown(&out, now)
			p.startPreVote(&out, now)
		} else if p.reprepareCaughtUp() || !now.Before(p.prepareDue) {
			p.sendPrepare(&out, now)
		}
	case stateMaster:
		if p.maybeHandOver(&out, now) {
			break
		}
		if p.lostQuorum(now) {
			p.resign(&out, now)
			return out
		}
		if now.Sub(p.heartbeatAt) >= p.cfg.HeartbeatInterval {
			p.heartbeatAt = now
			p.sendHeartbeats(&out)
			p.probeQuorum(&out, now)
			p.noticeDirty = true // learners hear the chosen prefix at least this often
		}
		p.retransmit(&out, now)
		if p.handover != nil {
			break // it only sees what it has in flight chosen
		}
		p.expireReads(&out, now)
		p.maybeBoost(&out, now)
		p.maybeRenew(&out, now)
		p.maybeCheck(&out, now)
		p.maybeReconfigure()
	}
	return out
}
func (p *Proposer) seen(b uint64) { p.highestSeen = max(p.highestSeen, b) }

// HoldUntilApplied keeps the proposer from campaigning until its learner
// has applied upto: at restart, its own acceptor's truncation point (a
// candidate behind it would be refused by its own acceptor).
func (p *Proposer) HoldUntilApplied(upto uint64) { p.catchUpTo = max(p.catchUpTo, upto) }

// ObserveBallot tells the proposer of a ballot seen elsewhere (at restart:
// the one its own acceptor promised), so its next campaign goes above it.
func (p *Proposer) ObserveBallot(b uint64) { p.seen(b) }

// LearnerApplied is LearnerProgress for a master: reads waiting for the
// epoch's first instance to apply may go.
func (p *Proposer) LearnerApplied(applied uint64, now time.Time) ProposerOutput {
	var out ProposerOutput
	p.LearnerProgress(applied)
	p.releaseReads(&out, now)
	return out
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
	p.promises, p.best, p.bestInterrupts = nil, nil, false
	p.handover = nil
	p.prevoting, p.prevotes = false, nil
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
