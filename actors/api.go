package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/storage"
)

// Snapshotter is implemented by state machines that can save and restore
// their whole state (§5.5). BeginSnapshot is called on the apply goroutine,
// between two instances: it returns the last instance applied and a
// function that writes the state as of that instance, which the replica
// calls on another goroutine while Apply goes on (a "pause-less"
// snapshot; db.KV freezes its contents and keeps changes aside meanwhile).
// Restore replaces the whole state with one so written, or changes nothing
// and returns an error. Snapshots and log truncation will use it; a state
// machine without it replays the whole log on restart.
type Snapshotter interface {
	BeginSnapshot() (instance uint64, write func(w io.Writer) error, err error)
	Restore(r io.Reader) error
}

// Checksummer is implemented by state machines whose replicas can be
// compared at run time (§6.2). BeginChecksum is called on the apply
// goroutine right after a checksum value applied; it returns a function
// that computes a digest of the state as of then, which the replica calls
// on another goroutine while Apply goes on. Equal states must give equal
// digests on every replica (db.KV: SHA-256 over the sorted contents).
type Checksummer interface {
	BeginChecksum() (sum func() []byte)
}

// ErrDiverged stops a replica whose state's checksum differs from the one
// a majority of its group computed at the same instance (§6.2).
var ErrDiverged = errors.New("actors: this replica's state diverged from the group's")

// Errors returned by Propose.
var (
	ErrNotMaster      = errors.New("actors: this replica is not master")
	ErrOverloaded     = errors.New("actors: proposal queue full")
	ErrRejected       = errors.New("actors: command rejected")
	ErrOutcomeUnknown = errors.New("actors: outcome unknown (mastership changed or no answer)")
	// ErrMasterChanged: the command's epoch ended before it applied, so it
	// was applied nowhere (§5.3).
	ErrMasterChanged = errors.New("actors: master changed before the command applied; not applied")
)

var proposeIDs atomic.Uint64

// ProposerPID returns the PID of this replica's proposer, to which clients
// send messages.ClientRequest and messages.StatusRequest.
func (r *Replica) ProposerPID() *actor.PID { return r.pid(r.cfg.NodeID, ProposerName) }

// LeasePID returns the PID of this replica's lease manager, to which
// clients send messages.ReadRequest: lease, quorum and stale reads (§5.2),
// answered from the state machine when it implements Reader.
func (r *Replica) LeasePID() *actor.PID { return r.pid(r.cfg.NodeID, LeaseName) }

// Epoch returns the epoch of the log as this replica has applied it, and
// the master that started it (§5.3). Two calls return the same epoch if and
// only if no new mastership began in between (as far as this replica has
// applied the log).
func (r *Replica) Epoch() (epoch uint64, master uint32) {
	return r.epoch.Load(), r.epochMaster.Load()
}

// Read asks this replica's lease manager a read-only query with the given
// consistency (§5.2) and returns the state machine's answer and the epoch
// it was given in. Lease and quorum reads succeed only on the master
// (ErrNotMaster elsewhere); a stale read is answered by any replica. The
// state machine must implement Reader, or the query goes through the log.
func (r *Replica) Read(ctx context.Context, sender actor.SenderContext, query []byte, consistency messages.Consistency) (result []byte, epoch uint64, err error) {
	timeout, err := requestTimeout(ctx, 10*time.Second)
	if err != nil {
		return nil, 0, err
	}
	req := &messages.ReadRequest{RequestId: proposeIDs.Add(1), Query: query, Consistency: consistency}
	reply, err := sender.RequestFuture(r.LeasePID(), req, timeout).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	resp, ok := reply.(*messages.ClientResponse)
	if !ok {
		return nil, 0, fmt.Errorf("%w: unexpected reply %T", ErrRejected, reply)
	}
	switch resp.Code {
	case messages.ErrorCode_ERROR_CODE_OK:
		return resp.Result, resp.Epoch, nil
	case messages.ErrorCode_ERROR_CODE_NOT_MASTER:
		return nil, 0, fmt.Errorf("%w (master: node %d %s)", ErrNotMaster, resp.MasterId, resp.MasterAddress)
	case messages.ErrorCode_ERROR_CODE_OVERLOADED:
		return nil, 0, ErrOverloaded
	}
	return nil, 0, fmt.Errorf("%w: %s", ErrRejected, resp.Error)
}

// Propose submits a command through this replica and waits until it is
// chosen and applied, returning the state machine's result. It succeeds only
// on the master; elsewhere it returns ErrNotMaster (with the master's id in
// the error text when known). sender is any context of the system the
// replica runs in (for example system.Root).
func (r *Replica) Propose(ctx context.Context, sender actor.SenderContext, command []byte) ([]byte, error) {
	timeout, err := requestTimeout(ctx, 10*time.Second)
	if err != nil {
		return nil, err
	}
	req := &messages.ClientRequest{RequestId: proposeIDs.Add(1), Command: command}
	reply, err := sender.RequestFuture(r.ProposerPID(), req, timeout).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOutcomeUnknown, err)
	}
	resp, ok := reply.(*messages.ClientResponse)
	if !ok {
		return nil, fmt.Errorf("%w: unexpected reply %T", ErrRejected, reply)
	}
	switch resp.Code {
	case messages.ErrorCode_ERROR_CODE_OK:
		return resp.Result, nil
	case messages.ErrorCode_ERROR_CODE_NOT_MASTER:
		return nil, fmt.Errorf("%w (master: node %d %s)", ErrNotMaster, resp.MasterId, resp.MasterAddress)
	case messages.ErrorCode_ERROR_CODE_OVERLOADED:
		return nil, ErrOverloaded
	case messages.ErrorCode_ERROR_CODE_MASTER_CHANGED:
		return nil, fmt.Errorf("%w: %s", ErrMasterChanged, resp.Error)
	case messages.ErrorCode_ERROR_CODE_OUTCOME_UNKNOWN:
		return nil, fmt.Errorf("%w: %s", ErrOutcomeUnknown, resp.Error)
	case messages.ErrorCode_ERROR_CODE_TOO_LARGE:
		return nil, fmt.Errorf("%w: %w: %s", ErrRejected, ErrTooLarge, resp.Error)
	}
	return nil, fmt.Errorf("%w: %s", ErrRejected, resp.Error)
}

