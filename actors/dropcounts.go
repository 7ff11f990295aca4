package actors

import (
	"sync"

	"github.com/livepaxos/livepaxos/core"
)

// dropCounts counts messages a device actor dropped, by reason, for the
// status the replica publishes (beside the core's own drops).
type dropCounts struct {
	mu sync.Mutex
	by map[core.DropReason]uint64
}

func (d *dropCounts) add(why core.DropReason) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.by == nil {
		d.by = make(map[core.DropReason]uint64)
	}
	d.by[why]++
}

// addTo adds the counts into *into, making it if needed.
func (d *dropCounts) addTo(into *map[string]uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for why, n := range d.by {
		if *into == nil {
			*into = make(map[string]uint64)
		}
		(*into)[string(why)] += n
	}
}
