package sim

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// linearizabilityTimeout bounds the search for one key's history. The
// histories the simulator makes take milliseconds; hitting this bound is
// reported (ErrLinearizabilityUnknown) rather than passed.
const linearizabilityTimeout = 30 * time.Second

// maxHistoryLines bounds the history excerpt printed with a failure.
const maxHistoryLines = 80

// kvState is the model's state for one key.
type kvState struct {
	present bool
	value   string
}

// kvModel is the sequential specification of one key of the database, for
// porcupine. An operation whose outcome is unknown (a write whose answer
// was lost) has a nil output and an open end: it may take effect at any
// point after its call, or never.
var kvModel = porcupine.Model{
	Init: func() any { return kvState{} },
	Step: func(state, input, output any) (bool, any) {
		st := state.(kvState)
		o := input.(*op)
		known := output != nil
		switch o.kind {
		case opGet:
			return st.present == o.found && (!o.found || st.value == o.got), st
		case opPut:
			if known && o.found != st.present {
				return false, st
			}
			return true, kvState{present: true, value: o.value}
		case opDelete:
			if known && o.found != st.present {
				return false, st
			}
			return true, kvState{}
		case opCAS:
			holds := !st.present
			if o.oldPresent {
				holds = st.present && st.value == o.old
			}
			if known {
				if o.succeeded != holds {
					return false, st
				}
				if !holds && (o.found != st.present || (o.found && o.got != st.value)) {
					return false, st
				}
			}
			if holds {
				return true, kvState{present: true, value: o.value}
			}
			return true, st
		}
		panic("sim: unknown op kind")
	},
	DescribeOperation: func(input, output any) string { return input.(*op).String() },
	DescribeState: func(state any) string {
		st := state.(kvState)
		if !st.present {
			return "<absent>"
		}
		return st.value
	},
}

// checkLinearizable checks the client history key by key (a history is
// linearizable iff each key's is, since every operation touches one key).
// Reads still pending are left out: they returned nothing.
//
// A write whose outcome the client never learned is bounded with what the
// simulator saw: if no replica ever applied it, it never took effect and
// is left out; otherwise it took effect at the latest when the node whose
// ballot chose it applied it (checker.effectBound), which becomes its
// return time; if that node never did (it crashed first), the write stays
// open-ended. The bounds are sound in a correct system, so they cause no
// false alarms, and they keep the search small: open-ended writes are what
// makes linearizability checking explode.
func checkLinearizable(history []*op, keys int) error {
	byKey := make([][]porcupine.Operation, keys)
	for _, o := range history {
		if o.status == opPending && o.kind == opGet {
			continue
		}
		po := porcupine.Operation{ClientId: o.client, Input: o, Call: o.call, Return: math.MaxInt64}
		switch {
		case o.status == opOK:
			po.Output, po.Return = o, o.ret
		case o.instance == 0:
			continue // never applied anywhere: no effect
		default:
			if o.appliedAt != 0 {
				po.Return = max(o.call, o.appliedAt)
			}
		}
		byKey[o.keyIdx] = append(byKey[o.keyIdx], po)
	}
	for k, ops := range byKey {
		switch porcupine.CheckOperationsTimeout(kvModel, ops, linearizabilityTimeout) {
		case porcupine.Illegal:
			return fmt.Errorf("%w: %w: key k%d has no linearization; its history:\n%s",
				ErrSafety, ErrNotLinearizable, k, excerpt(ops))
		case porcupine.Unknown:
			return fmt.Errorf("%w: %w: key k%d (%d operations)", ErrSafety, ErrLinearizabilityUnknown, k, len(ops))
		}
	}
	return nil
}

func excerpt(ops []porcupine.Operation) string {
	var b strings.Builder
	for i, po := range ops {
		if i == maxHistoryLines {
			fmt.Fprintf(&b, "  ... %d more\n", len(ops)-i)
			break
		}
		fmt.Fprintf(&b, "  %v\n", po.Input) // an *op or a *lockOp
	}
	return b.String()
}
