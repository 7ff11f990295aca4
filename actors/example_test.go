package actors_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// counter is an embedder's own state machine: commands are integers to add.
type counter struct{ total atomic.Int64 }

func (c *counter) Apply(_ uint64, command []byte) ([]byte, error) {
	n, err := strconv.Atoi(string(command))
	if err != nil {
		return nil, err // refused deterministically, on every replica
	}
	return []byte(strconv.FormatInt(c.total.Add(int64(n)), 10)), nil
}

// Query makes the counter an actors.Reader: reads are answered from its
// state (on the caller's goroutine for lease and stale reads), concurrently
// with Apply.
func (c *counter) Query([]byte) ([]byte, error) {
	return []byte(strconv.FormatInt(c.total.Load(), 10)), nil
}

// A host embeds a replica as an actor subtree of its own actor system, with
// its own state machine. This group has one voter, so it needs no peers; a
// real group lists every voter in Peers, each host spawning its replica the
// same way.
func Example() {
	dir, _ := os.MkdirTemp("", "livepaxos-example")
	defer os.RemoveAll(dir)

	// The host's actor system, with remoting started before any spawn.
	system, remote, addr, err := cluster.NewSystem(cluster.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	defer remote.Shutdown(false)

	replica, err := actors.NewReplica(actors.Config{
		NodeID:       1,
		Peers:        map[uint32]string{1: addr},
		DataDir:      dir,
		StateMachine: &counter{},
		Proposer:     paxos.ProposerConfig{ElectionTimeoutMin: 50 * time.Millisecond},
	})
	if err != nil {
		panic(err)
	}
	if err := replica.Start(system); err != nil {
		panic(err)
	}
	defer replica.Close() // stops its actors, then releases the directory

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, add := range []string{"5", "37"} {
		for {
			res, err := replica.Propose(ctx, system.Root, []byte(add))
			if err == nil {
				fmt.Println("total:", string(res))
				break
			}
			time.Sleep(20 * time.Millisecond) // not master yet: the election is under way
		}
	}
	_, err = replica.Propose(ctx, system.Root, []byte("not a number"))
	fmt.Println("refused:", err != nil)
	// A lease read: the master answers from its state, no Paxos round.
	for {
		total, epoch, err := replica.Read(ctx, system.Root, nil, messages.Consistency_CONSISTENCY_LEASE)
		if err == nil {
			fmt.Println("read:", string(total), "in epoch", epoch)
			break
		}
		time.Sleep(20 * time.Millisecond) // mastership not confirmed yet: retry
	}
	// Output:
	// total: 5
	// total: 42
	// refused: true
	// read: 42 in epoch 1
}

// The database is a Snapshotter, a Reader and an EpochObserver.
var (
	_ actors.Snapshotter   = (*db.KV)(nil)
	_ actors.Reader        = (*db.KV)(nil)
	_ actors.EpochObserver = (*db.KV)(nil)
)
