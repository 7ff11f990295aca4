package core

import (
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
	"github.com/livepaxos/livepaxos/session"
)

// The edge: what a shell gives the Driver. Each is small, so that a test
// can run the core in memory and the simulator on simulated devices.

// Clock tells the time: the shell's clock (a simulated, drifting one in
// the simulator).
type Clock interface {
	Now() time.Time
}

// LogStore is the write-ahead log (storage.WAL in production).
type LogStore interface {
	// Append writes recs after every record appended before. For
	// WriteSync and WriteCheckpoint, durable is called once they and
	// every earlier record are durable, on the shell's goroutine (the one
	// that calls the Driver), never from inside Append; WriteLazy records
	// and a WriteMark (no records) get no call. A store that cannot write
	// stops the shell (Fatal).
	Append(recs []*messages.Record, mode WriteMode, durable func())
	// Prove rewrites the identity file as no longer fresh, keeping the
	// bootstrap set, durably, before it returns (§5.1).
	Prove(bootstrap []*messages.Member) error
}

// Transport sends protocol messages to other nodes, at most once.
type Transport interface {
	Send(to uint32, msg proto.Message)
}

// Clients is where answers to clients go. A token is what the shell gave
// with the request (Read, RequestCheck, RequestSnapshot).
type Clients interface {
	// Reply answers a command this replica proposed (Reply.Cmd carries the
	// return address).
	Reply(rep Reply)
	// AnswerRead answers a read: served (d.Serve, resp carries the state
	// machine's answer, err its own error from Query) or refused.
	AnswerRead(token any, resp *messages.ClientResponse, d Decision, err error)
	// Answer answers a consistency check or a snapshot request.
	Answer(token any, msg proto.Message)
}

// Devices are the rest of the shell's work, each reported back to the
// Driver when done.
type Devices interface {
	// Checksum computes sum (now or on another goroutine) and reports it
	// with Driver.ChecksumComputed(instance, ...).
	Checksum(instance uint64, sum func() []byte)
	// WriteSnapshot writes a snapshot described by meta with write (on
	// another goroutine if it likes), durably, and reports it with
	// Driver.SnapshotWritten.
	WriteSnapshot(meta *messages.SnapshotMeta, write func(io.Writer) error)
	// Fetch fetches a peer's snapshot (one transfer at a time) and, once
	// it is whole and verified, installs it with Driver.Install.
	Fetch(offer paxos.SnapshotOffer)
	// ScheduleFlush calls Driver.Flush once the shell has taken in what
	// arrived meanwhile (an actor: after its mailbox drained).
	ScheduleFlush()
	// Fatal stops the shell: the replica has stopped.
	Fatal(err error)
	// Publish hands the shell the replica's view and membership after a
	// change, for what it serves on other goroutines (reads, status).
	Publish(v View, members *messages.Membership)
}

// Host is everything a shell provides.
type Host interface {
	Clock
	LogStore
	Transport
	Clients
	Devices
}

// Driver is the one shell loop: it feeds a Replica its inputs and takes
// every Ready apart in the order the contract gives, against a Host and
// the state machine. It is not safe for concurrent use: the shell calls it
// from one goroutine (an actor, the simulator's scheduler).
type Driver struct {
	r  *Replica
	sm StateMachine
	h  Host

	busy   bool
	queued []func()
	// waiting maps the ids the Driver gave requests to the shell's tokens
	// (and reads to their requests).
	nextID  uint64
	waiting map[uint64]any
	reads   map[uint64]*messages.ReadRequest
	// flushWanted: ScheduleFlush was called and Flush has not come yet.
	flushWanted bool
	published   View
	members     *messages.Membership
	// store is the state machine's sessions, if it keeps any; keeper
	// their deadlines while this replica is master (sessions.go).
	store  SessionStore
	keeper *session.Keeper
}

// NewDriver returns a driver for a new replica core of cfg (which learns
// from sm whether it can snapshot). Restore the durable state, then call
// FinishRestore.
func NewDriver(cfg Config, sm StateMachine, h Host) (*Driver, error) {
	_, cfg.CanSnapshot = sm.(Snapshotter)
	r, err := New(cfg)
	if err != nil {
		return nil, err
	}
	d := &Driver{r: r, sm: sm, h: h, waiting: make(map[uint64]any), reads: make(map[uint64]*messages.ReadRequest),
		keeper: session.NewKeeper(cfg.SessionPlanted)}
	d.store, _ = sm.(SessionStore)
	return d, nil
}

