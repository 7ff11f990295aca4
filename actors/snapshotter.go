package actors

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/storage"
)

// snapshotChunkBytes bounds one SnapshotChunk: far below the transport's
// message limit, so a transfer never competes with the protocol's messages
// for long.
const snapshotChunkBytes = 256 << 10

// installTimeout is how long an install waits for the next chunk before it
// gives up; the learner asks again, perhaps of another peer.
const installTimeout = 3 * time.Second

type snapshotTick struct{}

// beginSnapshot asks the learner actor to freeze the state machine between
// two instances; snapshotBegun is its answer.
type beginSnapshot struct{}

type snapshotBegun struct {
	instance uint64
	meta     *messages.SnapshotMeta
	write    func(io.Writer) error
	err      error
}

// snapshotWritten reports a snapshot file committed (or failed).
type snapshotWritten struct {
	info storage.SnapshotInfo
	dur  time.Duration
	err  error
}

// snapshotTaken tells the learner actor a snapshot is durable as of
// instance: it may let go of the log below it.
type snapshotTaken struct{ instance uint64 }

// installFrom asks the snapshotter to fetch a peer's snapshot.
type installFrom struct {
	peer     uint32
	instance uint64
}

// installSnapshot hands the learner actor a fetched, verified snapshot.
type installSnapshot struct{ info storage.SnapshotInfo }

// snapshotterActor takes this replica's snapshots (§5.5), serves them to
// peers in chunks and fetches a peer's when the learner is behind what the
// peers still hold in their logs.
type snapshotterActor struct {
	r        *Replica
	learner  *actor.PID
	stopTick func()
	// taking a snapshot: who asked (answered when it is durable).
	taking  bool
	waiters []waiter
	next    []waiter // asked while a snapshot was being written
	// logBytesAt is the log's byte count when the last snapshot began.
	logBytesAt uint64
	started    time.Time
	latest     storage.SnapshotInfo
	// installing from a peer
	install     *installFrom
	installFile *os.File
	installPath string
	installOff  uint64
	lastChunk   time.Time
}

type waiter struct {
	pid *actor.PID
	id  uint64
}

func newSnapshotterActor(r *Replica) actor.Actor { return &snapshotterActor{r: r} }

// due is the automatic policy: a snapshot once SnapshotEvery instances
// were applied, or SnapshotLogBytes written to the log, since the last
// one, so that a busy replica's disk and memory stay bounded.
func (a *snapshotterActor) due() bool {
	if _, ok := a.r.cfg.StateMachine.(Snapshotter); !ok {
		return false
	}
	applied := a.r.appliedUpto.Load()
	if applied <= a.latest.Instance {
		return false
	}
	// The replicas of a group see the same log, so the same thresholds
	// would have them all snapshot at once, slowing every member of the
	// master's quorum together: each node's thresholds are stretched by
	// up to 25% according to its id, so their snapshots take turns.
	stretch := func(v int64) uint64 { return uint64(v) + uint64(v)/12*uint64((a.r.cfg.NodeID-1)%4) }
	if every := a.r.cfg.SnapshotEvery; every > 0 && applied-a.latest.Instance >= stretch(every) {
		return true
	}
	limit := a.r.cfg.SnapshotLogBytes
	return limit > 0 && a.r.wal.Stats().Bytes-a.logBytesAt >= stretch(limit)
}

func (a *snapshotterActor) dir() string { return filepath.Join(a.r.cfg.DataDir, "snapshots") }

