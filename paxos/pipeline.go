package paxos

import (
	"sort"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// Phase 2 and the pipeline (§4): client commands queued, batched into
// instances, a bounded window of them in flight, thrifty accepts to a
// majority, acknowledgements counted, retransmission; and the checksum
// values of runtime consistency checks (§6.2).

// NeedsFlush reports whether Flush has work: queued commands and a free
// slot, or a Chosen notice to send. The shell batches by calling Flush once
// its mailbox has drained what arrived meanwhile.
func (p *Proposer) NeedsFlush() bool {
	if p.state != stateMaster {
		return false
	}
	return p.noticeDirty || (len(p.queue) > 0 && len(p.inflight) < p.cfg.MaxInflight && p.proposing()) ||
		(p.pendingChange != nil && len(p.inflight) == 0 && p.proposing())
}

// proposing reports whether the master may put new values in flight: not
// during a boost's phase 1, not past a membership value still in flight,
// and not before its epoch has started.
func (p *Proposer) proposing() bool {
	return p.state == stateMaster && !p.boosting && p.changeAt == 0 && !p.epochPending && p.reprepareFrom == 0 &&
		p.handover == nil
}

// Submit queues a client command. Outside mastership, or when the queue is
// full, the command is refused at once and nothing is proposed.
func (p *Proposer) Submit(cmd *messages.Command) ProposerOutput {
	var out ProposerOutput
	switch {
	case p.state != stateMaster:
		out.Replies = append(out.Replies, Reply{Cmd: cmd, Response: &messages.ClientResponse{
			RequestId: cmd.RequestId, Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER,
			Error: "not master", MasterId: p.masterID}})
	case p.handover != nil:
		out.Replies = append(out.Replies, Reply{Cmd: cmd, Response: &messages.ClientResponse{
			RequestId: cmd.RequestId, Code: messages.ErrorCode_ERROR_CODE_NOT_MASTER,
			Error: "master handing mastership over", MasterId: p.handover.to}})
	case len(p.queue) >= p.cfg.MaxQueue || (len(p.queue) > 0 && p.queueBytes+len(cmd.Payload) > p.cfg.MaxQueueBytes):
		out.Replies = append(out.Replies, Reply{Cmd: cmd, Response: &messages.ClientResponse{
			RequestId: cmd.RequestId, Code: messages.ErrorCode_ERROR_CODE_OVERLOADED,
			Error: "proposal queue full", MasterId: p.cfg.ID}})
	case cmd.Membership:
		p.submitChange(&out, cmd)
	default:
		p.queue = append(p.queue, cmd)
		p.queueBytes += len(cmd.Payload)
	}
	return out
}

// Flush proposes queued commands into free pipeline slots, one batch per
// instance, and sends a Chosen notice if the chosen prefix moved.
func (p *Proposer) Flush(now time.Time) ProposerOutput {
	var out ProposerOutput
	if p.state != stateMaster {
		return out
	}
	var fresh []*messages.Entry
	if p.pendingChange != nil && len(p.inflight) == 0 && p.proposing() {
		fresh = append(fresh, p.proposeChange(now))
	}
	for len(p.queue) > 0 && len(p.inflight) < p.cfg.MaxInflight && p.proposing() && p.pendingChange == nil {
		n, bytes := 0, 0
		for n < len(p.queue) && n < p.cfg.MaxBatchCommands {
			sz := len(p.queue[n].Payload)
			if n > 0 && bytes+sz > p.cfg.MaxBatchBytes {
				break
			}
			bytes += sz
			n++
		}
		batch := make([]*messages.Command, n)
		copy(batch, p.queue[:n])
		for _, cmd := range batch {
			cmd.Epoch = p.epoch
		}
		clear(p.queue[:n])
		p.queue = p.queue[n:]
		p.queueBytes -= bytes
		fresh = append(fresh, p.newInstance(&messages.Value{Commands: batch}, now))
	}
	if len(p.queue) == 0 {
		p.queue = nil // let the drained backing array go
	}
	if len(fresh) > 0 {
		p.broadcastAccept(&out, fresh, p.durableVoters(), now)
	}
	if p.noticeDirty {
		p.noticeDirty = false
		p.broadcast(&out, func() proto.Message {
			return &messages.Chosen{From: p.cfg.ID, Ballot: p.ballot, ChosenUpto: p.noticeUpto}
		})
	}
	return out
}

// newInstance puts v in flight at the next instance.
func (p *Proposer) newInstance(v *messages.Value, now time.Time) *messages.Entry {
	e := &messages.Entry{Instance: p.nextInstance, Ballot: p.ballot, Value: v}
	p.watchChange(e)
	p.nextInstance++
	p.inflight[e.Instance] = &inflight{entry: e, acks: make(map[uint32]bool), sentAt: now, proposedAt: now}
	p.stats.Proposed++
	return e
}

// RequestCheck has the master put a checksum value in the log at its next
// tick (§6.2). It returns false when this proposer is not master.
func (p *Proposer) RequestCheck() bool {
	if p.state != stateMaster {
		return false
	}
	p.checkAsked = true
	return true
}

// maybeCheck proposes a checksum value every CheckInterval, or when asked:
// every replica that applies it checksums its state there (§6.2).
func (p *Proposer) maybeCheck(out *ProposerOutput, now time.Time) {
	due := p.checkAsked || (p.cfg.CheckInterval > 0 && now.Sub(p.checkAt) >= p.cfg.CheckInterval)
	if !due || !p.proposing() || p.pendingChange != nil || len(p.inflight) >= p.cfg.MaxInflight || p.applied < p.epoch {
		return
	}
	if p.checkAt.IsZero() && !p.checkAsked {
		p.checkAt = now // the first one an interval into the mastership
		return
	}
	p.checkAsked, p.checkAt = false, now
	e := p.newInstance(&messages.Value{Noop: true, Checksum: true}, now)
	out.Checks = append(out.Checks, e.Instance)
	p.broadcastAccept(out, []*messages.Entry{e}, p.durableVoters(), now)
}
func (p *Proposer) onAccepted(out *ProposerOutput, m *messages.Accepted, now time.Time) {
	p.seen(m.Promised)
	p.seen(m.Seen)
	p.noteIncarnation(m.From, m.Incarnation, m.Ok, m.Fresh, m.Ballot)
	if !m.Ok {
		if m.Promised > max(p.ballot, p.boostBallot) && p.state == stateMaster ||
			p.state == stateMaster && p.replaced[m.From] != 0 && p.stuckBelowTruncation() {
			p.stepDown(out, now)
			p.resetElection(now)
		}
		return
	}
	if p.state != stateMaster || m.Ballot != p.ballot || !p.counts(m.From, m.Incarnation) {
		return
	}
	p.lastAck[m.From] = now
	if m.Seq > p.leaseAck[m.From] && m.Seq <= p.seq {
		p.leaseAck[m.From] = m.Seq
	}
	if m.Seq > p.confirmAck[m.From] && m.Seq <= p.seq {
		p.confirmAck[m.From] = m.Seq
		defer p.releaseReads(out, now)
	}
	p.heard(m.From, m.Seq)
	if m.Truncated > p.truncatedAt[m.From] {
		p.truncatedAt[m.From] = m.Truncated
		if p.stuckBelowTruncation() {
			p.stepDown(out, now)
			p.resetElection(now)
			return
		}
	}
	moved := false
	for _, i := range m.Instances {
		f := p.inflight[i]
		if f == nil {
			continue // already chosen: a duplicate
		}
		f.acks[m.From] = true
		if len(f.acks) >= p.quorum() {
			delete(p.inflight, i)
			moved = true
			out.Committed = append(out.Committed, now.Sub(f.proposedAt))
		}
	}
	if moved {
		// Every instance below the lowest one still in flight is chosen.
		upto := p.nextInstance - 1
		for i := range p.inflight {
			upto = min(upto, i-1)
		}
		if upto > p.noticeUpto {
			p.noticeUpto = upto
			p.noticeDirty = true
		}
		p.chosenUpto = max(p.chosenUpto, upto)
		if p.changeAt != 0 && len(p.inflight) == 0 {
			p.changeChosen(out, now)
		}
	}
}

// retransmit resends accepts that have waited too long to the peers that
// have not acknowledged them, one message per peer.
func (p *Proposer) retransmit(out *ProposerOutput, now time.Time) {
	var late []*inflight
	for _, f := range p.inflight {
		if now.Sub(f.sentAt) >= p.cfg.RetransmitInterval {
			late = append(late, f)
		}
	}
	if len(late) == 0 {
		return
	}
	sort.Slice(late, func(i, j int) bool { return late[i].entry.Instance < late[j].entry.Instance })
	seq := p.nextSeq(now)
	p.lastSendAt = now
	for _, peer := range p.voters {
		var es []*messages.Entry
		for _, f := range late {
			if !f.acks[peer] {
				es = append(es, f.entry)
			}
		}
		for _, chunk := range p.acceptChunks(es) {
			out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Accept{
				From: p.cfg.ID, Ballot: p.ballot, Entries: chunk, ChosenUpto: p.chosenUpto, Seq: seq, ToIncarnation: p.toIncarnation(peer)}})
		}
	}
	for _, f := range late {
		f.sentAt = now
	}
}