// Replica returns the core, for its facts (status, tests). Its inputs go
// through the Driver.
func (d *Driver) Replica() *Replica { return d.r }

// RestoreSnapshot tells the replica, before the log is replayed, that the
// state machine was restored from the snapshot described by meta.
func (d *Driver) RestoreSnapshot(meta *messages.SnapshotMeta) {
	d.r.RestoreSnapshot(meta)
	d.observeEpoch(meta.Epoch)
}

// Restore replays one durable record at startup.
func (d *Driver) Restore(rec *messages.Record) error { return d.r.Restore(rec) }

// FinishRestore completes the startup: the log's chosen entries are
// applied again.
func (d *Driver) FinishRestore() error {
	var err error
	d.run(func() { err = d.r.FinishRestore(d.h.Now()) })
	return err
}

// Step takes a protocol message from a peer.
func (d *Driver) Step(msg proto.Message) { d.run(func() { d.r.Step(msg, d.h.Now()) }) }

// Tick drives the replica's timers.
func (d *Driver) Tick() {
	d.run(func() {
		now := d.h.Now()
		d.r.Tick(now)
		d.expireDue(now)
	})
}

// Flush proposes what is queued (after ScheduleFlush).
func (d *Driver) Flush() {
	d.flushWanted = false
	d.run(func() { d.r.Flush(d.h.Now()) })
}

// Propose submits a client's command (with its return address).
func (d *Driver) Propose(cmd *messages.Command) { d.run(func() { d.r.Propose(cmd, d.h.Now()) }) }

// ChangeMembers submits a membership change (§5.4); cmd carries the
// client's return address.
func (d *Driver) ChangeMembers(req *messages.MembersRequest, cmd *messages.Command) {
	d.run(func() { d.r.ChangeMembers(req, cmd, d.h.Now()) })
}

// Read decides a read and answers token (Clients.AnswerRead). The state
// machine must be a Reader.
func (d *Driver) Read(req *messages.ReadRequest, token any) {
	d.run(func() {
		id := d.wait(token)
		d.reads[id] = req
		d.r.Read(id, req.Consistency, d.h.Now())
	})
}

// RequestCheck asks the master for a consistency check now (§6.2).
func (d *Driver) RequestCheck(token any) {
	d.run(func() { d.r.RequestCheck(d.wait(token), d.h.Now()) })
}

// Timings is an optional Host interface, for metrics: a Host that has it
// hears how long work took. Nothing decides on what it hears.
type Timings interface {
	// Committed: an instance this master proposed was chosen d after its
	// first Accept left.
	Committed(d time.Duration)
	// AppliedBatch: the commands of chosen entries handed over at once
	// took d to apply to the state machine.
	AppliedBatch(d time.Duration, commands int)
}

// TransferMastership has this master hand mastership to voter to (0: the
// most caught-up voter) without a fail-over's outage (paxos/handover.go).
func (d *Driver) TransferMastership(to uint32) error {
	var err error
	d.run(func() { err = d.r.TransferMastership(to, d.h.Now()) })
	return err
}

// Leave tells the other members this replica is about to stop.
func (d *Driver) Leave() { d.run(func() { d.r.Leave(d.h.Now()) }) }

// SetDiskLow tells the replica whether its disk is nearly full (see
// Replica.SetDiskLow).
func (d *Driver) SetDiskLow(low bool) { d.r.SetDiskLow(low) }

// RequestSnapshot has the replica snapshot now (§5.5).
func (d *Driver) RequestSnapshot(token any) {
	d.run(func() { d.r.RequestSnapshot(d.wait(token), d.h.Now()) })
}

// ChecksumComputed reports the digest Devices.Checksum computed.
func (d *Driver) ChecksumComputed(instance uint64, sum []byte) {
	d.run(func() { d.r.ChecksumComputed(instance, sum, d.h.Now()) })
}

// SnapshotWritten reports the snapshot Devices.WriteSnapshot wrote.
func (d *Driver) SnapshotWritten(res SnapshotResult) {
	d.run(func() { d.r.SnapshotWritten(res, d.h.Now()) })
}

