package sim

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
	"github.com/livepaxos/livepaxos/paxos"
)

// The trace is one line per step, written only when Config.Trace is set
// (formatting every step costs more than running it). Its lines depend on
// nothing but the seed, so two runs' traces can be compared byte for byte.

// tracef writes one trace line stamped with simulated time and step.
// Callers whose arguments cost something to build check s.trace first.
func (s *Simulator) tracef(format string, args ...any) {
	if s.trace == nil {
		return
	}
	fmt.Fprintf(s.trace, "%11.6fs %7d  %s\n", float64(s.sched.now)/1e9, s.steps, fmt.Sprintf(format, args...))
}

func timeDuration(d int64) time.Duration { return time.Duration(d) }

func endpointName(id uint32) string {
	if id >= clientBase {
		return fmt.Sprintf("c%d", id-clientBase)
	}
	return fmt.Sprintf("n%d", id)
}

// fmtBallot prints a ballot as round.owner.
func fmtBallot(b uint64) string {
	return fmt.Sprintf("%d.%d", b/paxos.BallotStride, paxos.BallotOwner(b))
}

// describeValue prints a value by its commands' request ids.
func describeValue(v *messages.Value) string {
	if v.GetStartsEpoch() {
		return fmt.Sprintf("epoch-start(n%d)", v.EpochMaster)
	}
	if v.GetNoop() {
		return "noop"
	}
	var b strings.Builder
	b.WriteString("[")
	for i, c := range v.GetCommands() {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "n%d/r%d/e%d", c.Origin, c.RequestId, c.Epoch)
	}
	b.WriteString("]")
	return b.String()
}

// describeKey prints a value from its checker identity.
func describeKey(k string) string {
	v := &messages.Value{}
	if err := proto.Unmarshal([]byte(k), v); err != nil {
		return "<undecodable>"
	}
	return describeValue(v)
}

func describeEntries(es []*messages.Entry) string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%d@%s=%s", e.Instance, fmtBallot(e.Ballot), describeValue(e.Value))
	}
	return b.String()
}

// describe prints one message compactly.
func describe(msg any) string {
	switch m := msg.(type) {
	case *messages.Prepare:
		return fmt.Sprintf("Prepare{b=%s first=%d}", fmtBallot(m.Ballot), m.FirstInstance)
	case *messages.Promise:
		return fmt.Sprintf("Promise{b=%s ok=%v promised=%s chosen=%d accepted=[%s]}", fmtBallot(m.Ballot), m.Ok,
			fmtBallot(m.Promised), m.ChosenUpto, describeEntries(m.Accepted))
	case *messages.Accept:
		return fmt.Sprintf("Accept{b=%s chosen=%d [%s]}", fmtBallot(m.Ballot), m.ChosenUpto, describeEntries(m.Entries))
	case *messages.Accepted:
		return fmt.Sprintf("Accepted{b=%s ok=%v promised=%s %v}", fmtBallot(m.Ballot), m.Ok, fmtBallot(m.Promised), m.Instances)
	case *messages.Chosen:
		return fmt.Sprintf("Chosen{b=%s upto=%d}", fmtBallot(m.Ballot), m.ChosenUpto)
	case *messages.Heartbeat:
		return fmt.Sprintf("Heartbeat{b=%s chosen=%d resigned=%v}", fmtBallot(m.Ballot), m.ChosenUpto, m.Resigned)
	case *messages.PreVote:
		return fmt.Sprintf("PreVote{b=%s}", fmtBallot(m.Ballot))
	case *messages.PreVoted:
		return fmt.Sprintf("PreVoted{b=%s ok=%v highest=%s master=%d}", fmtBallot(m.Ballot), m.Ok, fmtBallot(m.Highest), m.MasterId)
	case *messages.CatchupRequest:
		return fmt.Sprintf("CatchupRequest{first=%d max=%d}", m.FirstInstance, m.MaxEntries)
	case *messages.CatchupResponse:
		if m.SnapshotInstance > 0 {
			return fmt.Sprintf("CatchupResponse{chosen=%d snapshot=%d}", m.ChosenUpto, m.SnapshotInstance)
		}
		return fmt.Sprintf("CatchupResponse{chosen=%d [%s]}", m.ChosenUpto, describeEntries(m.Entries))
	case *snapshotFetch:
		return fmt.Sprintf("SnapshotFetch{%d from %d}", m.instance, m.offset)
	case *snapshotChunk:
		return fmt.Sprintf("SnapshotChunk{%d at %d, %d bytes, done=%v}", m.instance, m.offset, len(m.data), m.done)
	case *messages.ClientResponse:
		return fmt.Sprintf("ClientResponse{r%d %s master=%d instance=%d}", m.RequestId, m.Code, m.MasterId, m.Instance)
	case *clientRequest:
		return fmt.Sprintf("ClientRequest{r%d}", m.reqID)
	case *deadLetter:
		return fmt.Sprintf("DeadLetter{r%d}", m.reqID)
	}
	return fmt.Sprintf("%T", msg)
}