// broadcastAccept sends entries to every voter. Voters outside durable
// (when it is not nil) get a lazy Accept: they store the entries but neither
// fsync nor answer, so that only a majority's fsyncs compete for the disk.
func (p *Proposer) broadcastAccept(out *ProposerOutput, entries []*messages.Entry, durable map[uint32]bool, now time.Time) {
	seq := p.nextSeq(now)
	p.lastSendAt = now
	for _, chunk := range p.acceptChunks(entries) {
		for _, peer := range p.voters {
			out.Messages = append(out.Messages, Envelope{To: peer, Msg: &messages.Accept{
				From: p.cfg.ID, Ballot: p.ballot, Entries: chunk, ChosenUpto: p.chosenUpto,
				Lazy: durable != nil && !durable[peer], Seq: seq, ToIncarnation: p.toIncarnation(peer)}})
		}
		for _, l := range p.learners { // they store the log; nobody counts them
			out.Messages = append(out.Messages, Envelope{To: l, Msg: &messages.Accept{
				From: p.cfg.ID, Ballot: p.ballot, Entries: chunk, ChosenUpto: p.chosenUpto, Lazy: true, Seq: seq, ToIncarnation: p.toIncarnation(l)}})
		}
	}
}

// DefaultMaxAcceptBytes is the default byte budget of the entries one
// Accept carries (ProposerConfig.MaxAcceptBytes). A new master re-proposes
// everything its promises reported in one go (up to a whole untruncated
// log), and a retransmission resends every late instance: in one Accept
// either could outgrow the peer transport's message limit
// (cluster.DefaultMaxMessageBytes, 64 MiB) and never arrive. An Accept
// always carries at least one entry, so it is at most the budget or one
// entry, whichever is larger.
const DefaultMaxAcceptBytes = 4 << 20

