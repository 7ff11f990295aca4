package actors

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// checksumDone carries this replica's checksum of its state at instance,
// computed off the apply path.
type checksumDone struct {
	instance uint64
	sum      []byte
}

// maxChecksumBytes bounds a peer's reported checksum.
const maxChecksumBytes = 64

// startChecksum is called right after a checksum value applied (§6.2):
// the state machine freezes its state and the digest is computed on
// another goroutine while applying goes on.
func (a *learnerActor) startChecksum(ctx actor.Context, instance uint64) {
	cs, ok := a.r.cfg.StateMachine.(Checksummer)
	if !ok {
		return
	}
	sum := cs.BeginChecksum()
	self, sys := ctx.Self(), ctx.ActorSystem()
	go func() { sys.Root.Send(self, &checksumDone{instance: instance, sum: sum()}) }()
}

// checksumDone records this replica's checksum and sends it to every peer.
func (a *learnerActor) ownChecksum(ctx actor.Context, m *checksumDone) {
	for _, id := range peerIDs(a.r.view().addrs) {
		if id != a.r.cfg.NodeID {
			ctx.Send(a.r.pid(id, LearnerName), &messages.ChecksumReport{From: a.r.cfg.NodeID, Instance: m.instance, Checksum: m.sum})
		}
	}
	a.verdict(a.tally.Record(m.instance, a.r.cfg.NodeID, m.sum))
}

// peerChecksum records a peer's report; a malformed one changes nothing.
func (a *learnerActor) peerChecksum(m *messages.ChecksumReport) {
	if _, ok := a.r.view().addrs[m.From]; !ok || m.From == a.r.cfg.NodeID || len(m.Checksum) == 0 || len(m.Checksum) > maxChecksumBytes {
		return
	}
	a.verdict(a.tally.Record(m.Instance, m.From, m.Checksum))
}

// verdict acts on what a comparison found: a replica that disagrees with
// its group's majority stops serving rather than spread bad state; a peer
// that does is reported loudly.
func (a *learnerActor) verdict(v paxos.Verdict) {
	if v.Instance == 0 {
		return
	}
	if v.Agreed {
		a.r.checks.Add(1)
		if v.Instance > a.r.checkedInstance.Load() {
			a.r.checkedInstance.Store(v.Instance)
		}
	}
	for _, n := range v.Diverged {
		text := fmt.Sprintf("node %d's state diverged from the majority's at instance %d", n, v.Instance)
		a.r.divergence.Store(&text)
		a.r.cfg.Logger.Error("consistency check failed", "node", a.r.cfg.NodeID, "diverged", n, "instance", v.Instance)
	}
	if v.SelfDiverged {
		a.r.checks.Add(1)
		text := fmt.Sprintf("this node's state (node %d) diverged from the majority's at instance %d", a.r.cfg.NodeID, v.Instance)
		a.r.divergence.Store(&text)
		a.r.fatal(fmt.Errorf("%w: %s; stopping", ErrDiverged, text))
	}
}

// divergenceText is the status line for what consistency checks found.
func (r *Replica) divergenceText() string {
	if p := r.divergence.Load(); p != nil {
		return *p
	}
	return ""
}
