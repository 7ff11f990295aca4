package probe

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Stage tells where an Interceptor sees a message.
type Stage uint8

const (
	// StageSend is the sender middleware: the message leaves an actor (or
	// a root context built with the middleware).
	StageSend Stage = iota + 1
	// StageReceive is the receiver middleware: the message is about to be
	// handled by the receiving actor.
	StageReceive
)

func (s Stage) String() string {
	switch s {
	case StageSend:
		return "send"
	case StageReceive:
		return "receive"
	}
	return "unknown"
}

// Event is one message as an Interceptor sees it.
type Event struct {
	Stage Stage
	// From is the address of the sending node: the local system's address
	// at StageSend; at StageReceive the sender PID's address, or "" when
	// the message carries no sender (a plain Send).
	From string
	// To is the address of the receiving node (Target.Address).
	To string
	// Target is the receiving actor.
	Target *actor.PID
	// Sender is the PID the message carries as its sender, or nil.
	Sender  *actor.PID
	Message any
}

// Predicate selects messages for a rule.
type Predicate func(Event) bool

// IsType returns a predicate that selects messages of type T.
func IsType[T any]() Predicate {
	return func(e Event) bool { _, ok := e.Message.(T); return ok }
}

// RuleID names a rule for Remove.
type RuleID uint64

type ruleKind uint8

const (
	kindObserve ruleKind = iota + 1
	kindDrop
	kindDelay
	kindDuplicate
)

type rule struct {
	id      RuleID
	kind    ruleKind
	pred    Predicate
	observe func(Event)
	delay   time.Duration
}

type link struct{ from, to string }

// rules is an immutable snapshot; writers replace it whole.
type rules struct {
	list    []rule
	blocked map[link]bool
}

func (r *rules) empty() bool { return r == nil || len(r.list) == 0 && len(r.blocked) == 0 }

// Interceptor is protoactor middleware whose rules can change while
// messages flow. Install SenderMiddleware and/or ReceiverMiddleware on the
// actors to control (actors.Config has fields for both). Rules apply at
// every stage where the interceptor is installed; a predicate can check
// Event.Stage to pick one. Lifecycle and system messages (Started,
// Stopping, PoisonPill, ...) always pass untouched and unobserved.
//
// For each message, in order: every Observe callback whose predicate
// matches is called; then the message is dropped if its link is blocked
// (Partition, Block) or a Drop rule matches; otherwise the first matching
// Delay rule delays it and a matching Duplicate rule delivers it twice.
//
// The zero value is not usable; create one with NewInterceptor. All methods
// are safe for concurrent use.
type Interceptor struct {
	mu      sync.Mutex // serializes writers
	state   atomic.Pointer[rules]
	nextID  RuleID
	dropped atomic.Uint64
}

// NewInterceptor returns an interceptor with no rules: it passes every
// message through.
func NewInterceptor() *Interceptor {
	i := &Interceptor{}
	i.state.Store(&rules{})
	return i
}

// update applies fn to a copy of the current rules.
func (i *Interceptor) update(fn func(r *rules)) {
	i.mu.Lock()
	defer i.mu.Unlock()
	old := i.state.Load()
	r := &rules{list: append([]rule(nil), old.list...), blocked: make(map[link]bool, len(old.blocked))}
	for l := range old.blocked {
		r.blocked[l] = true
	}
	fn(r)
	i.state.Store(r)
}

func (i *Interceptor) add(ru rule) RuleID {
	var id RuleID
	i.update(func(r *rules) {
		i.nextID++
		id = i.nextID
		ru.id = id
		r.list = append(r.list, ru)
	})
	return id
}

// Observe calls fn with every message pred selects (nil selects all). fn
// runs on the sending or receiving goroutine: keep it short and do not block.
func (i *Interceptor) Observe(pred Predicate, fn func(Event)) RuleID {
	return i.add(rule{kind: kindObserve, pred: pred, observe: fn})
}

// Drop discards every message pred selects (nil selects all).
func (i *Interceptor) Drop(pred Predicate) RuleID {
	return i.add(rule{kind: kindDrop, pred: pred})
}

// Delay holds every message pred selects for d before delivering it.
// Delayed messages may be overtaken by later ones. At StageReceive the
// message is posted back to the receiving actor after d.
func (i *Interceptor) Delay(d time.Duration, pred Predicate) RuleID {
	return i.add(rule{kind: kindDelay, pred: pred, delay: d})
}

// Duplicate delivers every message pred selects twice.
func (i *Interceptor) Duplicate(pred Predicate) RuleID {
	return i.add(rule{kind: kindDuplicate, pred: pred})
}

