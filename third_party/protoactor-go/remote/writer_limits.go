package remote

// livepaxos patch (third_party/README.md, third change): the endpoint
// writer's queue is a bound, not an initial size, and a batch is cut by
// bytes as well as by count. Upstream grows the queue without limit and
// packs EndpointWriterBatchSize messages into one gRPC message whatever
// their size, so a batch of large messages exceeds the gRPC message limit,
// is refused, and (the same batch forming again on every retransmission)
// stalls the stream for good.

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// WriterDropReason says why an endpoint writer dropped an outgoing message.
type WriterDropReason int

const (
	// WriterQueueFull: the writer's queue held EndpointWriterQueueSize
	// messages (the peer or the link is slower than the sender).
	WriterQueueFull WriterDropReason = iota
	// WriterTooLarge: the message alone is over EndpointWriterBatchBytes,
	// so no batch could carry it.
	WriterTooLarge
	numWriterDropReasons
)

// String names the reason as a metrics label.
func (r WriterDropReason) String() string {
	return [...]string{"queue_full", "too_large"}[r]
}

// WriterDrops counts the outgoing messages the endpoint writers dropped,
// by reason.
type WriterDrops struct {
	QueueFull uint64
	TooLarge  uint64
}

// writerDropCounters is kept by the Remote, for all its writers.
type writerDropCounters struct {
	n       [numWriterDropReasons]atomic.Uint64
	lastLog atomic.Int64 // unix nanoseconds
}

// writerDropLogInterval bounds how often a drop is logged.
const writerDropLogInterval = time.Second

// WriterDrops returns what the endpoint writers of r dropped so far.
func (r *Remote) WriterDrops() WriterDrops {
	return WriterDrops{QueueFull: r.writerDrops.n[WriterQueueFull].Load(), TooLarge: r.writerDrops.n[WriterTooLarge].Load()}
}

// dropOutgoing counts and (at most once per interval) logs a message a
// writer will not send. A request's sender gets a DeadLetterResponse, as
// when the peer is unreachable, so its future fails at once instead of
// timing out. It runs on the sending goroutine (a full queue) or the
// writer's (a message too large); neither blocks.
func (r *Remote) dropOutgoing(address string, rd *remoteDeliver, why WriterDropReason, size int) {
	r.writerDrops.n[why].Add(1)
	if rd.sender != nil {
		r.actorSystem.Root.Send(rd.sender, &actor.DeadLetterResponse{Target: rd.target})
	}
	now := time.Now().UnixNano()
	last := r.writerDrops.lastLog.Load()
	if now-last < int64(writerDropLogInterval) || !r.writerDrops.lastLog.CompareAndSwap(last, now) {
		return
	}
	attrs := []any{slog.String("address", address), slog.String("reason", why.String()),
		slog.Uint64("dropped_total", r.writerDrops.n[why].Load())}
	if why == WriterTooLarge {
		attrs = append(attrs, slog.Int("bytes", size), slog.Int("limit", r.config.EndpointWriterBatchBytes))
	}
	r.Logger().Warn("EndpointWriter dropped an outgoing message", attrs...)
}

// WithEndpointWriterBatchBytes bounds the serialized size of one batch the
// endpoint writer sends (livepaxos patch). Set it safely under the gRPC
// message limit of both ends. A batch always holds at least one message;
// a message over the bound alone is dropped and counted (WriterTooLarge).
// 0: no bound (upstream's behaviour).
func WithEndpointWriterBatchBytes(n int) ConfigOption {
	return func(config *Config) {
		config.EndpointWriterBatchBytes = n
	}
}

// WithEndpointWriterQueueBytes bounds the encoded bytes of the messages
// waiting in each endpoint writer's queue (livepaxos patch): past it a
// message is dropped and counted (WriterQueueFull) as past the count
// bound; one alone always queues. 0: no bound.
func WithEndpointWriterQueueBytes(n int64) ConfigOption {
	return func(config *Config) {
		config.EndpointWriterQueueBytes = n
	}
}