// acceptChunks splits entries, in order, into runs of at most
// MaxAcceptBytes each (a run holds one entry at least). The Accepts of one
// send share its seq: an acknowledgement of any of them shows the
// acceptor received one after the send began, which is all the lease and
// read confirmations take from it.
func (p *Proposer) acceptChunks(entries []*messages.Entry) [][]*messages.Entry {
	var chunks [][]*messages.Entry
	start, bytes := 0, 0
	for i, e := range entries {
		sz := proto.Size(e)
		if i > start && bytes+sz > p.cfg.MaxAcceptBytes {
			chunks = append(chunks, entries[start:i:i])
			start, bytes = i, 0
		}
		bytes += sz
	}
	if start < len(entries) {
		chunks = append(chunks, entries[start:len(entries):len(entries)])
	}
	return chunks
}

// durableVoters picks the voters asked to accept durably: this node, and
// the followers that acknowledged most recently, as many as make a
// majority. Until enough followers have answered, it returns nil: everyone.
// A chosen follower that stops answering costs one retransmission interval
// (retransmissions go to every voter that has not acknowledged, durably);
// then it has acknowledged less recently than the one that answered the
// retransmission, and is passed over.
func (p *Proposer) durableVoters() map[uint32]bool {
	var followers []uint32
	for _, peer := range p.voters {
		if _, ok := p.lastAck[peer]; ok && peer != p.cfg.ID && !p.leaving(peer, p.lastNow) {
			followers = append(followers, peer)
		}
	}
	need := p.quorum() - 1
	if len(followers) < need || len(followers) == len(p.voters)-1 && need == len(followers) {
		return nil // nobody to spare
	}
	sort.Slice(followers, func(i, j int) bool {
		a, b := p.lastAck[followers[i]], p.lastAck[followers[j]]
		if !a.Equal(b) {
			return a.After(b)
		}
		return followers[i] < followers[j]
	})
	durable := map[uint32]bool{p.cfg.ID: true}
	for _, f := range followers[:need] {
		durable[f] = true
	}
	return durable
}

// broadcast sends a fresh message from mk to every voter and learner. Each peer gets
// its own message so a shell may hand them to different transports.
func (p *Proposer) broadcast(out *ProposerOutput, mk func() proto.Message) {
	for _, peer := range p.voters {
		out.Messages = append(out.Messages, Envelope{To: peer, Msg: mk()})
	}
	for _, l := range p.learners {
		out.Messages = append(out.Messages, Envelope{To: l, Msg: mk()})
	}
}
