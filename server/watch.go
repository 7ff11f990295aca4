package server

import (
	"fmt"
	"time"

	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// watchBatch bounds the events of one answer (whole instances, so a
// little more when one instance changed more keys).
const watchBatch = 1000

// watchIdle is how often a watch with nothing new still looks: a lost
// wake-up costs no more than this.
const watchIdle = time.Second

// Watch streams a range's changes as this node applies them (issue 16,
// item 4): the decisions (which changes, whole instances, or a reset) are
// db.KV.Watch's; this only waits and sends.
func (k *kvService) Watch(in *messages.WatchRequest, st messages.KV_WatchServer) error {
	s := k.s
	kv := s.cfg.DB
	if kv == nil {
		return s.invalid(messages.ErrorCode_ERROR_CODE_INVALID, "this node serves no watches")
	}
	if (len(in.Key) == 0 && !in.Prefix) || len(in.Key) > kv.Limits().MaxKeyBytes {
		return s.invalid(messages.ErrorCode_ERROR_CODE_INVALID, fmt.Sprintf("watch key of %d bytes (empty only with prefix; limit %d)",
			len(in.Key), kv.Limits().MaxKeyBytes))
	}
	r := db.WatchRange{Key: in.Key, Prefix: in.Prefix}
	from := in.From
	if from == 0 {
		from = kv.Complete() + 1
	}
	// The first answer says where the watch starts: a client that
	// reconnects resumes from there even if nothing changed meanwhile.
	if err := st.Send(&messages.WatchResponse{Header: s.header(nil), Instance: from - 1}); err != nil {
		return err
	}
	ctx := st.Context()
	for {
		changed := kv.Changed() // before looking, so no change is missed
		b := kv.Watch(r, from, watchBatch)
		if b.Reset || len(b.Events) > 0 {
			h := s.header(nil)
			h.Instance = b.Instance
			if err := st.Send(&messages.WatchResponse{Header: h, Events: b.Events, Reset_: b.Reset, Kvs: b.KVs, Instance: b.Instance}); err != nil {
				return err
			}
		}
		if b.Instance >= from {
			from = b.Instance + 1
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-time.After(watchIdle):
		}
	}
}
