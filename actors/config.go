package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/livepaxos/livepaxos/core"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
	"github.com/livepaxos/livepaxos/storage"
)

// The state machine a replica feeds, and the optional interfaces that
// give it reads, epochs and snapshots (and core.Checksummer, consistency
// checks): package core calls them.
type (
	StateMachine  = core.StateMachine
	Reader        = core.Reader
	EpochObserver = core.EpochObserver
	Snapshotter   = core.Snapshotter
)

// DefaultName is the actor name of the replica parent; peers address its
// children under it ("<name>/core", "<name>/snapshotter").
const DefaultName = "replica"

// The replica parent's children: the replica core's shell, which takes
// every protocol message, client request and read, and the snapshot
// device, which writes, serves and fetches snapshot files (§5.5).
const (
	CoreName        = "core"
	SnapshotterName = "snapshotter"
)

// The roles a client or a peer addresses. Since one replica core holds
// every role, each is the core's actor; the names stay so that a caller
// says which role it means.
const (
	ProposerName = CoreName // client commands, status, membership, checks
	LeaseName    = CoreName // reads (§5.2)
	AcceptorName = CoreName
	LearnerName  = CoreName
)

// Config describes one replica. NodeID, Peers, DataDir and StateMachine are
// required.
type Config struct {
	NodeID uint32
	// Peers maps every voter's node id (this one included) to the address
	// of its actor system (host:port).
	Peers map[uint32]string
	// Learners maps non-voting members (§5.4) to their addresses: they are
	// sent the log and learn it, but never vote or become master. A node
	// whose NodeID is here runs as a learner. No id may be in both maps.
	Learners map[uint32]string
	// Join starts a node that is not (yet) a member: it has an empty data
	// directory and its NodeID in neither Peers nor Learners; it runs as a
	// non-voting replica that catches up once a member adds it (§5.4).
	Join bool
	// SelfAddress is this node's address when it is in neither Peers nor
	// Learners (Join).
	SelfAddress string
	// ClientAddress is where this node serves the client API, as clients
	// dial it (node --client-advertise). Status reports it, and the node
	// records it in the membership through the log once it knows a
	// master, so that clients and the other nodes find it.
	ClientAddress string
	// DataDir holds the write-ahead log. It is bound to ClusterID and NodeID
	// on first use and refused afterwards by any other pair.
	DataDir   string
	ClusterID string
	// Name is the actor name of the replica parent (default "replica");
	// every replica of a group must use the same one.
	Name         string
	StateMachine StateMachine
	// ValidateCommand, if set, checks a client command before it is
	// proposed; an error is returned to the client and nothing is proposed.
	ValidateCommand func(command []byte) error
	// ValidateAdminCommand, if set, checks instead a command that an
	// operator sent (messages.ClientRequest.admin: one a node's client
	// port authorized as an operator's, or one from the peer port), which
	// may hold what no client may propose (db: a limits change). Unset:
	// ValidateCommand checks those too.
	ValidateAdminCommand func(command []byte) error
	// MaxCommandBytes refuses larger commands (default 1 MiB + 64 KiB, room
	// for a 1 MiB value and its key). With the proposer's batch bounds it
	// must leave the largest instance within a WAL record (CheckBounds).
	MaxCommandBytes int
	// Metrics, if set, hears how long the replica's work took (for
	// histograms); its methods are called on the replica's goroutines and
	// must not block.
	Metrics Metrics
	// Rebuilt: the data directory is made anew because this node lost its
	// data (the old one was moved aside). It is recorded in the
	// directory: the node never counts as a brand-new group's member
	// (§5.1), so a group whose every voter lost its data waits for an
	// operator instead of starting over empty.
	Rebuilt bool
	// StartOver: the operator says every voter lost its data for good; a
	// rebuilt node may then join a brand-new, empty group. Everything the
	// old group acknowledged is lost.
	StartOver bool
	// TickInterval is the resolution of the replica's timers (default 20ms).
	TickInterval time.Duration
	// MinFreeBytes: while the data directory's file system has less free
	// (checked every second), a master refuses new writes with
	// ErrNoSpace rather than fail when its log can no longer grow; reads,
	// status and snapshots go on (default 256 MiB: four log segments;
	// negative: never).
	MinFreeBytes int64
	// RestartGrace delays the first campaign of a replica that restarts
	// with history, so that it hears the current master before it could
	// depose it (default 2.5s: protoactor reconnects after 2 s).
	RestartGrace time.Duration
	// SnapshotEvery has the replica snapshot its state machine (if it is a
	// Snapshotter) once this many instances were applied since the last
	// snapshot, and let go of the log below it (default 100,000; a
	// negative value: never on its own).
	SnapshotEvery int64
	// SnapshotLogBytes has the replica snapshot once this many bytes were
	// written to its log since the last snapshot (default 64 MiB; a
	// negative value: never on this account). With the log let go of at
	// each snapshot, a busy replica's disk holds about this much log, in
	// whole segments, plus its newest snapshot.
	SnapshotLogBytes int64
	// MaxMailboxMessages bounds the mailboxes of the core's and the
	// snapshot device's actors, which take messages from the network:
	// past it, a client's request is answered with ErrOverloaded and a
	// peer's message is dropped and counted (mailbox.go). Default
	// DefaultMaxMailboxMessages.
	MaxMailboxMessages int
	// MaxMailboxBytes bounds the bytes of the large messages (entries,
	// snapshot chunks, client commands) waiting in those mailboxes, shed
	// the same way past it. 0 means DefaultMaxMailboxBytes.
	MaxMailboxBytes int64
	// Proposer tunes elections, batching, pipelining and leases; ID and
	// Peers are filled in from this Config.
	Proposer paxos.ProposerConfig
	Learner  paxos.LearnerConfig
	Logger   *slog.Logger
	// OnFatal is called once when the replica must stop: a failed fsync, a
	// broken invariant, an actor that panicked. The replica has stopped
	// serving by then. Default: log it.
	OnFatal func(error)
	// SenderMiddleware and ReceiverMiddleware are installed on the replica
	// parent and its children. They see every protocol message this
	// replica sends or receives (and, on receive, the actor lifecycle and
	// timer messages), which is what test hooks such as package probe's
	// Interceptor need. Leave them empty in production: with none, sends
	// take protoactor's direct path.
	SenderMiddleware   []actor.SenderMiddleware
	ReceiverMiddleware []actor.ReceiverMiddleware
}

