package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/livepaxos/livepaxos/internal/rawpeer"
	"github.com/livepaxos/livepaxos/messages"
)

// No remote may stop, watch or restart an actor here: protoactor's system
// and lifecycle messages sent over the network are dropped and counted,
// and the actor they name keeps serving.
func TestGuardDropsLifecycleMessagesFromTheNetwork(t *testing.T) {
	sys, addr := startNode(t, Options{})
	target, _ := spawnProbe(t, sys, "replica/core")
	raw := rawpeer.Dial(t, addr)
	watcher := actor.NewPID("127.0.0.1:1", "evil")
	for _, m := range []proto.Message{
		&actor.PoisonPill{}, &actor.Stop{}, &actor.Touch{}, &actor.Watch{Watcher: watcher},
		&actor.Unwatch{Watcher: watcher}, &actor.Terminated{Who: target}, &actor.Terminated{},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		raw.MustSend(t, rawpeer.OneEnvelope(string(proto.MessageName(m)), b, target))
	}
	eventually(t, 5*time.Second, "7 lifecycle messages dropped", func() bool {
		return StatsOf(sys).DroppedBy["lifecycle"] == 7
	})
	// The actor still answers, to the network too.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	other, _ := startNode(t, Options{})
	reply, err := other.Root.RequestFuture(actor.NewPID(addr, "replica/core"), &messages.StatusRequest{}, time.Until(deadline(ctx))).Result()
	if err != nil {
		t.Fatalf("the actor stopped answering after the lifecycle messages: %v", err)
	}
	if _, ok := reply.(*messages.StatusResponse); !ok {
		t.Fatalf("reply %T", reply)
	}
}

// With AllowMessages, a node takes only the message types it names: a
// known type outside them is dropped and counted as not_allowed, and the
// allowed ones are delivered.
func TestGuardTakesOnlyAllowedMessages(t *testing.T) {
	sys, addr := startNode(t, Options{AllowMessages: func(n protoreflect.FullName) bool {
		return strings.HasPrefix(string(n), "livepaxos.v1.") && n != "livepaxos.v1.Command"
	}})
	target, prepares := spawnProbe(t, sys, "p")
	raw := rawpeer.Dial(t, addr)
	b, _ := proto.Marshal(&messages.Command{Payload: []byte("x")})
	raw.MustSend(t, rawpeer.OneEnvelope("livepaxos.v1.Command", b, target))
	b, _ = proto.Marshal(&messages.Prepare{Ballot: 1})
	raw.MustSend(t, rawpeer.OneEnvelope("livepaxos.v1.Prepare", b, target))
	eventually(t, 5*time.Second, "the allowed Prepare delivered", func() bool { return prepares.Load() == 1 })
	if st := StatsOf(sys); st.DroppedBy["not_allowed"] != 1 || st.Dropped != 1 {
		t.Fatalf("drops %v, want one not_allowed", st.DroppedBy)
	}
}

func deadline(ctx context.Context) time.Time {
	dl, _ := ctx.Deadline()
	return dl
}
