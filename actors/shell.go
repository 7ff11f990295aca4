package actors

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/core"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
	"github.com/livepaxos/livepaxos/storage"
)

// The core's actor: the replica core's shell. It is I/O only: it feeds
// the core (through core.Driver) what arrives in its mailbox, a tick every
// TickInterval and the log's durability reports, and is the Driver's host
// (shell): it writes with the WAL, sends with protoactor, answers clients,
// and hands snapshot files to the snapshot device. Every decision,
// including when an answer may leave, is the core's.

// Messages the core's actor sends itself or gets from its devices. They
// never leave the process.
type (
	coreTick struct{}
	// flushMsg arrives after every request already in the mailbox, so one
	// flush proposes them together (core.Devices.ScheduleFlush).
	flushMsg struct{}
	// persisted: the log made a write durable (core.LogStore.Append).
	persisted struct{ durable func() }
	// checksumDone carries this replica's checksum of its state at
	// instance, computed off the apply path.
	checksumDone struct {
		instance uint64
		sum      []byte
	}
	// localRequest runs a request of a caller in this process (api.go) on
	// the core's actor.
	localRequest struct{ run func(d *core.Driver) }
)

type coreActor struct {
	r        *Replica
	stopTick func()
	ticks    int
	admin    *adminLimits // budgets of checks and snapshots per sender
}

// diskCheckEvery is how many ticks pass between two looks at the data
// directory's free space: about a second.
func diskCheckEvery(tick time.Duration) int {
	return max(1, int(time.Second/max(tick, time.Millisecond)))
}

// checkDisk looks at the data directory's free space and tells the core
// when it crosses Config.MinFreeBytes, either way.
func (r *Replica) checkDisk(d *core.Driver) {
	free := storage.DiskFree(r.cfg.DataDir)
	r.diskFree.Store(free)
	if low := free >= 0 && free < r.cfg.MinFreeBytes; low != d.Replica().DiskLow() {
		d.SetDiskLow(low)
		r.publishStatus()
	}
}

// statusEvery is how many ticks pass between two status publications.
const statusEvery = 5

func (a *coreActor) Receive(ctx actor.Context) {
	r, sh := a.r, a.r.shell
	sh.ctx = ctx
	defer func() { sh.ctx = nil }()
	d := r.d
	switch m := ctx.Message().(type) {
	case *actor.Started:
		sh.sys, sh.self = ctx.ActorSystem(), ctx.Self()
		sh.snapshotter = actor.NewPID(ctx.Self().Address, r.cfg.Name+"/"+SnapshotterName)
		for _, fn := range sh.early {
			fn()
		}
		sh.early = nil
		a.stopTick = ticker(ctx.ActorSystem(), ctx.Self(), r.cfg.TickInterval, coreTick{})
		r.startedOnce.Do(func() { close(r.started) })
		return
	case *actor.Stopping:
		if a.stopTick != nil {
			a.stopTick()
		}
		r.stoppingUnasked(CoreName)
		return
	case *messages.ClientRequest:
		sh.submit(ctx, m)
		return
	case *messages.ReadRequest:
		sh.read(ctx, m)
		return
	case *messages.StatusRequest:
		// Fresh, from here: Status would wait for this very actor.
		r.publishStatus()
		ctx.Respond(r.status.Load())
		return
	}
	if r.stopped.Load() {
		sh.refuseStopped(ctx)
		return
	}
	switch m := ctx.Message().(type) {
	case coreTick:
		d.Tick()
		if a.ticks%diskCheckEvery(r.cfg.TickInterval) == 0 {
			r.checkDisk(d)
		}
		if a.ticks++; a.ticks%statusEvery == 0 {
			r.publishStatus()
		}
	case flushMsg:
		d.Flush()
	case *persisted:
		m.durable()
	case *messages.Prepare, *messages.Accept, *messages.Confirm, *messages.Promise, *messages.Accepted,
		*messages.Heartbeat, *messages.Confirmed, *messages.Chosen, *messages.CatchupRequest, *messages.PreVote, *messages.PreVoted,
		*messages.CatchupResponse, *messages.ChecksumReport, *messages.Handover, *messages.Leaving:
		d.Step(m.(proto.Message))
	case *localRequest:
		m.run(d)
	case *messages.MembersRequest:
		if sender := ctx.Sender(); sender != nil {
			d.ChangeMembers(m, &messages.Command{ReplyAddress: sender.Address, ReplyId: sender.Id})
		}
	case *messages.CheckRequest:
		if sender := ctx.Sender(); sender != nil {
			if !a.limits().allowCheck(sender.Address, time.Now()) {
				ctx.Send(sender, &messages.CheckResponse{RequestId: m.RequestId, Error: errTooManyChecks.Error()})
				return
			}
			d.RequestCheck(remoteToken{pid: sender, id: m.RequestId})
		}
	case *messages.KeepAliveRequest:
		if sender := ctx.Sender(); sender != nil {
			d.KeepAlive(m, remoteToken{pid: sender, id: m.RequestId})
		}
	case *messages.SnapshotRequest:
		if sender := ctx.Sender(); sender != nil {
			if !a.limits().allowSnapshot(sender.Address, time.Now()) {
				ctx.Send(sender, &messages.SnapshotResponse{RequestId: m.RequestId, NodeId: r.cfg.NodeID, Error: errTooManySnapshots.Error()})
				return
			}
			d.RequestSnapshot(remoteToken{pid: sender, id: m.RequestId})
		}
	case *checksumDone:
		d.ChecksumComputed(m.instance, m.sum)
	case *snapshotWritten:
		d.SnapshotWritten(m.res)
	case *installSnapshot:
		rd, meta, err := openSnapshot(m.info.Path)
		if err == nil {
			err = d.Install(meta, func(ss core.Snapshotter) error { return ss.Restore(rd) })
			rd.Close()
		}
		if err != nil {
			// Restore changed nothing: keep learning from the log, and
			// the snapshot device tries again on the next offer.
			r.cfg.Logger.Warn("snapshot install failed", "node", r.cfg.NodeID, "err", err)
			ctx.Send(sh.snapshotter, &installFailed{info: m.info, err: err})
		}
	}
}