// ErrInstall reports a snapshot that was not installed.
var ErrInstall = errors.New("core: snapshot not installed")

// Install installs a peer's snapshot as of instance, fetched and verified
// by the shell, if the replica is still behind it: restore loads it into
// the state machine and returns its handle. A failed restore changes
// nothing (the replica keeps learning from the log).
func (d *Driver) Install(meta *messages.SnapshotMeta, restore func(Snapshotter) error) error {
	var err error
	d.run(func() {
		ss, ok := d.sm.(Snapshotter)
		switch {
		case !d.r.InstallWanted(meta.Instance):
			return // overtaken meanwhile
		case !ok:
			err = fmt.Errorf("%w: the state machine cannot restore a snapshot", ErrInstall)
			return
		}
		if herr := d.r.CheckInstallHandle(meta); herr != nil {
			err = fmt.Errorf("%w: %w", ErrInstall, herr)
			return
		}
		if rerr := restore(ss); rerr != nil {
			err = fmt.Errorf("%w: %w", ErrInstall, rerr)
			return
		}
		d.observeEpoch(meta.Epoch)
		d.r.Installed(meta, d.h.Now())
	})
	return err
}

// Stop stops the replica (the shell's log failed, say).
func (d *Driver) Stop(err error) { d.run(func() { d.r.Stop(err) }) }

// wait registers token and returns the id the replica knows it by.
func (d *Driver) wait(token any) uint64 {
	d.nextID++
	d.waiting[d.nextID] = token
	return d.nextID
}

func (d *Driver) take(id uint64) any {
	t := d.waiting[id]
	delete(d.waiting, id)
	return t
}

// run runs an input and then every Ready it leads to. An input that
// arrives while one runs (a store that reports durability at once) waits
// for it.
func (d *Driver) run(input func()) {
	if d.busy {
		d.queued = append(d.queued, input)
		return
	}
	d.busy = true
	defer func() { d.busy = false }()
	for {
		input()
		for d.r.HasReady() {
			d.handle(d.r.Ready())
		}
		if len(d.queued) == 0 {
			break
		}
		input = d.queued[0]
		d.queued = d.queued[1:]
	}
	d.queued = nil
	d.publish()
}

// handle takes one Ready apart, in the contract's order.
func (d *Driver) handle(rd Ready) {
	if rd.Prove != nil {
		if err := d.h.Prove(rd.Prove.Bootstrap); err != nil {
			d.r.Stop(fmt.Errorf("core: recording the incarnation as proven: %w", err))
			d.h.Fatal(d.r.Stopped())
			return
		}
	}
	for _, w := range rd.Writes {
		var durable func()
		if w.Mode == WriteSync || w.Mode == WriteCheckpoint {
			upto := w.Upto
			durable = func() { d.run(func() { d.r.Persisted(upto, d.h.Now()) }) }
		}
		d.h.Append(w.Records, w.Mode, durable)
	}
	for _, env := range rd.Messages {
		d.h.Send(env.To, env.Msg)
	}
	if t, ok := d.h.(Timings); ok {
		for _, c := range rd.Committed {
			t.Committed(c)
		}
	}
	d.apply(rd.Apply)
	d.serve(rd.Reads)
	for _, rep := range rd.Replies {
		d.h.Reply(rep)
	}
	for _, a := range rd.Answers {
		d.h.Answer(d.take(a.ID), a.Msg)
	}
	if rd.Snapshot != nil {
		d.snapshot(*rd.Snapshot)
	}
	if rd.Fetch != nil {
		d.h.Fetch(*rd.Fetch)
	}
	if rd.Flush && !d.flushWanted {
		d.flushWanted = true
		d.h.ScheduleFlush()
	}
	if rd.Fatal != nil {
		d.h.Fatal(rd.Fatal)
	}
}

