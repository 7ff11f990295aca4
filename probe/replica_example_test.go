package probe_test

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/cluster"
	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
	"github.com/livepaxos/livepaxos/probe"
)

// counter is an embedder's state machine: commands are integers to add.
type counter struct{ total int }

func (c *counter) Apply(_ uint64, command []byte) ([]byte, error) {
	n, err := strconv.Atoi(string(command))
	if err != nil {
		return nil, err
	}
	c.total += n
	return []byte(strconv.Itoa(c.total)), nil
}

// An embedder tests its own state machine inside a real (here one-voter)
// replica: a probe is the client, and asserts on the ClientResponse the
// replica sends back.
func Example_stateMachine() {
	dir, _ := os.MkdirTemp("", "probe-example")
	defer os.RemoveAll(dir)
	sys, rem, addr, err := cluster.NewSystem(cluster.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	defer rem.Shutdown(false)
	replica, err := actors.NewReplica(actors.Config{NodeID: 1, Peers: map[uint32]string{1: addr},
		DataDir: dir, StateMachine: &counter{},
		Proposer: paxos.ProposerConfig{ElectionTimeoutMin: 50 * time.Millisecond}})
	if err != nil {
		panic(err)
	}
	defer replica.Close()
	pid, err := sys.Root.SpawnNamed(replica.Props(), actors.DefaultName)
	if err != nil {
		panic(err)
	}
	defer func() { sys.Root.StopFuture(pid).Wait() }()

	for !replica.Status().IsMaster {
		time.Sleep(10 * time.Millisecond) // the election is under way
	}

	p := probe.New(sys)
	defer p.Stop()
	// send submits a command with the probe as the client and returns the
	// replica's answer.
	send := func(id uint64, cmd string) *messages.ClientResponse {
		req := &messages.ClientRequest{RequestId: id, Command: []byte(cmd)}
		sys.Root.RequestWithCustomSender(replica.ProposerPID(), req, p.PID())
		resp, err := probe.ExpectMsg[*messages.ClientResponse](p, 5*time.Second)
		if err != nil {
			panic(err)
		}
		return resp
	}
	for i, add := range []string{"5", "37"} {
		resp := send(uint64(i+1), add)
		fmt.Println(resp.RequestId, resp.Code, string(resp.Result))
	}
	resp := send(3, "not a number")
	fmt.Println(resp.RequestId, resp.Code)
	fmt.Println(p.ExpectNoMsg(50*time.Millisecond) == nil)
	// Output:
	// 1 ERROR_CODE_OK 5
	// 2 ERROR_CODE_OK 42
	// 3 ERROR_CODE_INVALID
	// true
}
