package actors

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/core"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
	"github.com/livepaxos/livepaxos/storage"
)

// snapshotChunkBytes bounds one SnapshotChunk: far below the transport's
// message limit, so a transfer never competes with the protocol's messages
// for long.
const snapshotChunkBytes = 256 << 10

// chunkRequestsPerSecond bounds the snapshot chunks this node serves to
// one peer: 400 chunks of 256 KiB is 100 MiB/s, more than a transfer that
// keeps one chunk in flight needs from a disk, and a bound on the reads
// and sends anyone claiming a member's id can cause.
const chunkRequestsPerSecond = 400

// installTimeout is how long an install waits for the next chunk before it
// gives up; the learner asks again, perhaps of another peer.
const installTimeout = 3 * time.Second

type snapshotTick struct{}

// writeSnapshot asks the snapshot device to write a snapshot the core
// began (core.Devices.WriteSnapshot).
type writeSnapshot struct {
	meta  *messages.SnapshotMeta
	write func(io.Writer) error
}

// written reports a snapshot file committed (or failed), to the device.
type written struct {
	info storage.SnapshotInfo
	res  core.SnapshotResult
}

// snapshotWritten reports it to the core's actor.
type snapshotWritten struct{ res core.SnapshotResult }

// installFrom asks the snapshot device to fetch a peer's snapshot.
type installFrom struct {
	peer     uint32
	instance uint64
}

// installSnapshot hands the core's actor a fetched, verified snapshot.
type installSnapshot struct{ info storage.SnapshotInfo }

// installFailed tells the snapshot device that the core's actor could not
// install the snapshot it was handed (installSnapshot), and why.
type installFailed struct {
	info storage.SnapshotInfo
	err  error
}

// snapshotterActor is the snapshot device (§5.5): it writes the snapshots
// the core takes, serves this replica's newest one to peers in chunks,
// and fetches a peer's when the core asks (the replica is behind what its
// peers still hold in their logs). When to snapshot, and what a snapshot
// lets go of, are the core's decisions.
type snapshotterActor struct {
	r        *Replica
	core     *actor.PID
	stopTick func()
	latest   storage.SnapshotInfo
	// installing from a peer
	install     *installFrom
	installFile *os.File
	installPath string
	installOff  uint64
	lastChunk   time.Time
	// chunkLimits: the rate limit of chunk requests, by requesting member.
	chunkLimits map[uint32]*rate.Limiter
}

func newSnapshotterActor(r *Replica) actor.Actor { return &snapshotterActor{r: r} }

// cluster is the hash every snapshot transfer message of this group
// carries: a chunk or request of another group is dropped.
func (a *snapshotterActor) cluster() uint64 { return messages.ClusterHash(a.r.cfg.ClusterID) }

func (a *snapshotterActor) dir() string { return filepath.Join(a.r.cfg.DataDir, "snapshots") }

func (a *snapshotterActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.core = actor.NewPID(ctx.Self().Address, a.r.cfg.Name+"/"+CoreName)
		a.latest = a.r.restored
		a.stopTick = ticker(ctx.ActorSystem(), ctx.Self(), time.Second, snapshotTick{})
	case *actor.Stopping:
		if a.stopTick != nil {
			a.stopTick()
		}
		a.abandonInstall()
		a.r.stoppingUnasked(SnapshotterName)
	case *messages.SnapshotRequest:
		ctx.Forward(a.core) // the core decides; its answer goes to the sender
	case snapshotTick:
		if a.install != nil && time.Since(a.lastChunk) > installTimeout {
			a.abandonInstall()
		}
	case *writeSnapshot:
		a.write(ctx, m)
	case *written:
		if m.res.Err == nil && m.info.Instance > a.latest.Instance {
			a.latest = m.info
		}
		ctx.Send(a.core, &snapshotWritten{res: m.res})
	case *messages.SnapshotChunkRequest:
		if why := a.admitChunkRequest(m, time.Now()); why != "" {
			a.r.snapshotDrops.add(why)
			return
		}
		a.serveChunk(ctx, m)
	case *installFrom:
		a.startInstall(ctx, m)
	case *installFailed:
		a.installFailed(m)
	case *messages.SnapshotChunk:
		if m.Cluster != a.cluster() {
			a.r.snapshotDrops.add(core.DropCluster)
			return
		}
		a.chunk(ctx, m)
	}
}

// write writes the frozen state to a snapshot file on a goroutine of its
// own: the core goes on applying meanwhile.
func (a *snapshotterActor) write(ctx actor.Context, m *writeSnapshot) {
	self, sys, dir, started := ctx.Self(), ctx.ActorSystem(), a.dir(), time.Now()
	go func() {
		res := &written{}
		res.info, res.res.Err = writeSnapshotFile(dir, m)
		res.res.Instance, res.res.Bytes, res.res.Took = res.info.Instance, res.info.Bytes, time.Since(started)
		if mt := a.r.cfg.Metrics; mt != nil && res.res.Err == nil {
			mt.Snapshotted(res.res.Took, int64(res.info.Bytes))
		}
		sys.Root.Send(self, res)
	}()
}