// Remove deletes the rule with the given id; unknown ids are ignored.
func (i *Interceptor) Remove(id RuleID) {
	i.update(func(r *rules) {
		for k, ru := range r.list {
			if ru.id == id {
				r.list = append(r.list[:k], r.list[k+1:]...)
				return
			}
		}
	})
}

// Clear removes every rule and heals every link.
func (i *Interceptor) Clear() {
	i.update(func(r *rules) { r.list, r.blocked = nil, nil })
}

// Block drops every message from the node at address from to the node at
// address to (one way).
func (i *Interceptor) Block(from, to string) {
	i.update(func(r *rules) { r.blocked[link{from, to}] = true })
}

// Partition drops every message between the nodes at addresses a and b, in
// both directions.
func (i *Interceptor) Partition(a, b string) {
	i.update(func(r *rules) {
		r.blocked[link{a, b}] = true
		r.blocked[link{b, a}] = true
	})
}

// Heal unblocks every link cut by Block or Partition. Other rules stay.
func (i *Interceptor) Heal() {
	i.update(func(r *rules) { r.blocked = map[link]bool{} })
}

// Dropped returns how many messages this interceptor has dropped so far.
func (i *Interceptor) Dropped() uint64 { return i.dropped.Load() }

// decision is what the rules say about one message.
type decision struct {
	drop  bool
	delay time.Duration
	dup   bool
}

func (i *Interceptor) decide(r *rules, e Event) decision {
	var d decision
	for _, ru := range r.list {
		if ru.kind == kindObserve && (ru.pred == nil || ru.pred(e)) {
			ru.observe(e)
		}
	}
	if e.From != "" && r.blocked[link{e.From, e.To}] {
		d.drop = true
	}
	delaySet := false
	for _, ru := range r.list {
		if d.drop {
			break
		}
		if ru.pred != nil && !ru.pred(e) {
			continue
		}
		switch ru.kind {
		case kindDrop:
			d.drop = true
		case kindDelay:
			if !delaySet {
				d.delay, delaySet = ru.delay, true
			}
		case kindDuplicate:
			d.dup = true
		}
	}
	if d.drop {
		i.dropped.Add(1)
	}
	return d
}

func lifecycle(msg any) bool {
	switch msg.(type) {
	case actor.SystemMessage, actor.AutoReceiveMessage:
		return true
	}
	return false
}

// SenderMiddleware returns the interceptor as protoactor sender middleware
// (actor.WithSenderMiddleware, actor.NewRootContext, actors.Config).
func (i *Interceptor) SenderMiddleware() actor.SenderMiddleware {
	return func(next actor.SenderFunc) actor.SenderFunc {
		return func(ctx actor.SenderContext, target *actor.PID, env *actor.MessageEnvelope) {
			r := i.state.Load()
			if r.empty() || lifecycle(env.Message) {
				next(ctx, target, env)
				return
			}
			d := i.decide(r, Event{Stage: StageSend, From: ctx.ActorSystem().Address(), To: target.Address,
				Target: target, Sender: env.Sender, Message: env.Message})
			if d.drop {
				return
			}
			deliver := func() {
				next(ctx, target, env)
				if d.dup {
					next(ctx, target, env)
				}
			}
			if d.delay > 0 {
				time.AfterFunc(d.delay, deliver)
				return
			}
			deliver()
		}
	}
}

// delayed is a message the receiver middleware has held back and posted to
// the receiving actor again; it passes the middleware untouched.
type delayed struct{ env *actor.MessageEnvelope }

// ReceiverMiddleware returns the interceptor as protoactor receiver
// middleware (actor.WithReceiverMiddleware, actors.Config).
func (i *Interceptor) ReceiverMiddleware() actor.ReceiverMiddleware {
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(ctx actor.ReceiverContext, env *actor.MessageEnvelope) {
			if d, ok := env.Message.(*delayed); ok {
				next(ctx, d.env)
				return
			}
			r := i.state.Load()
			if r.empty() || lifecycle(env.Message) {
				next(ctx, env)
				return
			}
			self := ctx.Self()
			e := Event{Stage: StageReceive, To: self.Address, Target: self, Sender: env.Sender, Message: env.Message}
			if env.Sender != nil {
				e.From = env.Sender.Address
			}
			d := i.decide(r, e)
			switch {
			case d.drop:
			case d.delay > 0:
				// Handling it later on a timer goroutine would break the
				// actor's one-message-at-a-time rule: post it back instead.
				sys := ctx.ActorSystem()
				time.AfterFunc(d.delay, func() {
					sys.Root.Send(self, &delayed{env})
					if d.dup {
						sys.Root.Send(self, &delayed{env})
					}
				})
			default:
				next(ctx, env)
				if d.dup {
					next(ctx, env)
				}
			}
		}
	}
}
