package client

import (
	"context"
	"time"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// WatchOptions shape a watch.
type WatchOptions struct {
	Prefix bool   // every key that starts with the key
	From   uint64 // the first instance wanted; 0: changes from now on
}

// WatchUpdate is one answer of a watch: changes in log order, or (Reset)
// the range's whole state at Instance when the changes asked for were no
// longer held. Everything up to Instance has been delivered.
type WatchUpdate struct {
	Events   []*messages.WatchEvent
	Reset    bool
	KVs      []*messages.KeyValue
	Instance uint64
}

// Watch streams the changes of key (or of a prefix) in log order, each
// once (issue 16, item 4): from any node, and when the node fails or the
// stream breaks, from another, resuming at the instance after the last
// one delivered. The channel is closed when ctx ends.
func (c *Client) Watch(ctx context.Context, key []byte, opts WatchOptions) <-chan WatchUpdate {
	out := make(chan WatchUpdate, 16)
	go func() {
		defer close(out)
		cur := db.NewWatchCursor(opts.From)
		for attempt := 0; ctx.Err() == nil; attempt++ {
			ep := c.target(attempt, true)
			if n, err := c.node(ep); err == nil {
				c.watchOnce(ctx, n.kvs[0], key, opts.Prefix, cur, out)
			}
			cur.Reconnect()
			c.unreachable(ep)
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return out
}

// watchOnce follows one node's stream until it breaks.
func (c *Client) watchOnce(ctx context.Context, kv messages.KVClient, key []byte, prefix bool, cur *db.WatchCursor,
	out chan<- WatchUpdate) {
	st, err := kv.Watch(ctx, &messages.WatchRequest{Key: key, Prefix: prefix, From: cur.From()})
	if err != nil {
		return
	}
	for {
		m, err := st.Recv()
		if err != nil {
			return
		}
		events := cur.Take(m.Events, m.Instance)
		if len(events) > 0 || m.Reset_ {
			select {
			case out <- WatchUpdate{Events: events, Reset: m.Reset_, KVs: m.Kvs, Instance: m.Instance}:
			case <-ctx.Done():
				return
			}
		}
	}
}
