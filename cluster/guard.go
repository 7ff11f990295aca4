package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/extensions"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// The gRPC methods protoactor's remote serves (remote/remote_grpc.pb.go).
const (
	methodReceive               = "/remote.Remoting/Receive"
	methodListProcesses         = "/remote.Remoting/ListProcesses"
	methodGetProcessDiagnostics = "/remote.Remoting/GetProcessDiagnostics"
)

// protoSerializerID is the only serializer protoactor's endpoint writer ever
// uses (endpoint_writer.go: its serializerID is a zero local variable).
const protoSerializerID = 0

// dropLogInterval bounds how often dropped envelopes are logged, so that a
// misbehaving sender cannot flood the node's log.
const dropLogInterval = time.Second

// guard keeps a node alive when a peer or a stray client sends something
// protoactor's endpoint reader cannot handle.
//
// protoactor decodes each envelope of an incoming MessageBatch on the gRPC
// stream goroutine (endpointReader.Receive -> onMessageBatch), and gRPC does
// not recover panics in handlers, so any panic there kills the process.
// The panic sites in protoactor-go v0.0.0-20240822202345-3c0e61ca19c9 are:
//
//   - remote/proto_serializer.go:30-32 (protoSerializer.Deserialize): the
//     error of GlobalTypes.FindMessageByName is discarded and n.New() is
//     called on the nil MessageType: an unknown type name is a nil
//     dereference.
//   - remote/endpoint_reader.go:138 m.TypeNames[envelope.TypeId] and
//     remote/serializer.go:36 serializers[serializerID]: index out of range.
//   - remote/endpoint_reader.go:192 and :204 (deserializeSender,
//     deserializeTarget): arr[index-1] and arr[index], index out of range.
//   - remote/endpoint_manager.go:177 (remoteTerminate): msg.Watchee.Address
//     with a Terminated whose Who is nil.
//   - actor/deadletter.go:58 m.Watcher.sendSystemMessage with a Watch whose
//     Watcher is nil, sent to an actor that does not exist (the dead-letter
//     subscriber runs synchronously on the publishing goroutine).
//
// A known type with garbled bytes does not panic: Deserialize returns the
// error, onMessageBatch returns it, and the reader ends that one stream with
// the error. The sender loses the rest of that batch and must reconnect,
// which is the right answer to a sender that garbles its frames.
//
// The guard wraps the Receive stream so that RecvMsg removes every envelope
// that would reach one of these panic sites before protoactor sees the
// batch: it checks the indexes, the serializer, the target address and that
// the type name is linked into this binary, and it decodes the three system
// messages whose PIDs protoactor dereferences. The rest of the batch is
// delivered and the stream stays open: one message of a type this node does
// not know (a peer on a newer version) must not cost the messages batched
// with it. As a second line of defence the interceptor recovers any panic in
// the handler and ends only that stream with codes.Internal.
//
// User messages are not decoded here: protoactor decodes them right after,
// and a second decode would double the per-message cost on the hot path
// (BenchmarkProtoactorDecode: ~0.75 µs per Accept; the checks above cost
// ~40 ns, BenchmarkGuardFilter) only to turn a closed stream into a dropped
// envelope for senders that garble bytes.
type guard struct {
	sys *actor.ActorSystem
	log *slog.Logger
	// rem is the remote whose endpoint writers' drops StatsOf reports
	// (nil until NewSystem made it).
	rem   *remote.Remote
	allow func(protoreflect.FullName) bool // nil: any type but protoactor's own
	// senderField and selfBound bind peer certificates to node ids
	// (certbind.go); senderFields caches senderField by type.
	senderField  SenderField
	selfBound    bool
	senderFields sync.Map

	dropped [numDropReasons]atomic.Uint64
	panics  atomic.Uint64
	streams atomic.Int64

	// deadLetters, when set, takes protoactor's DeadLetterResponse from
	// the network as an answer (see OnDeadLetterResponse); answered counts
	// those it took.
	deadLetters atomic.Pointer[func(target *actor.PID) bool]
	answered    atomic.Uint64

	lastDropLog atomic.Int64 // unix nanoseconds
}

// dropReason is why the guard removed an envelope, for the counters.
type dropReason int