func writeSnapshotFile(dir string, m *writeSnapshot) (storage.SnapshotInfo, error) {
	if err := storage.MkdirAllSynced(dir); err != nil {
		return storage.SnapshotInfo{}, err
	}
	meta, err := proto.Marshal(m.meta)
	if err != nil {
		return storage.SnapshotInfo{}, err
	}
	w, err := storage.CreateSnapshot(dir, m.meta.Instance, meta, storage.SnapshotOptions{Pace: true})
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
	return storage.VerifySnapshot(filepath.Join(dir, storage.SnapshotFileName(m.meta.Instance)))
}

// admitChunkRequest says why not to serve a chunk request, or "" to serve
// it: it must come from this cluster, from another current member (the
// chunk goes to that member's address, never to whoever sent the
// request), within that member's rate.
func (a *snapshotterActor) admitChunkRequest(m *messages.SnapshotChunkRequest, now time.Time) core.DropReason {
	members := a.r.members.Load()
	switch {
	case m.Cluster != a.cluster():
		return core.DropCluster
	case m.From == a.r.cfg.NodeID || paxos.MemberOf(members, m.From) == nil:
		return core.DropNotMember
	}
	if a.chunkLimits == nil || len(a.chunkLimits) > len(members.GetMembers()) {
		a.chunkLimits = make(map[uint32]*rate.Limiter) // members come and go: start over
	}
	l := a.chunkLimits[m.From]
	if l == nil {
		l = rate.NewLimiter(chunkRequestsPerSecond, chunkRequestsPerSecond)
		a.chunkLimits[m.From] = l
	}
	if !l.AllowN(now, 1) {
		return core.DropRate
	}
	return ""
}

// serveChunk sends a peer the next chunk of the newest snapshot file.
func (a *snapshotterActor) serveChunk(ctx actor.Context, m *messages.SnapshotChunkRequest) {
	to := a.r.pid(m.From, SnapshotterName)
	if to == nil {
		return
	}
	resp := &messages.SnapshotChunk{From: a.r.cfg.NodeID, Offset: m.Offset, Cluster: a.cluster()}
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
	if a.install != nil || m.instance <= a.r.Applied() {
		return // one transfer at a time, and only of something newer
	}
	if m.instance <= a.latest.Instance {
		// A snapshot as recent is here already, in place and durable,
		// but the replica is still behind it: installing it failed after
		// its rename (the state machine refused it, say). Hand it over
		// again; without this the replica would wait for a newer one,
		// which its peers may not take for a long time. (A duplicate
		// install is a no-op: the core installs only what is ahead.)
		if a.latest.Instance > a.r.Applied() && a.latest.Path != "" {
			ctx.Send(a.core, &installSnapshot{info: a.latest})
		}
		return
	}
	if err := storage.MkdirAllSynced(a.dir()); err != nil {
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
		ctx.Send(to, &messages.SnapshotChunkRequest{From: a.r.cfg.NodeID, Instance: a.install.instance, Offset: a.installOff, Cluster: a.cluster()})
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
	if info.Instance <= a.latest.Instance || info.Instance <= a.r.Applied() {
		os.Remove(path) // overtaken meanwhile
		return
	}
	final := filepath.Join(a.dir(), storage.SnapshotFileName(info.Instance))
	if err := os.Rename(path, final); err != nil {
		os.Remove(path)
		return
	}
	if err := storage.SyncDir(a.dir()); err != nil {
		// Not durable: a crash could lose the file the core would count
		// on. Drop it; the core asks again.
		a.r.cfg.Logger.Warn("fetched snapshot not made durable", "node", a.r.cfg.NodeID, "err", err)
		os.Remove(final)
		return
	}
	info.Path = final
	if info.Instance > a.latest.Instance {
		a.latest = info
	}
	ctx.Send(a.core, &installSnapshot{info: info})
}

// installFailed forgets a fetched snapshot that no longer reads back
// whole, so that the next offer fetches it anew; one that does is handed
// over again as it is (startInstall).
func (a *snapshotterActor) installFailed(m *installFailed) {
	if !errors.Is(m.err, storage.ErrCorrupt) || m.info.Path == "" || a.latest.Path != m.info.Path {
		return
	}
	a.r.cfg.Logger.Warn("fetched snapshot damaged on disk; fetching it again", "node", a.r.cfg.NodeID, "path", m.info.Path)
	os.Remove(m.info.Path)
	storage.SyncDir(a.dir())
	a.latest = storage.SnapshotInfo{}
}

func (a *snapshotterActor) abandonInstall() {
	if a.installFile != nil {
		a.installFile.Close()
		os.Remove(a.installPath)
	}
	a.install, a.installFile = nil, nil
}