// SnapshotterPID returns the PID of this replica's snapshotter, to which
// clients send messages.SnapshotRequest.
func (r *Replica) SnapshotterPID() *actor.PID { return r.pid(r.cfg.NodeID, SnapshotterName) }

// ErrSnapshot reports a snapshot that was not taken; nothing was let go of.
var ErrSnapshot = errors.New("actors: snapshot failed")

// Snapshot has this replica snapshot its state machine now (§5.5) and
// returns once the snapshot is durable, with the instance it is as of; the
// log below it is then let go of. The state machine must implement
// Snapshotter. Snapshots are per replica: the others are not asked.
func (r *Replica) Snapshot(ctx context.Context, sender actor.SenderContext) (instance uint64, err error) {
	timeout, err := requestTimeout(ctx, time.Minute)
	if err != nil {
		return 0, err
	}
	reply, err := sender.RequestFuture(r.SnapshotterPID(), &messages.SnapshotRequest{RequestId: proposeIDs.Add(1)}, timeout).Result()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	resp, ok := reply.(*messages.SnapshotResponse)
	if !ok {
		return 0, fmt.Errorf("%w: unexpected reply %T", ErrSnapshot, reply)
	}
	if resp.Error != "" {
		return 0, fmt.Errorf("%w: %s", ErrSnapshot, resp.Error)
	}
	return resp.Instance, nil
}

// LogStats returns the write-ahead log's counters (records, bytes, fsyncs,
// segments), for metrics.
func (r *Replica) LogStats() storage.Stats { return r.wal.Stats() }

// ChangeMembers asks this replica (the master) to add a member as a
// non-voting learner or remove a learner (§5.4), through the log, and
// returns the new membership version once it is applied here.
func (r *Replica) ChangeMembers(ctx context.Context, sender actor.SenderContext, req *messages.MembersRequest) (version uint64, err error) {
	timeout, err := requestTimeout(ctx, 10*time.Second)
	if err != nil {
		return 0, err
	}
	req.RequestId = proposeIDs.Add(1)
	reply, err := sender.RequestFuture(r.ProposerPID(), req, timeout).Result()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrOutcomeUnknown, err)
	}
	resp, ok := reply.(*messages.ClientResponse)
	if !ok {
		return 0, fmt.Errorf("%w: unexpected reply %T", ErrRejected, reply)
	}
	switch resp.Code {
	case messages.ErrorCode_ERROR_CODE_OK:
		return strconv.ParseUint(string(resp.Result), 10, 64)
	case messages.ErrorCode_ERROR_CODE_NOT_MASTER:
		return 0, fmt.Errorf("%w (master: node %d %s)", ErrNotMaster, resp.MasterId, resp.MasterAddress)
	}
	return 0, fmt.Errorf("%w: %s", ErrMembership, resp.Error)
}

// requestTimeout is how long a request to the replica may wait: until ctx's
// deadline, or fallback without one; an expired ctx is its error.
func requestTimeout(ctx context.Context, fallback time.Duration) (time.Duration, error) {
	timeout := fallback
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return 0, context.DeadlineExceeded
	}
	return timeout, nil
}

// Members returns the group's configuration as this replica applied it
// (§5.4), with each member's peer and client addresses (a copy).
func (r *Replica) Members() *messages.Membership { return r.view().membership() }

// Master returns the master as this replica's proposer last knew it (0:
// unknown) and whether it is this replica itself. Safe for concurrent use.
func (r *Replica) Master() (id uint32, self bool) {
	if l := r.lease.Load(); l != nil {
		return l.masterID, l.master && !r.stopped.Load()
	}
	return 0, false
}

// RolePID returns the PID of role (ProposerName, LeaseName,
// SnapshotterName, ...) on member id, as this replica's configuration
// addresses it; nil if id is not a member.
func (r *Replica) RolePID(id uint32, role string) *actor.PID { return r.pid(id, role) }

// NodeID returns this replica's node id.
func (r *Replica) NodeID() uint32 { return r.cfg.NodeID }

// ClientAddress returns this node's own client API address (Config.ClientAddress).
func (r *Replica) ClientAddress() string { return r.cfg.ClientAddress }

// ClientAddressOf returns member id's client API address as the
// membership records it ("" when not recorded). Safe for concurrent use.
func (r *Replica) ClientAddressOf(id uint32) string { return r.view().clients[id] }
