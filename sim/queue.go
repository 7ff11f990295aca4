package sim

import "container/heap"

// event is one thing that happens at a simulated instant. Events at the
// same instant run in the order they were scheduled (seq), so the order of
// a run depends on nothing but the seed.
type event struct {
	at  int64 // simulated nanoseconds since the start of the run
	seq uint64
	fn  func()
}

// eventQueue is a min-heap of events ordered by (at, seq).
type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

// scheduler owns simulated time and the pending events.
type scheduler struct {
	now int64
	seq uint64
	q   eventQueue
}

// at schedules fn at simulated time t (never in the past).
func (s *scheduler) at(t int64, fn func()) {
	if t < s.now {
		t = s.now
	}
	s.seq++
	heap.Push(&s.q, &event{at: t, seq: s.seq, fn: fn})
}

// after schedules fn d nanoseconds from now.
func (s *scheduler) after(d int64, fn func()) { s.at(s.now+d, fn) }

// next pops the earliest event and advances the clock to it.
func (s *scheduler) next() (*event, bool) {
	if len(s.q) == 0 {
		return nil, false
	}
	e := heap.Pop(&s.q).(*event)
	s.now = e.at
	return e, true
}

// peek returns the time of the earliest event.
func (s *scheduler) peek() (int64, bool) {
	if len(s.q) == 0 {
		return 0, false
	}
	return s.q[0].at, true
}
