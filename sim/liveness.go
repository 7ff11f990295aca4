package sim

import (
	"fmt"
	"time"

	"github.com/livepaxos/livepaxos/paxos"
)

// Liveness under partial partitions (issue 14). Once the group has
// recovered from safety mode's faults, liveness mode plays one cut that
// leaves a connected majority, for CutDuration, and demands progress all
// the while: a client write chosen at least every ProgressBound. The
// shapes are the ones that stalled real groups: the master's answers cut
// off one way (its heartbeats still reach everyone), the master cut off
// both ways, a flapping link between the master and one follower, and a
// follower cut off and let back in. A follower cut off must never raise a
// ballot while it is (it could not win, and on its return it would depose
// a working master).

// CutShape is the partial partition of a run's liveness mode.
type CutShape uint8

const (
	CutNone CutShape = iota
	// CutMasterOneWay drops every message to the master; the master's
	// own messages still arrive everywhere.
	CutMasterOneWay
	// CutMasterTwoWay cuts the master off from everyone, both ways.
	CutMasterTwoWay
	// CutFlapping cuts and heals the link between the master and one
	// follower, both ways, every 50 to 600 ms.
	CutFlapping
	// CutIsolateRejoin cuts one follower off both ways, then lets it
	// back in.
	CutIsolateRejoin
	cutShapes // how many there are
)

func (c CutShape) String() string {
	return [...]string{"none", "master-one-way", "master-two-way", "flapping", "isolate-rejoin"}[c]
}

// cutSlack is the time after the cut heals during which operations are
// not yet held to OpBound: one issued during the cut may have waited out
// an attempt at a node that stepped down.
const cutSlack = 2 * time.Second

// cutEpisode is the state of the cut in progress.
type cutEpisode struct {
	start, end int64
	// lastWrite is when a client write was last applied first anywhere.
	lastWrite int64
	// isolated is the follower cut off (CutIsolateRejoin), with the
	// ballot its acceptor had promised when the cut began.
	isolated *node
	promised uint64
	flapA    uint32
	flapB    uint32
	// unjudged: the cut leaves no majority whose votes count, so no
	// progress is owed while it lasts (noVotingMajority).
	unjudged bool
}

// cutWindow returns when the cut starts and ends, and whether the run
// has one.
func (s *Simulator) cutWindow() (start, end int64, ok bool) {
	if s.cfg.Cut == CutNone {
		return 0, 0, false
	}
	start = s.faultsEnd + int64(s.cfg.RecoveryBound) + int64(500*time.Millisecond)
	return start, start + int64(s.cfg.CutDuration), true
}

// exempt reports whether an operation issued at call is excused from
// OpBound: issued while a cut may have held it up.
func (s *Simulator) exempt(call int64) bool {
	start, end, ok := s.cutWindow()
	return ok && call >= start-int64(s.cfg.OpBound) && call < end+int64(cutSlack)
}

// scheduleCut arranges the run's cut, if it has one.
func (s *Simulator) scheduleCut() {
	start, end, ok := s.cutWindow()
	if !ok {
		return
	}
	s.sched.at(start, func() { s.beginCut(end) })
	s.sched.at(end, s.endCut)
}

// currentMaster returns the live master, or the first voter if there is
// none (the cut then strikes wherever it strikes).
func (s *Simulator) currentMaster() *node {
	for _, n := range s.nodes {
		if n.up && n.r().IsMaster() {
			return n
		}
	}
	return s.nodes[0]
}

func (s *Simulator) beginCut(end int64) {
	if s.err != nil {
		return
	}
	m := s.currentMaster()
	var others []uint32
	for _, id := range s.all {
		if id != m.id {
			others = append(others, id)
		}
	}
	ep := &cutEpisode{start: s.sched.now, end: end, lastWrite: s.sched.now}
	s.cut = ep
	switch s.cfg.Cut {
	case CutMasterOneWay:
		s.net.partition(others, s.all, true)
	case CutMasterTwoWay:
		s.net.partition([]uint32{m.id}, s.all, false)
	case CutFlapping:
		ep.flapA, ep.flapB = m.id, others[s.rng.IntN(len(others))]
		s.flap(true)
	case CutIsolateRejoin:
		var voters []uint32
		for _, id := range s.ids {
			if id != m.id {
				voters = append(voters, id)
			}
		}
		ep.isolated = s.nodes[voters[s.rng.IntN(len(voters))]-1]
		ep.promised = ep.isolated.r().Promised()
		s.net.partition([]uint32{ep.isolated.id}, s.all, false)
	}
	s.tracef("CUT %s (master %s) until %s", s.cfg.Cut, m.name(), timeDuration(end))
	cutOff := m.id
	switch {
	case s.cfg.Cut == CutFlapping:
		cutOff = 0
	case ep.isolated != nil:
		cutOff = ep.isolated.id
	}
	if why := s.noVotingMajority(m, cutOff); why != "" {
		// Paxos owes progress only to a majority whose votes count.
		s.tracef("CUT not judged for progress: %s", why)
		ep.unjudged = true
	}
	s.watchProgress()
}