// DefaultMinFreeBytes is Config.MinFreeBytes's default.
const DefaultMinFreeBytes int64 = 256 << 20

// Errors returned when a replica cannot start.
var (
	ErrConfig      = errors.New("actors: invalid replica config")
	ErrForeignData = errors.New("actors: data directory belongs to another cluster or node")
)

func (c *Config) setDefaults() error {
	if c.NodeID == 0 {
		return fmt.Errorf("%w: node id must be positive", ErrConfig)
	}
	_, voter := c.Peers[c.NodeID]
	_, learner := c.Learners[c.NodeID]
	if !voter && !learner && !c.Join {
		return fmt.Errorf("%w: node %d is not in its own peer list", ErrConfig, c.NodeID)
	}
	if voter && c.Join {
		return fmt.Errorf("%w: node %d is a voter: it cannot join", ErrConfig, c.NodeID)
	}
	for id := range c.Learners {
		if _, dup := c.Peers[id]; dup || id == 0 {
			return fmt.Errorf("%w: node %d is both a voter and a learner", ErrConfig, id)
		}
	}
	if c.DataDir == "" {
		return fmt.Errorf("%w: data directory required", ErrConfig)
	}
	if c.StateMachine == nil {
		return fmt.Errorf("%w: state machine required", ErrConfig)
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.MaxCommandBytes == 0 {
		c.MaxCommandBytes = 1<<20 + 64<<10
	}
	if err := CheckBounds(c.Proposer, c.MaxCommandBytes, storage.DefaultMaxRecordBytes); err != nil {
		return err
	}
	switch {
	case c.MaxMailboxMessages < 0:
		return fmt.Errorf("%w: MaxMailboxMessages is negative", ErrConfig)
	case c.MaxMailboxMessages == 0:
		c.MaxMailboxMessages = DefaultMaxMailboxMessages
	}
	switch {
	case c.MaxMailboxBytes < 0:
		return fmt.Errorf("%w: MaxMailboxBytes is negative", ErrConfig)
	case c.MaxMailboxBytes == 0:
		c.MaxMailboxBytes = DefaultMaxMailboxBytes
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = DefaultMinFreeBytes
	}
	if c.TickInterval == 0 {
		c.TickInterval = 20 * time.Millisecond
	}
	if c.RestartGrace == 0 {
		c.RestartGrace = 2500 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.OnFatal == nil {
		log := c.Logger
		c.OnFatal = func(err error) { log.Error("replica stopped", "err", err) }
	}
	return nil
}

// coreConfig is the replica core's config for this replica, whose data
// directory has the identity meta.
func (c *Config) coreConfig(meta *messages.MetaRecord) core.Config {
	return core.Config{ID: c.NodeID, Cluster: messages.ClusterHash(c.ClusterID), Members: initialMembership(c), Joining: c.Join, Incarnation: meta.Incarnation,
		Fresh: meta.Fresh, Rebuilt: meta.Rebuilt && !c.StartOver, RestoredInstance: meta.RestoredInstance, Bootstrap: meta.Bootstrap, Proposer: c.Proposer, Learner: c.Learner, RestartGrace: c.RestartGrace,
		SnapshotEvery: c.SnapshotEvery, SnapshotLogBytes: c.SnapshotLogBytes, Logger: c.Logger}
}

// initialMembership is version 1: the configured voters and learners.
func initialMembership(c *Config) *messages.Membership {
	m := &messages.Membership{Version: 1}
	for _, id := range peerIDs(c.Peers) {
		m.Members = append(m.Members, &messages.Member{Id: id, Address: c.Peers[id], Role: paxos.VoterRole})
	}
	for _, id := range peerIDs(c.Learners) {
		m.Members = append(m.Members, &messages.Member{Id: id, Address: c.Learners[id], Role: paxos.LearnerRole})
	}
	return m
}

func peerIDs(peers map[uint32]string) []uint32 {
	ids := make([]uint32, 0, len(peers))
	for id := range peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Address is this node's own address.
func (c *Config) Address() string {
	if a, ok := c.Peers[c.NodeID]; ok {
		return a
	}
	if a, ok := c.Learners[c.NodeID]; ok {
		return a
	}
	return c.SelfAddress
}
