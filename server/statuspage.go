package server

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/livepaxos/livepaxos/actors"
	"github.com/livepaxos/livepaxos/messages"
)

//go:embed statuspage.html
var statusPageHTML []byte

// GroupNode is one member on the status page, as that member said of
// itself (Reachable false: it did not answer within a second).
type GroupNode struct {
	ID              uint32  `json:"id"`
	Role            string  `json:"role"`
	Address         string  `json:"address"`
	ClientAddress   string  `json:"client_address"`
	Reachable       bool    `json:"reachable"`
	IsMaster        bool    `json:"is_master"`
	MasterID        uint32  `json:"master_id"`
	Epoch           uint64  `json:"epoch"`
	LeaseMS         float64 `json:"lease_ms"`
	Chosen          uint64  `json:"chosen"`
	Applied         uint64  `json:"applied"`
	Lag             uint64  `json:"lag"`
	Snapshot        uint64  `json:"snapshot_instance"`
	CheckedInstance uint64  `json:"checked_instance"`
	Checks          uint64  `json:"checks"`
	Divergence      string  `json:"divergence,omitempty"`
	CatchingUp      bool    `json:"catching_up"`
}

// GroupStatus is the status page's data (/status.json): the group as the
// serving node sees it, each member asked over the peer transport.
type GroupStatus struct {
	Node     uint32      `json:"node"`
	Time     string      `json:"time"`
	MasterID uint32      `json:"master_id"`
	Epoch    uint64      `json:"epoch"`
	Members  []GroupNode `json:"members"`
	// MasterChanges: how often this node saw the master change since it
	// started (fail-overs and handovers), and when last.
	MasterChanges     uint64 `json:"master_changes"`
	LastChange        string `json:"last_master_change,omitempty"`
	Version           uint64 `json:"membership_version"`
	VotersUp          int    `json:"voters_up"`
	Voters            int    `json:"voters"`
	FailuresTolerated int    `json:"failures_tolerated"`
}

// masterWatch counts the master changes this node saw (healthLoop).
type masterWatch struct {
	mu      sync.Mutex
	master  uint32
	changes uint64
	last    time.Time
}

func (w *masterWatch) see(master uint32, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if master != 0 && master != w.master {
		if w.master != 0 {
			w.changes++
			w.last = now
		}
		w.master = master
	}
}

// StatusPageHandler serves the status page: /status, a page that reloads
// its data every second and fits a phone, and /status.json, the group at
// a glance (GroupStatus).
func (s *Server) StatusPageHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(statusPageHTML)
	})
	mux.HandleFunc("/status.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(s.GroupStatus())
	})
	return mux
}

// GroupStatus asks every member for its status at once (over the peer
// transport, a second at most) and puts the answers together.
func (s *Server) GroupStatus() *GroupStatus {
	self := s.replica.Status()
	g := &GroupStatus{Node: self.NodeId, Time: time.Now().UTC().Format(time.RFC3339), Version: self.MembershipVersion}
	members := self.Members
	nodes := make([]GroupNode, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		nodes[i] = GroupNode{ID: m.Id, Role: m.Role, Address: m.Address, ClientAddress: m.ClientAddress}
		if nodes[i].Role == "" {
			nodes[i].Role = "voter"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := self
			if m.Id != self.NodeId {
				st = s.peerStatus(m.Id)
			}
			if st != nil {
				fill(&nodes[i], st)
			}
		}()
	}
	wg.Wait()
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	g.Members = nodes
	for _, n := range nodes {
		if n.IsMaster {
			g.MasterID, g.Epoch = n.ID, n.Epoch
		}
		if n.Role == "voter" {
			g.Voters++
			if n.Reachable {
				g.VotersUp++
			}
		}
	}
	if g.MasterID == 0 {
		g.MasterID, g.Epoch = self.MasterId, self.Epoch
	}
	g.FailuresTolerated = max(0, g.VotersUp-(g.Voters/2+1))
	s.masters.mu.Lock()
	g.MasterChanges = s.masters.changes
	if !s.masters.last.IsZero() {
		g.LastChange = s.masters.last.UTC().Format(time.RFC3339)
	}
	s.masters.mu.Unlock()
	return g
}

// peerStatus asks member id's core for its status, or nil.
func (s *Server) peerStatus(id uint32) *messages.StatusResponse {
	pid := s.replica.RolePID(id, actors.CoreName)
	if pid == nil {
		return nil
	}
	res, err := s.cfg.System.Root.RequestFuture(pid, &messages.StatusRequest{}, time.Second).Result()
	if err != nil {
		return nil
	}
	st, _ := res.(*messages.StatusResponse)
	return st
}

func fill(n *GroupNode, st *messages.StatusResponse) {
	n.Reachable, n.IsMaster, n.MasterID, n.Epoch = true, st.IsMaster, st.MasterId, st.Epoch
	n.LeaseMS = float64(st.LeaseRemainingUs) / 1000
	n.Chosen, n.Applied = st.LastChosen, st.LastApplied
	if st.LastChosen > st.LastApplied {
		n.Lag = st.LastChosen - st.LastApplied
	}
	n.Snapshot, n.CheckedInstance, n.Checks, n.Divergence, n.CatchingUp = st.SnapshotInstance, st.CheckedInstance, st.Checks, st.Divergence, st.CatchingUp
	if st.Role != "" {
		n.Role = st.Role
	}
}