// noVotingMajority says why the voters the cut leaves connected (all but
// cutOff) hold no majority of the configuration whose votes count, or ""
// if they do. A voter that lost its disk votes only once the configuration
// records its new incarnation (§5.1); a cut that strikes before the group
// did so leaves no majority however well the others talk (sim seed 6756:
// four voters, the master cut off, one rebuilt and not yet recorded).
func (s *Simulator) noVotingMajority(m *node, cutOff uint32) string {
	var voters, counting []uint32
	for _, mem := range m.r().Members().GetMembers() {
		if mem.Role != "" && mem.Role != paxos.VoterRole {
			continue
		}
		voters = append(voters, mem.Id)
		if mem.Id == cutOff || int(mem.Id) > len(s.nodes) {
			continue
		}
		n := s.nodes[mem.Id-1]
		if n.up && (mem.Incarnation == n.diskInc || mem.Incarnation == 0 && !n.r().Fresh()) {
			counting = append(counting, mem.Id)
		}
	}
	if len(counting) > len(voters)/2 {
		return ""
	}
	return fmt.Sprintf("of the voters %v only %v are connected and vote", voters, counting)
}

// flap cuts (or heals) the flapping link and schedules the next change.
func (s *Simulator) flap(cut bool) {
	ep := s.cut
	if ep == nil || s.sched.now >= ep.end || s.err != nil {
		return
	}
	if cut {
		s.net.cut[[2]uint32{ep.flapA, ep.flapB}] = true
		s.net.cut[[2]uint32{ep.flapB, ep.flapA}] = true
	} else {
		delete(s.net.cut, [2]uint32{ep.flapA, ep.flapB})
		delete(s.net.cut, [2]uint32{ep.flapB, ep.flapA})
	}
	s.sched.after(s.between(int64(50*time.Millisecond), int64(600*time.Millisecond)), func() { s.flap(!cut) })
}

func (s *Simulator) endCut() {
	if s.err != nil || s.cut == nil {
		return
	}
	s.net.heal()
	s.cutMaxGap = max(s.cutMaxGap, s.sched.now-s.cut.lastWrite)
	s.tracef("CUT HEALED")
	s.cut = nil
}

// progressEvery is how often the cut's invariants are looked at.
const progressEvery = 50 * time.Millisecond

// watchProgress checks, while the cut lasts, that writes keep being
// chosen and that an isolated follower raises no ballot.
func (s *Simulator) watchProgress() {
	ep := s.cut
	if ep == nil || s.err != nil {
		return
	}
	if n := ep.isolated; n != nil && n.up && n.r().Promised() > ep.promised {
		s.fail(ErrLiveness, ErrDisruptiveCampaign, "%s, cut off since %s, raised its promise from %s to %s",
			n.name(), timeDuration(ep.start), fmtBallot(ep.promised), fmtBallot(n.r().Promised()))
		return
	}
	if idle := s.sched.now - ep.lastWrite; idle > int64(s.cfg.ProgressBound) && !ep.unjudged {
		s.fail(ErrLiveness, ErrNoProgress, "cut %s: no write chosen for %s (bound %s)", s.cfg.Cut,
			timeDuration(idle), s.cfg.ProgressBound)
		return
	}
	if s.sched.now+int64(progressEvery) < ep.end {
		s.sched.after(int64(progressEvery), s.watchProgress)
	}
}

// wrote notes a client write applied for the first time.
func (s *Simulator) wrote() {
	if s.cut != nil {
		s.cutMaxGap = max(s.cutMaxGap, s.sched.now-s.cut.lastWrite)
		s.cut.lastWrite = s.sched.now
	}
}