const (
	// dropMalformed: indexes out of range, an unknown serializer, a nil
	// envelope or PID.
	dropMalformed dropReason = iota
	// dropTarget: addressed to another node, or to this one under
	// another spelling.
	dropTarget
	// dropUnknownType: a type this binary does not know.
	dropUnknownType
	// dropLifecycle: one of protoactor's own system or lifecycle messages
	// (Stop, PoisonPill, Watch, Unwatch, Terminated, Restart, ...): no
	// remote may stop, watch or restart an actor here.
	dropLifecycle
	// dropNotAllowed: a type outside Options.AllowMessages.
	dropNotAllowed
	// dropWrongSender: the node id the message says it comes from is not
	// the one the connection's certificate is bound to, or the
	// certificate binds none where it must (certbind.go).
	dropWrongSender
	numDropReasons
)

// String names a drop reason as the metrics label it.
func (r dropReason) String() string {
	return [...]string{"malformed", "wrong_target", "unknown_type", "lifecycle", "not_allowed", "wrong_sender"}[r]
}

// protoactorPackages are the protobuf packages of protoactor's own
// messages: system and lifecycle messages (actor), remoting's internal
// ones (remote: ActorPidRequest would spawn an actor here), its cluster's.
var protoactorPackages = map[protoreflect.FullName]bool{"actor": true, "remote": true, "cluster": true, "gossip": true}

var guardExtensionID = extensions.NextExtensionID()

// ExtensionID lets the guard live in the actor system's extension registry,
// so that StatsOf can find it from the system alone.
func (g *guard) ExtensionID() extensions.ExtensionID { return guardExtensionID }

func newGuard(sys *actor.ActorSystem, log *slog.Logger, allow func(protoreflect.FullName) bool) *guard {
	g := &guard{sys: sys, log: log, allow: allow}
	sys.Extensions.Register(g)
	return g
}

// GuardStats counts what the guard did on one actor system.
type GuardStats struct {
	Dropped uint64 // envelopes removed from incoming batches
	// DroppedBy counts them by reason: malformed, wrong_target,
	// unknown_type, lifecycle (protoactor's system messages), not_allowed,
	// wrong_sender (a claimed node id its certificate is not bound to).
	DroppedBy map[string]uint64
	// DeadLetterAnswers counts protoactor DeadLetterResponses taken from
	// the network as the answer to a pending forwarded request (see
	// OnDeadLetterResponse); they are not among Dropped.
	DeadLetterAnswers uint64
	Panics            uint64 // panics recovered in gRPC handlers
	ActiveStreams     int64  // Receive streams currently open (one per connected peer writer)
	// Unsent counts outgoing messages this node's endpoint writers
	// dropped; UnsentBy by reason: queue_full (the writer's queue was at
	// Options.WriterQueueSize), too_large (one message over BatchBytes).
	Unsent   uint64
	UnsentBy map[string]uint64
}

// StatsOf returns the guard's counters for a system built by NewSystem; the
// zero value for any other system. Operators and tests use it to see that
// bad input was dropped rather than lost in a reconnect.
func StatsOf(sys *actor.ActorSystem) GuardStats {
	g, ok := sys.Extensions.Get(guardExtensionID).(*guard)
	if !ok || g == nil {
		return GuardStats{}
	}
	st := GuardStats{DroppedBy: make(map[string]uint64, numDropReasons), Panics: g.panics.Load(), ActiveStreams: g.streams.Load(),
		DeadLetterAnswers: g.answered.Load()}
	for r := range numDropReasons {
		n := g.dropped[r].Load()
		st.DroppedBy[r.String()] = n
		st.Dropped += n
	}
	st.UnsentBy = make(map[string]uint64, 2)
	if g.rem != nil {
		w := g.rem.WriterDrops()
		st.UnsentBy[remote.WriterQueueFull.String()] = w.QueueFull
		st.UnsentBy[remote.WriterTooLarge.String()] = w.TooLarge
		st.Unsent = w.QueueFull + w.TooLarge
	}
	return st
}

// serverOptions returns the interceptors to install on the remote's server.
func (g *guard) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainStreamInterceptor(g.streamInterceptor),
		grpc.ChainUnaryInterceptor(g.unaryInterceptor),
	}
}