// apply runs the entries' commands through the state machine, in order,
// and hands the results back.
func (d *Driver) apply(as []Apply) {
	var results []Result
	quiet, canQuiet := d.sm.(QuietApplier)
	timings, timed := d.h.(Timings)
	var began time.Time
	if timed && len(as) > 0 {
		began = d.h.Now()
	}
	clock, clocked := d.sm.(TimeObserver)
	for i := range as {
		a := &as[i]
		if a.NewEpoch {
			d.observeEpoch(a.Epoch)
		}
		for j, c := range a.Commands {
			if clocked && c.Run {
				clock.ObserveTime(a.Entry.Value.Commands[j].ProposedMs)
			}
			switch {
			case !c.Run:
			case canQuiet && !c.Answer:
				err := quiet.ApplyQuiet(a.Entry.Instance, a.Entry.Value.Commands[j].Payload)
				results = append(results, Result{Err: err})
			default:
				res, err := d.sm.Apply(a.Entry.Instance, a.Entry.Value.Commands[j].Payload)
				results = append(results, Result{Result: res, Err: err})
			}
		}
		if d.store != nil && len(a.Commands) > 0 {
			d.keeper.Observe(d.store.TakeSessionEvents(), d.h.Now())
		}
		if io, ok := d.sm.(InstanceObserver); ok {
			io.EndInstance(a.Entry.Instance)
		}
		if cs, ok := d.sm.(Checksummer); ok && a.Checksum {
			d.h.Checksum(a.Entry.Instance, cs.BeginChecksum())
		}
	}
	if timed && len(results) > 0 {
		timings.AppliedBatch(d.h.Now().Sub(began), len(results))
	}
	if len(results) > 0 {
		d.r.Applied(results, d.h.Now())
	}
}

func (d *Driver) observeEpoch(epoch uint64) {
	if o, ok := d.sm.(EpochObserver); ok {
		o.ObserveEpoch(epoch)
	}
}

// serve answers the reads the replica decided.
func (d *Driver) serve(reads []ReadAnswer) {
	if len(reads) == 0 {
		return
	}
	v := d.r.View(d.h.Now())
	for _, rd := range reads {
		req, token := d.reads[rd.ID], d.take(rd.ID)
		delete(d.reads, rd.ID)
		if req == nil {
			continue
		}
		resp, err := Serve(d.sm, &v, req, rd.Decision)
		d.h.AnswerRead(token, resp, rd.Decision, err)
	}
}

// Serve answers a read decided dec, from the state machine as it is now
// if dec serves it: the one way a read is answered, by the Driver and by a
// shell serving reads with a published View on another goroutine. err is
// Query's own error.
func Serve(sm StateMachine, v *View, req *messages.ReadRequest, dec Decision) (*messages.ClientResponse, error) {
	resp := v.Response(req.RequestId, req.Consistency, dec)
	if !dec.Serve {
		return resp, nil
	}
	reader, ok := sm.(Reader)
	if !ok {
		resp.Code, resp.Error = messages.ErrorCode_ERROR_CODE_INVALID, "the state machine answers no queries"
		return resp, nil
	}
	result, err := reader.Query(req.Query)
	if err != nil {
		// The state machine's code where it gives one (a result too large).
		resp.Code, resp.Error = errorCode(err), err.Error()
		return resp, err
	}
	resp.Result = result
	return resp, nil
}

// snapshot freezes the state machine between two instances and hands the
// writing to the shell.
func (d *Driver) snapshot(job SnapshotJob) {
	fail := func(err error) { d.r.SnapshotWritten(SnapshotResult{Err: err}, d.h.Now()) }
	ss, ok := d.sm.(Snapshotter)
	if !ok {
		fail(fmt.Errorf("%w: the state machine cannot snapshot", ErrSnapshot))
		return
	}
	instance, write, err := ss.BeginSnapshot()
	if err != nil {
		fail(fmt.Errorf("%w: %w", ErrSnapshot, err))
		return
	}
	if instance == 0 {
		// The state machine does not count instances: the snapshot is as
		// of the log (no-ops reach no state machine).
		instance = job.Instance
	}
	meta, err := d.r.SnapshotMeta(instance)
	if err != nil {
		fail(err)
		return
	}
	d.h.WriteSnapshot(meta, write)
}

// publish hands the shell the view and membership when they changed.
func (d *Driver) publish() {
	now := d.h.Now()
	v := d.r.View(now)
	d.keepSessions(v, now)
	if m := d.r.Members(); v != d.published || m != d.members {
		d.published, d.members = v, m
		d.h.Publish(v, m)
	}
}