func (a *snapshotterActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.learner = a.r.pid(a.r.cfg.NodeID, LearnerName)
		a.latest = a.r.restoredSnapshot
		a.stopTick = ticker(ctx.ActorSystem(), ctx.Self(), time.Second, snapshotTick{})
	case *actor.Stopping:
		if a.stopTick != nil {
			a.stopTick()
		}
		a.abandonInstall()
	case *messages.SnapshotRequest:
		w := waiter{pid: ctx.Sender(), id: m.RequestId}
		if a.taking {
			// The one being written began before this request: answer
			// with the next.
			a.next = append(a.next, w)
			return
		}
		a.waiters = append(a.waiters, w)
		a.take(ctx)
	case snapshotTick:
		if a.due() {
			a.take(ctx)
		}
		if a.install != nil && time.Since(a.lastChunk) > installTimeout {
			a.abandonInstall()
		}
	case *snapshotBegun:
		a.write(ctx, m)
	case *snapshotWritten:
		a.written(ctx, m)
	case *messages.SnapshotChunkRequest:
		a.serveChunk(ctx, m)
	case *installFrom:
		a.startInstall(ctx, m)
	case *messages.SnapshotChunk:
		a.chunk(ctx, m)
	}
}

func (a *snapshotterActor) take(ctx actor.Context) {
	if a.taking {
		return
	}
	if _, ok := a.r.cfg.StateMachine.(Snapshotter); !ok {
		a.answer(ctx, &messages.SnapshotResponse{NodeId: a.r.cfg.NodeID, Error: "the state machine cannot snapshot"})
		return
	}
	if a.r.appliedUpto.Load() <= a.latest.Instance {
		// Nothing applied since the last one: it is the answer.
		a.answer(ctx, &messages.SnapshotResponse{NodeId: a.r.cfg.NodeID, Instance: a.latest.Instance, Bytes: a.latest.Bytes})
		return
	}
	a.taking, a.started = true, time.Now()
	a.logBytesAt = a.r.wal.Stats().Bytes
	ctx.Request(a.learner, &beginSnapshot{})
}

// write writes the frozen state to a snapshot file on a goroutine of its
// own: the learner goes on applying meanwhile.
func (a *snapshotterActor) write(ctx actor.Context, m *snapshotBegun) {
	if m.err != nil {
		a.written(ctx, &snapshotWritten{err: m.err})
		return
	}
	self, sys, dir := ctx.Self(), ctx.ActorSystem(), a.dir()
	started := a.started
	go func() {
		res := &snapshotWritten{}
		res.info, res.err = writeSnapshotFile(dir, m)
		res.dur = time.Since(started)
		sys.Root.Send(self, res)
	}()
}

func writeSnapshotFile(dir string, m *snapshotBegun) (storage.SnapshotInfo, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return storage.SnapshotInfo{}, err
	}
	meta, err := proto.Marshal(m.meta)
	if err != nil {
		return storage.SnapshotInfo{}, err
	}
	w, err := storage.CreateSnapshot(dir, m.instance, meta, storage.SnapshotOptions{Pace: true})
	if err != nil {
		return storage.SnapshotInfo{}, err
	}
	if err := m.write(w); err != nil {
		w.Abort()
		return storage.SnapshotInfo{}, err
	}
	if err := w.Commit(); err != nil {
		return storage.SnapshotInfo{}, err
	}
	// Report it only once it reads back whole: an unverifiable snapshot is
	// never used, so nothing is let go of on its account.
	return storage.VerifySnapshot(filepath.Join(dir, storage.SnapshotFileName(m.instance)))
}

func (a *snapshotterActor) written(ctx actor.Context, m *snapshotWritten) {
	a.taking = false
	resp := &messages.SnapshotResponse{NodeId: a.r.cfg.NodeID, DurationUs: m.dur.Microseconds()}
	a.r.snapshots.Add(1)
	if m.err != nil {
		resp.Error = m.err.Error()
		a.r.cfg.Logger.Warn("snapshot failed", "node", a.r.cfg.NodeID, "err", m.err)
	} else {
		if m.info.Instance > a.latest.Instance {
			a.latest = m.info
			a.r.snapshotAt.Store(m.info.Instance)
		}
		resp.Instance, resp.Bytes = m.info.Instance, m.info.Bytes
		ctx.Send(a.learner, &snapshotTaken{instance: m.info.Instance})
		a.r.snapshotAt.Store(a.latest.Instance)
		a.r.cfg.Logger.Info("snapshot taken", "node", a.r.cfg.NodeID, "instance", m.info.Instance, "bytes", m.info.Bytes, "took", m.dur)
	}
	a.answer(ctx, resp)
	if len(a.next) > 0 {
		a.waiters, a.next = a.next, nil
		a.take(ctx)
	}
}