func (g *guard) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	g.streams.Add(1)
	defer g.streams.Add(-1)
	defer g.recoverInto(info.FullMethod, &err)
	if info.FullMethod == methodReceive {
		var bind *certBinding
		if ss != nil {
			bind = g.bindingOf(peer.FromContext(ss.Context()))
		}
		ss = &guardedStream{ServerStream: ss, g: g, bind: bind}
	}
	return handler(srv, ss)
}

// unaryInterceptor answers protoactor's two unary methods itself: both are
// `panic("implement me")` (remote/endpoint_reader.go:25 and :29), so one
// call from any gRPC client would otherwise kill the node.
func (g *guard) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	switch info.FullMethod {
	case methodListProcesses, methodGetProcessDiagnostics:
		return nil, status.Errorf(codes.Unimplemented, "%s is not implemented", info.FullMethod)
	}
	defer g.recoverInto(info.FullMethod, &err)
	return handler(ctx, req)
}

// recoverInto turns a panic in a gRPC handler into an Internal error for
// that call only. Deferred functions of the handler (protoactor's reader
// closes its disconnect channel) have run by the time it is called.
func (g *guard) recoverInto(method string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	g.panics.Add(1)
	g.log.Error("recovered panic in remote handler; closing the stream",
		slog.String("method", method), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
	*err = status.Errorf(codes.Internal, "remote handler failed: %v", r)
}

// guardedStream filters each incoming RemoteMessage before protoactor's
// endpoint reader sees it.
type guardedStream struct {
	grpc.ServerStream
	g    *guard
	bind *certBinding // nil: no certificate binding enforced
}

func (s *guardedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if rm, ok := m.(*remote.RemoteMessage); ok {
		if b := rm.GetMessageBatch(); b != nil {
			s.g.filterBatchFrom(b, s.bind)
		}
	}
	return nil
}

// filterBatch removes, in place, every envelope that would make protoactor
// panic, or that it would misroute. An emptied batch is harmless: the reader
// loops over zero envelopes.
func (g *guard) filterBatch(b *remote.MessageBatch) { g.filterBatchFrom(b, nil) }

// filterBatchFrom is filterBatch for a batch that arrived on a stream whose
// certificate binding is bind (nil: none enforced).
func (g *guard) filterBatchFrom(b *remote.MessageBatch, bind *certBinding) {
	kept := b.Envelopes[:0]
	for _, e := range b.Envelopes {
		if why, reason := g.check(b, e, bind); reason != "" {
			if why == dropLifecycle && g.answerDeadLetter(b, e) {
				continue // taken as an answer; no actor sees it
			}
			g.drop(why, reason)
			continue
		}
		kept = append(kept, e)
	}
	clear(b.Envelopes[len(kept):])
	b.Envelopes = kept
}

// check returns why envelope e of batch b must be dropped (reason is ""
// if it must not).
func (g *guard) check(b *remote.MessageBatch, e *remote.MessageEnvelope, bind *certBinding) (why dropReason, reason string) {
	if e == nil {
		return dropMalformed, "nil envelope"
	}
	if e.TypeId < 0 || int(e.TypeId) >= len(b.TypeNames) {
		return dropMalformed, fmt.Sprintf("type index %d out of range (%d type names)", e.TypeId, len(b.TypeNames))
	}
	if e.Target < 0 || int(e.Target) >= len(b.Targets) || b.Targets[e.Target] == nil {
		return dropMalformed, fmt.Sprintf("target index %d out of range (%d targets)", e.Target, len(b.Targets))
	}
	// Sender 0 means "no sender"; n refers to Senders[n-1].
	if e.Sender < 0 || int(e.Sender) > len(b.Senders) || (e.Sender > 0 && b.Senders[e.Sender-1] == nil) {
		return dropMalformed, fmt.Sprintf("sender index %d out of range (%d senders)", e.Sender, len(b.Senders))
	}
	if e.SerializerId != protoSerializerID {
		return dropMalformed, fmt.Sprintf("serializer %d not supported (only protobuf, 0)", e.SerializerId)
	}
	// A target for another address would make protoactor forward the
	// message, and a target naming this node under another spelling
	// ("localhost" for "127.0.0.1") would loop back here forever.
	if target, self := b.Targets[e.Target].Address, g.sys.Address(); target != self {
		return dropTarget, fmt.Sprintf("target address %q is not this node's address %q (peers must use the same spelling)", target, self)
	}
	typeName := protoreflect.FullName(b.TypeNames[e.TypeId])
	mt, err := protoregistry.GlobalTypes.FindMessageByName(typeName)
	if err != nil {
		return dropUnknownType, fmt.Sprintf("unknown message type %q", typeName)
	}
	// Checked by the descriptor's package, not by a list of types: a
	// system message this version of protoactor adds is dropped too. This
	// also keeps Watch, Unwatch and Terminated, whose PIDs protoactor
	// dereferences on the gRPC goroutine, from ever reaching it.
	if protoactorPackages[mt.Descriptor().ParentFile().Package()] {
		return dropLifecycle, fmt.Sprintf("%s is one of protoactor's own messages: none is taken from the network", typeName)
	}
	if g.allow != nil && !g.allow(typeName) {
		return dropNotAllowed, fmt.Sprintf("message type %q is not one this node takes", typeName)
	}
	if reason := g.checkSender(bind, typeName, e.MessageData); reason != "" {
		return dropWrongSender, reason
	}
	return 0, ""
}

func (g *guard) drop(why dropReason, reason string) {
	g.dropped[why].Add(1)
	n := uint64(0)
	for r := range numDropReasons {
		n += g.dropped[r].Load()
	}
	now := time.Now().UnixNano()
	last := g.lastDropLog.Load()
	if now-last < int64(dropLogInterval) || !g.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	g.log.Warn("dropped incoming remote message", slog.String("reason", reason), slog.Uint64("dropped_total", n))
}

// deadLetterResponseName is the protobuf name of protoactor's answer to a
// request whose target does not exist.
var deadLetterResponseName = (&actor.DeadLetterResponse{}).ProtoReflect().Descriptor().FullName()

// OnDeadLetterResponse has the guard of sys (a system built by NewSystem)
// hand each DeadLetterResponse that arrives from the network to take, with
// its target PID (RequestId included), instead of only dropping it with
// the other protoactor messages. It returns a function that undoes it, and
// false if sys has no guard (then no such message is dropped at all).
//
// Why one of protoactor's own messages may be taken: when a request that
// has a sender reaches a node where its target actor does not exist (a
// master whose role actor stopped), that node's dead-letter process
// answers the sender with a DeadLetterResponse, over the network. It is
// the only news that the request reached no actor there; without it a
// forwarded write waits for its deadline and ends "outcome unknown".
// Taking it is harmless, which the guard's purpose requires:
//   - it is never delivered: take runs on the gRPC goroutine, and the
//     envelope is removed from the batch whether take wants it or not, so
//     no actor here sees it, and nothing here can be stopped, watched or
//     restarted by it (it is not a system message either);
//   - take must only end a request it has pending (matched by the target
//     and its request id) and return false for anything else, which is
//     then dropped and counted as a lifecycle drop like before;
//   - a forged one can end at most one pending request as not delivered,
//     which a sender able to reach this port could already do by forging
//     the answer itself (answers are matched by request id too).
//
// take must not block.
func OnDeadLetterResponse(sys *actor.ActorSystem, take func(target *actor.PID) bool) (undo func(), ok bool) {
	g, ok := sys.Extensions.Get(guardExtensionID).(*guard)
	if !ok || g == nil {
		return func() {}, false
	}
	p := &take
	g.deadLetters.Store(p)
	return func() { g.deadLetters.CompareAndSwap(p, nil) }, true
}

// answerDeadLetter reports whether e (which check found well-formed,
// addressed here, and one of protoactor's own) is a DeadLetterResponse
// that the taker set with OnDeadLetterResponse took.
func (g *guard) answerDeadLetter(b *remote.MessageBatch, e *remote.MessageEnvelope) bool {
	take := g.deadLetters.Load()
	if take == nil || protoreflect.FullName(b.TypeNames[e.TypeId]) != deadLetterResponseName {
		return false
	}
	target := &actor.PID{Address: b.Targets[e.Target].Address, Id: b.Targets[e.Target].Id, RequestId: e.TargetRequestId}
	if !(*take)(target) {
		return false
	}
	g.answered.Add(1)
	return true
}
