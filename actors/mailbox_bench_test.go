package actors

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/livepaxos/livepaxos/messages"
)

// nopInvoker takes every message and does nothing with it.
type nopInvoker struct{}

func (nopInvoker) InvokeSystemMessage(any)  {}
func (nopInvoker) InvokeUserMessage(any)    {}
func (nopInvoker) EscalateFailure(any, any) {}

// BenchmarkMailboxPost is the cost the bound adds on the hot path: a
// message posted to and taken from the core's mailbox, below the bound,
// with protoactor's unbounded mailbox alone as the baseline.
func BenchmarkMailboxPost(b *testing.B) {
	msg := &messages.Accepted{Ballot: 1, Instances: []uint64{2}}
	for _, c := range []struct {
		name string
		mb   func() actor.Mailbox
	}{
		{"unbounded", func() actor.Mailbox { return actor.Unbounded()() }},
		{"bounded", func() actor.Mailbox {
			return &boundedMailbox{Mailbox: actor.Unbounded()(), limit: DefaultMaxMailboxMessages,
				shed: func(any) bool { return true }}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			mb := c.mb()
			mb.RegisterHandlers(nopInvoker{}, actor.NewSynchronizedDispatcher(300))
			mb.Start()
			b.ReportAllocs()
			for b.Loop() {
				mb.PostUserMessage(msg)
			}
		})
	}
}
