package cluster

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"
)

// DefaultPeerLogInterval is how often WatchPeers repeats that a peer is still
// unreachable.
const DefaultPeerLogInterval = 30 * time.Second

// maxDownPeers bounds the addresses WatchPeers tracks at once. Past it, a
// further address going down is not reported: so many at once is a flood
// (or stray addresses), and a line each would be one too.
const maxDownPeers = 1024

// WatchPeers reports the reachability of the remote addresses sys sends to,
// in place of protoactor's per-attempt errors (see quietRules):
//
//   - "peer unreachable" at Warn, once, when an address goes down, with the
//     reason: the last connection error protoactor logged for it, if sys was
//     built by NewSystem, or "connection lost";
//   - "peer still unreachable" at Warn while it stays down, at most once per
//     every, and only after new failures (a reconnect attempt, or a dead
//     letter to it) since the last line: how long it has been down, failed
//     reconnect attempts and dead letters so far, the latest reason;
//   - "peer reachable again" at Info when a connection to it succeeds, with
//     how long it was down.
//
// protoactor (this version) publishes remote.EndpointTerminatedEvent when a
// writer's connect attempt fails, when an established stream breaks, and when
// the peer says it is shutting down; and remote.EndpointConnectedEvent on
// every successful connect. Both only happen while something is sent to the
// address: a peer nobody sends to is never found down, or up again.
//
// Dead letters counted are messages without a sender that a writer could not
// deliver; requests (with a sender) fail at the caller instead and are not
// counted, so the count is a lower bound.
//
// every <= 0 means DefaultPeerLogInterval. Call stop (idempotent) before
// shutting sys down.
func WatchPeers(sys *actor.ActorSystem, log *slog.Logger, every time.Duration) (stop func()) {
	return WatchPeersMatching(sys, log, every, nil)
}

// WatchPeersMatching is WatchPeers for the addresses isPeer accepts only (all
// when isPeer is nil). A node also dials its clients, to answer them, and a
// client that exits is not a peer going down. isPeer is called on protoactor's
// goroutines, at most once per connection event: it must be quick and safe
// for concurrent use.
func WatchPeersMatching(sys *actor.ActorSystem, log *slog.Logger, every time.Duration, isPeer func(addr string) bool) (stop func()) {
	if every <= 0 {
		every = DefaultPeerLogInterval
	}
	if log == nil {
		log = discardLogger()
	}
	w := &peerWatch{
		log:     log,
		every:   every,
		isPeer:  isPeer,
		reasons: reasonsOf(sys),
		down:    make(map[string]*downPeer),
	}
	es := sys.EventStream
	endpoints := es.SubscribeWithPredicate(w.endpointEvent, func(evt any) bool {
		switch evt.(type) {
		case *remote.EndpointTerminatedEvent, *remote.EndpointConnectedEvent:
			return true
		}
		return false
	})
	// Every dead letter in the system passes here; while no address is down
	// this costs a type switch and an atomic load.
	letters := es.SubscribeWithPredicate(w.deadLetter, func(evt any) bool {
		_, ok := evt.(*actor.DeadLetterEvent)
		return ok && w.downCount.Load() > 0
	})
	done := make(chan struct{})
	finished := make(chan struct{})
	go w.remindLoop(done, finished)

	var once sync.Once
	return func() {
		once.Do(func() {
			unsubscribe(es, endpoints, letters)
			close(done)
			<-finished
		})
	}
}

func unsubscribe(es *eventstream.EventStream, subs ...*eventstream.Subscription) {
	for _, s := range subs {
		es.Unsubscribe(s)
	}
}

type peerWatch struct {
	log     *slog.Logger
	every   time.Duration
	isPeer  func(string) bool
	reasons *connReasons // nil when sys's logger is not loggerFactory's

	// downCount mirrors len(down) for the dead-letter path, which must not
	// take the lock while nothing is down.
	downCount atomic.Int32
	mu        sync.Mutex
	down      map[string]*downPeer
}

// downPeer is what is known about an address since it went down.
type downPeer struct {
	since, lastLog time.Time
	// attempts counts failed connects after the one that reported it down.
	attempts    int64
	deadLetters int64
	// news is set by a failure since the last line, so that an address
	// nothing is sent to any more is not reported forever.
	news bool
}

// reason is why the last connection to addr failed, as protoactor logged it.
func (w *peerWatch) reason(addr string) string {
	if r := w.reasons.get(addr); r != "" {
		return r
	}
	return "connection lost"
}

// endpointEvent runs on the goroutine that publishes the event (an endpoint
// writer's), so it only updates the table and logs transitions.
func (w *peerWatch) endpointEvent(evt any) {
	switch e := evt.(type) {
	case *remote.EndpointTerminatedEvent:
		if w.isPeer == nil || w.isPeer(e.Address) {
			w.terminated(e.Address, time.Now())
		}
	case *remote.EndpointConnectedEvent:
		w.connected(e.Address, time.Now())
	}
}

func (w *peerWatch) terminated(addr string, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := w.down[addr]; ok {
		p.attempts++
		p.news = true
		return
	}
	if len(w.down) >= maxDownPeers {
		return
	}
	w.down[addr] = &downPeer{since: now, lastLog: now}
	w.downCount.Store(int32(len(w.down)))
	// Logged under the lock so that this line always precedes the
	// address's "reachable again".
	w.log.Warn("peer unreachable", slog.String("address", addr), slog.String("reason", w.reason(addr)))
}

func (w *peerWatch) connected(addr string, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.down[addr]
	if !ok {
		return
	}
	delete(w.down, addr)
	w.downCount.Store(int32(len(w.down)))
	w.log.Info("peer reachable again", slog.String("address", addr),
		slog.Duration("down_for", now.Sub(p.since).Round(time.Millisecond)),
		slog.Int64("dead_letters", p.deadLetters))
}

func (w *peerWatch) deadLetter(evt any) {
	e, ok := evt.(*actor.DeadLetterEvent)
	if !ok || e.PID == nil {
		return
	}
	w.mu.Lock()
	if p, ok := w.down[e.PID.Address]; ok {
		p.deadLetters++
		p.news = true
	}
	w.mu.Unlock()
}

// remindLoop checks several times per interval, so that a repeat line comes
// no later than about every*5/4 after the previous one.
func (w *peerWatch) remindLoop(done <-chan struct{}, finished chan<- struct{}) {
	defer close(finished)
	t := time.NewTicker(max(w.every/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			w.remind(now)
		}
	}
}

func (w *peerWatch) remind(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for addr, p := range w.down {
		if !p.news || now.Sub(p.lastLog) < w.every {
			continue
		}
		p.lastLog = now
		p.news = false
		w.log.Warn("peer still unreachable", slog.String("address", addr),
			slog.Duration("down_for", now.Sub(p.since).Round(time.Millisecond)),
			slog.String("reason", w.reason(addr)),
			slog.Int64("failed_connects", p.attempts),
			slog.Int64("dead_letters", p.deadLetters))
	}
}
