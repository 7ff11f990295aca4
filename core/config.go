package core

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
	"github.com/livepaxos/livepaxos/session"
)

// Config describes one replica core. ID and Members are required.
type Config struct {
	ID uint32
	// Members is the configuration before any log (version 1): the
	// initial voters and learners, with their addresses. A node that
	// joins is in it as no member at all.
	Members *messages.Membership
	// Cluster is the hash of the group's cluster id
	// (messages.ClusterHash): every message this replica sends carries
	// it, and a message carrying another is dropped.
	Cluster uint64
	// Joining: this node started as no member, to be added (status says
	// "joining" until a change adds it).
	Joining bool
	// Incarnation is this data directory's incarnation and Fresh whether
	// it started empty and has not yet voted under it (§5.1); Bootstrap
	// is the bootstrap set its identity file recorded, if any.
	Incarnation uint64
	Fresh       bool
	Bootstrap   []*messages.Member
	// Rebuilt: the data directory was made anew after the node lost its
	// data. Its acceptor never counts as empty in §5.1's brand-new-group
	// poll: a group whose every voter lost its data waits rather than
	// start over empty.
	Rebuilt bool
	// RestoredInstance: the data directory was restored from a backup at
	// this instance for a new group (0: it was not); see
	// paxos.ProposerConfig.BootstrapFrom.
	RestoredInstance uint64
	// Proposer and Learner tune the roles; their ID, Peers, Learners and
	// Planted are filled in from this Config.
	Proposer paxos.ProposerConfig
	Learner  paxos.LearnerConfig
	// RestartGrace delays the first campaign of a replica that restarts
	// with history, so that it hears the current master before it could
	// depose it. The shell picks it for its transport (protoactor retries
	// a lost connection after 2 s).
	RestartGrace time.Duration
	// SnapshotEvery has the replica snapshot once this many instances
	// were applied since the last snapshot (0: default 100,000; negative:
	// never on this account). SnapshotLogBytes likewise, in bytes of
	// records written to the log (0: default 64 MiB). Both only when the
	// state machine can snapshot (CanSnapshot).
	SnapshotEvery    int64
	SnapshotLogBytes int64
	CanSnapshot      bool
	// MaxPromiseBytes is the byte budget of the accepted entries one of
	// this replica's Promises carries; more come in pages (0:
	// paxos.DefaultMaxPromiseBytes). The simulator makes it tiny.
	MaxPromiseBytes int
	// ChecksumsKept is how many checked instances the consistency check
	// tally remembers (default 16).
	ChecksumsKept int
	// Planted is a known bug this replica runs with (tests only: see
	// paxos.PlantedBug). The roles get it too.
	Planted paxos.PlantedBug
	// SessionPlanted is a known bug of the master's session keeper (tests
	// only: see session.Planted).
	SessionPlanted session.Planted
	// Observer, if set, sees decisions as they are made (tests only).
	Observer Observer
	// Logger receives the few events worth a line (membership changes,
	// snapshots, divergence); nil discards them.
	Logger *slog.Logger
}

// ErrConfig refuses a Config that cannot describe a replica.
var ErrConfig = errors.New("core: invalid config")

func (c *Config) setDefaults() error {
	if c.ID == 0 {
		return fmt.Errorf("%w: node id must be positive", ErrConfig)
	}
	if c.Members == nil || c.Members.Version == 0 {
		return fmt.Errorf("%w: the initial membership (version 1) is required", ErrConfig)
	}
	if len(paxos.MembershipVoters(c.Members)) == 0 {
		return fmt.Errorf("%w: no voter", ErrConfig)
	}
	orDefault(&c.SnapshotEvery, 100_000)
	orDefault(&c.SnapshotLogBytes, 64<<20)
	orDefault(&c.ChecksumsKept, 16)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	p := &c.Proposer
	p.ID, p.Planted = c.ID, c.Planted
	p.Peers, p.Learners = paxos.MembershipVoters(c.Members), paxos.MembershipLearners(c.Members)
	p.Members, p.Incarnation, p.Fresh, p.Bootstrap = c.Members, c.Incarnation, c.Fresh, c.Bootstrap
	p.BootstrapFrom = c.RestoredInstance + 1
	*p = p.WithDefaults() // the lease timeout is the acceptor's too
	if p.ClockDriftMax >= p.LeaseTimeout {
		return fmt.Errorf("%w: clock drift bound %v must be below the lease timeout %v", ErrConfig, p.ClockDriftMax, p.LeaseTimeout)
	}
	l := &c.Learner
	l.ID, l.Planted = c.ID, c.Planted
	l.Peers = memberIDs(c.Members)
	return nil
}

// orDefault sets *v to def if it is zero.
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