// remoteToken is a client's address for an answer: its PID and request id.
type remoteToken struct {
	pid *actor.PID
	id  uint64
}

// shell is the Driver's host in production (core.Host).
type shell struct {
	r *Replica
	// ctx is the core actor's context while it handles a message: sends go
	// through it (and its middleware). nil at startup.
	ctx         actor.Context
	sys         *actor.ActorSystem
	self        *actor.PID
	snapshotter *actor.PID
	// early: work asked for before the actor started (Checksum).
	early []func()
}

// Now is the wall clock: the core counts its timeouts and leases with it.
func (sh *shell) Now() time.Time { return time.Now() }

// Append writes records with the WAL; its callback, on the log's
// goroutine, only posts the durability report to the core's actor.
func (sh *shell) Append(recs []*messages.Record, mode core.WriteMode, durable func()) {
	bufs := make([][]byte, 0, len(recs))
	for _, rec := range recs {
		b, err := proto.Marshal(rec)
		if err != nil {
			sh.r.fatal(fmt.Errorf("actors: encoding a record: %w", err))
			return
		}
		bufs = append(bufs, b)
	}
	r, sys, self := sh.r, sh.sys, sh.self
	done := func(err error) {
		if err != nil {
			r.fatal(err)
			return
		}
		if !r.stopped.Load() && self != nil {
			sys.Root.Send(self, &persisted{durable: durable})
		}
	}
	switch mode {
	case core.WriteMark:
		r.wal.Mark()
	case core.WriteLazy:
		r.wal.AppendLazy(bufs)
	case core.WriteCheckpoint:
		r.wal.Checkpoint(bufs, done)
	default:
		r.wal.Append(bufs, done)
	}
}

// Prove rewrites the identity file (§5.1).
func (sh *shell) Prove(bootstrap []*messages.Member) error {
	return markProven(sh.r.cfg.DataDir, bootstrap)
}

// Send sends a protocol message to node to's core.
func (sh *shell) Send(to uint32, msg proto.Message) {
	if pid := sh.r.pid(to, CoreName); pid != nil && sh.ctx != nil {
		sh.ctx.Send(pid, msg)
	}
}

// Reply answers a command's client: a caller in this process by its
// waiter, any other at its PID.
func (sh *shell) Reply(rep core.Reply) {
	if rep.Cmd.ReplyAddress == sh.r.localAddress {
		id, _ := strconv.ParseUint(rep.Cmd.ReplyId, 10, 64)
		sh.r.local.deliver(id, localAnswer{resp: rep.Response, err: rep.Err})
		return
	}
	sh.send(sh.r.pids.get(rep.Cmd.ReplyAddress, rep.Cmd.ReplyId, func() string { return rep.Cmd.ReplyId }), rep.Response)
}

// AnswerRead answers a read.
func (sh *shell) AnswerRead(token any, resp *messages.ClientResponse, _ core.Decision, err error) {
	switch t := token.(type) {
	case localToken:
		sh.r.local.deliver(uint64(t), localAnswer{resp: resp, err: err})
	case remoteToken:
		sh.send(t.pid, resp)
	}
}

// Answer answers a check or snapshot request.
func (sh *shell) Answer(token any, msg proto.Message) {
	switch t := token.(type) {
	case localToken:
		sh.r.local.deliver(uint64(t), localAnswer{msg: msg})
	case remoteToken:
		switch m := msg.(type) {
		case *messages.CheckResponse:
			m.RequestId = t.id
		case *messages.SnapshotResponse:
			m.RequestId = t.id
		case *messages.ClientResponse:
			m.RequestId = t.id
		}
		sh.send(t.pid, msg)
	}
}

func (sh *shell) send(pid *actor.PID, msg any) {
	if sh.ctx != nil {
		sh.ctx.Send(pid, msg)
	}
}

