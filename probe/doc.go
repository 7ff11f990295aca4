// Package probe holds actor-level test tools for livepaxos and for programs
// that embed it: a TestProbe that stands in for a client or peer actor and
// asserts on what it receives, and an Interceptor that observes, drops,
// delays, duplicates or partitions the messages of real actors.
//
// A TestProbe is an actor spawned in any actor system (local or remote). Use
// its PID as the sender of a request, or hand it to the code under test,
// then assert with ExpectMsg, ExpectNoMsg and FishForMessage:
//
//	p := probe.New(sys)
//	defer p.Stop()
//	sys.Root.RequestWithCustomSender(replica.ProposerPID(), req, p.PID())
//	resp, err := probe.ExpectMsg[*messages.ClientResponse](p, 5*time.Second)
//
// An Interceptor is protoactor middleware whose rules change at run time. Put
// its SenderMiddleware (and, if wanted, ReceiverMiddleware) into
// actors.Config to control a replica's traffic: Partition and Block cut
// links between node addresses, Heal restores them, and Drop, Delay,
// Duplicate and Observe act on the messages a predicate selects. Every
// method is safe for concurrent use while messages flow.
//
// Nothing here is meant for production: with no middleware configured a
// replica takes protoactor's direct send path.
package probe