func (a *snapshotterActor) answer(ctx actor.Context, resp *messages.SnapshotResponse) {
	for _, w := range a.waiters {
		if w.pid == nil {
			continue
		}
		r := proto.Clone(resp).(*messages.SnapshotResponse)
		r.RequestId = w.id
		ctx.Send(w.pid, r)
	}
	a.waiters = nil
}

// serveChunk sends a peer the next chunk of the newest snapshot file.
func (a *snapshotterActor) serveChunk(ctx actor.Context, m *messages.SnapshotChunkRequest) {
	to := a.r.pid(m.From, SnapshotterName)
	if to == nil {
		return
	}
	resp := &messages.SnapshotChunk{From: a.r.cfg.NodeID, Offset: m.Offset}
	if a.latest.Instance >= m.Instance && a.latest.Path != "" {
		if f, err := os.Open(a.latest.Path); err == nil {
			buf := make([]byte, snapshotChunkBytes)
			n, err := f.ReadAt(buf, int64(m.Offset))
			f.Close()
			if err == nil || errors.Is(err, io.EOF) {
				resp.Instance, resp.Data, resp.Done = a.latest.Instance, buf[:n], errors.Is(err, io.EOF) || n < len(buf)
			}
		}
	}
	ctx.Send(to, resp)
}

func (a *snapshotterActor) startInstall(ctx actor.Context, m *installFrom) {
	if a.install != nil || m.instance <= a.r.appliedUpto.Load() || m.instance <= a.latest.Instance {
		return // one transfer at a time, and only of something newer
	}
	if err := os.MkdirAll(a.dir(), 0o755); err != nil {
		return
	}
	a.installPath = filepath.Join(a.dir(), fmt.Sprintf("install-%d.part", m.instance))
	f, err := os.OpenFile(a.installPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	a.install, a.installFile, a.installOff, a.lastChunk = m, f, 0, time.Now()
	a.request(ctx)
}

func (a *snapshotterActor) request(ctx actor.Context) {
	if to := a.r.pid(a.install.peer, SnapshotterName); to != nil {
		ctx.Send(to, &messages.SnapshotChunkRequest{From: a.r.cfg.NodeID, Instance: a.install.instance, Offset: a.installOff})
	}
}

func (a *snapshotterActor) chunk(ctx actor.Context, m *messages.SnapshotChunk) {
	if a.install == nil || m.From != a.install.peer || m.Offset != a.installOff {
		return // late, duplicate, or from a transfer given up
	}
	if m.Instance < a.install.instance {
		a.abandonInstall() // the peer has nothing as recent
		return
	}
	if _, err := a.installFile.Write(m.Data); err != nil {
		a.abandonInstall()
		return
	}
	a.installOff += uint64(len(m.Data))
	a.lastChunk = time.Now()
	if !m.Done {
		a.request(ctx)
		return
	}
	f, path := a.installFile, a.installPath
	a.installFile, a.install = nil, nil
	err := f.Sync()
	f.Close()
	if err != nil {
		os.Remove(path)
		return
	}
	info, err := storage.VerifySnapshot(path)
	if err != nil {
		a.r.cfg.Logger.Warn("fetched snapshot does not verify", "node", a.r.cfg.NodeID, "err", err)
		os.Remove(path)
		return
	}
	if info.Instance <= a.latest.Instance || info.Instance <= a.r.appliedUpto.Load() {
		os.Remove(path) // overtaken meanwhile
		return
	}
	final := filepath.Join(a.dir(), storage.SnapshotFileName(info.Instance))
	if err := os.Rename(path, final); err != nil {
		os.Remove(path)
		return
	}
	info.Path = final
	if info.Instance > a.latest.Instance {
		a.latest = info
	}
	ctx.Send(a.learner, &installSnapshot{info: info})
}

func (a *snapshotterActor) abandonInstall() {
	if a.installFile != nil {
		a.installFile.Close()
		os.Remove(a.installPath)
	}
	a.install, a.installFile = nil, nil
}