// Checksum computes the digest on a goroutine of its own, while Apply
// goes on (§6.2).
//
// A restart replays chosen entries before the actor runs, checksum values
// among them: those wait for Started (sent to a nil system, they crashed
// the node on every restart after a consistency check).
func (sh *shell) Checksum(instance uint64, sum func() []byte) {
	if sh.sys == nil {
		sh.early = append(sh.early, func() { sh.Checksum(instance, sum) })
		return
	}
	sys, self := sh.sys, sh.self
	go func() { sys.Root.Send(self, &checksumDone{instance: instance, sum: sum()}) }()
}

// WriteSnapshot hands the snapshot to the snapshot device.
func (sh *shell) WriteSnapshot(meta *messages.SnapshotMeta, write func(io.Writer) error) {
	sh.send(sh.snapshotter, &writeSnapshot{meta: meta, write: write})
}

// Fetch has the snapshot device fetch a peer's snapshot.
func (sh *shell) Fetch(offer paxos.SnapshotOffer) {
	sh.send(sh.snapshotter, &installFrom{peer: offer.From, instance: offer.Instance})
}

// ScheduleFlush flushes once the mailbox has given what it held.
func (sh *shell) ScheduleFlush() { sh.send(sh.self, flushMsg{}) }

// Fatal stops the replica.
func (sh *shell) Fatal(err error) { sh.r.fatal(err) }

// Publish keeps the view and membership for other goroutines, and the
// status at once when mastership moved (else every statusEvery ticks).
func (sh *shell) Publish(v core.View, members *messages.Membership) {
	old := sh.r.view.Swap(&v)
	if members != nil && members != sh.r.members.Load() {
		sh.r.members.Store(members)
	}
	if old == nil || old.Master != v.Master || old.MasterID != v.MasterID || old.Stopped != v.Stopped {
		sh.r.publishStatus()
	}
}

// submit checks a client's command and hands it to the core.
func (sh *shell) submit(ctx actor.Context, m *messages.ClientRequest) {
	sender := ctx.Sender()
	if sender == nil {
		return // nobody to answer, and an unanswerable write helps nobody
	}
	err := sh.r.checkCommand(m.Command, m.Admin)
	if err == nil && (len(sender.Address) > MaxReplyAddressBytes || len(sender.Id) > MaxReplyIdBytes) {
		// The log carries them with the command: bounded, so that an
		// instance stays within a WAL record (bounds.go).
		err = fmt.Errorf("%w: return address of %d and id of %d bytes, limit %d each",
			ErrInvalid, len(sender.Address), len(sender.Id), MaxReplyAddressBytes)
	}
	if err != nil {
		ctx.Send(sender, sh.r.refusal(m.RequestId, err))
		return
	}
	sh.r.d.Propose(&messages.Command{ReplyAddress: sender.Address, ReplyId: sender.Id, RequestId: m.RequestId, Payload: m.Command})
}

// read hands a client's read to the core, or through the log if the state
// machine answers no queries.
func (sh *shell) read(ctx actor.Context, m *messages.ReadRequest) {
	sender := ctx.Sender()
	if sender == nil {
		return
	}
	if sh.r.stopped.Load() {
		ctx.Send(sender, sh.r.refusal(m.RequestId, ErrStopped))
		return
	}
	if _, ok := sh.r.cfg.StateMachine.(Reader); !ok {
		// The read goes through the log, which is linearizable whatever
		// was asked.
		sh.submit(ctx, &messages.ClientRequest{RequestId: m.RequestId, Command: m.Query})
		return
	}
	sh.r.d.Read(m, remoteToken{pid: sender, id: m.RequestId})
}

// refuseStopped answers a client's request to a stopped replica.
func (sh *shell) refuseStopped(ctx actor.Context) {
	sender := ctx.Sender()
	if sender == nil {
		return
	}
	switch m := ctx.Message().(type) {
	case *messages.CheckRequest:
		ctx.Send(sender, &messages.CheckResponse{RequestId: m.RequestId, Error: ErrStopped.Error()})
	case *messages.SnapshotRequest:
		ctx.Send(sender, &messages.SnapshotResponse{RequestId: m.RequestId, NodeId: sh.r.cfg.NodeID, Error: ErrStopped.Error()})
	case *messages.MembersRequest:
		ctx.Send(sender, sh.r.refusal(m.RequestId, ErrStopped))
	case *messages.KeepAliveRequest:
		ctx.Send(sender, sh.r.refusal(m.RequestId, ErrStopped))
	}
}

// checkCommand is the shell's check of a client command before the core
// sees it: a stopped replica, the size bound, the host's ValidateCommand,
// or ValidateAdminCommand for an operator's (whose error is the refusal's
// text).
func (r *Replica) checkCommand(command []byte, admin bool) error {
	switch {
	case r.stopped.Load():
		return ErrStopped
	case len(command) > r.cfg.MaxCommandBytes:
		return fmt.Errorf("%w: command is %d bytes, limit %d", ErrTooLarge, len(command), r.cfg.MaxCommandBytes)
	}
	v := r.cfg.ValidateCommand
	if admin && r.cfg.ValidateAdminCommand != nil {
		v = r.cfg.ValidateAdminCommand
	}
	if v != nil {
		return v(command)
	}
	return nil
}
