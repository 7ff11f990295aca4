package sim

import (
	"fmt"
	"math"
	"time"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// Watchers (issue 16, item 8): each follows the changes of the clients'
// keys (prefix "k") from instance 1, asking one node at a time as a
// stream would (db.KV.Watch decides every answer), resuming at another
// node from where its db.WatchCursor says when an answer does not come or
// now and then for no reason (a change of serving node). At the end of the
// run, what each delivered since its last reset must be exactly the log's
// changes of the range, in order: every change once (ErrWatchMissed).

// watcherBase: endpoint ids at or above it are watchers.
const watcherBase = 3000

var watchRange = db.WatchRange{Key: []byte("k"), Prefix: true}

// watchPoll asks a node for the changes from an instance; watchAnswer is
// its answer.
type watchPoll struct {
	id   uint64
	from uint64
}

type watchAnswer struct {
	id uint64
	b  db.WatchBatch
}

type watcher struct {
	s    *Simulator
	idx  int
	id   uint32
	node uint32
	cur  *db.WatchCursor
	poll uint64 // the poll awaiting its answer
	// got: the changes delivered since the last reset (from on).
	got         []*messages.WatchEvent
	from        uint64
	reconnects  int
	resets      int
	deliverable bool
}

func newWatcher(s *Simulator, idx int) *watcher {
	cur := db.NewWatchCursor(1)
	cur.PlantResumeLate = s.cfg.PlantedWatchResumeLate
	return &watcher{s: s, idx: idx, id: watcherBase + uint32(idx), cur: cur, from: 1}
}

func (w *watcher) start() {
	w.node = w.s.all[w.s.rng.IntN(len(w.s.all))]
	w.s.sched.after(w.s.rng.Int64N(int64(10*time.Millisecond)), w.ask)
}

func (w *watcher) ask() {
	s := w.s
	if s.err != nil || s.sched.now >= s.end {
		return
	}
	s.reqSeq++
	id := s.reqSeq
	w.poll = id
	s.net.send(w.id, w.node, &watchPoll{id: id, from: w.cur.From()})
	s.sched.after(int64(200*time.Millisecond), func() {
		if w.poll == id && s.err == nil {
			w.reconnect() // no answer: the stream broke
		}
	})
}

// reconnect moves to another node, resuming where the cursor says.
func (w *watcher) reconnect() {
	w.reconnects++
	w.cur.Reconnect()
	w.poll = 0
	w.node = w.s.all[w.s.rng.IntN(len(w.s.all))]
	w.s.sched.after(int64(5*time.Millisecond), w.ask)
}

func (w *watcher) receive(msg any) {
	m, ok := msg.(*watchAnswer)
	if !ok {
		panic(fmt.Sprintf("sim: watcher %d got a %T", w.idx, msg))
	}
	if m.id != w.poll {
		return // an answer given up on
	}
	w.poll = 0
	if m.b.Reset {
		w.resets++
		w.got, w.from = nil, m.b.Instance+1
	}
	w.got = append(w.got, w.cur.Take(m.b.Events, m.b.Instance)...)
	if w.s.rng.IntN(30) == 0 {
		w.reconnect() // a change of serving node, for no reason
		return
	}
	w.s.sched.after(int64(2*time.Millisecond)+w.s.rng.Int64N(int64(10*time.Millisecond)), w.ask)
}

// serveWatch is a node's answer to a poll.
func (n *node) serveWatch(from uint32, m *watchPoll) {
	n.send(from, &watchAnswer{id: m.id, b: n.kv.Watch(watchRange, m.from, 50)})
}

// checkWatchers compares what each watcher delivered with the log's
// changes, as a replica that still holds them has them.
func (s *Simulator) checkWatchers() {
	for _, w := range s.watchers {
		upto := w.cur.From() // delivered: instances [w.from, upto)
		if upto <= w.from {
			continue
		}
		var truth []*messages.WatchEvent
		found := false
		for _, n := range s.nodes {
			if !n.up {
				continue
			}
			b := n.kv.Watch(watchRange, w.from, math.MaxInt)
			if b.Reset || b.Instance < upto-1 {
				continue
			}
			found = true
			for _, e := range b.Events {
				if e.Instance < upto {
					truth = append(truth, e)
				}
			}
			break
		}
		if !found {
			continue // no replica holds the changes any more
		}
		if len(truth) != len(w.got) {
			s.fail(ErrSafety, ErrWatchMissed, "watcher %d delivered %d changes of instances %d..%d, the log has %d (%d reconnects)",
				w.idx, len(w.got), w.from, upto-1, len(truth), w.reconnects)
			return
		}
		for i, e := range truth {
			g := w.got[i]
			if g.Instance != e.Instance || string(g.Key) != string(e.Key) || g.Delete != e.Delete || string(g.Value) != string(e.Value) {
				s.fail(ErrSafety, ErrWatchMissed, "watcher %d: change %d is %v, the log's is %v", w.idx, i, g, e)
				return
			}
		}
		s.watchStats.Delivered += len(w.got)
		s.watchStats.Reconnects += w.reconnects
		s.watchStats.Resets += w.resets
	}
}

// watchStats counts what the watchers did.
type watchStats struct{ Delivered, Reconnects, Resets int }
