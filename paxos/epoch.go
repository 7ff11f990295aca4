package paxos

import "github.com/livepaxos/livepaxos/messages"

// EpochTracker follows the epoch through the applied log (§5.3). A new
// master's first value starts an epoch, numbered by its instance; every
// command carries the epoch of the master that proposed it, and applies
// only if that epoch is still the current one when its instance is applied.
// So a command whose master lost mastership while handling it, and perhaps
// regained it, is refused by every replica alike: the paper's re-installed
// master anomaly.
//
// Every replica runs one over the same log, so all reach the same verdicts.
type EpochTracker struct {
	epoch   uint64
	master  uint32
	planted PlantedBug
}

// Plant switches a known bug on in this tracker (tests only: see
// PlantedBug).
func (t *EpochTracker) Plant(bug PlantedBug) { t.planted = bug }

// Epoch returns the current epoch and its master (0, 0 before the first).
func (t *EpochTracker) Epoch() (epoch uint64, master uint32) { return t.epoch, t.master }

// Enter moves the tracker to entry e, which is being applied. It reports
// whether e started a new epoch.
func (t *EpochTracker) Enter(e *messages.Entry) bool {
	if !e.GetValue().GetStartsEpoch() {
		return false
	}
	t.epoch, t.master = e.Instance, e.Value.EpochMaster
	return true
}

// Admits reports whether cmd, part of the entry last entered, may apply.
func (t *EpochTracker) Admits(cmd *messages.Command) bool {
	return cmd.Epoch == 0 || cmd.Epoch == t.epoch || t.planted == BugIgnoreEpoch
}

// MasterChanged is the answer to a command the epoch refused.
func MasterChanged(cmd *messages.Command, instance uint64) *messages.ClientResponse {
	return &messages.ClientResponse{RequestId: cmd.RequestId, Code: messages.ErrorCode_ERROR_CODE_MASTER_CHANGED,
		Error: "the master's epoch ended before the command applied: not applied", Instance: instance}
}

// Reset puts the tracker at epoch, started by master: where a snapshot
// restored from left the log.
func (t *EpochTracker) Reset(epoch uint64, master uint32) { t.epoch, t.master = epoch, master }
