package server

import (
	"strings"
	"testing"

	"github.com/livepaxos/livepaxos/messages"
)

// Readiness fails on each condition alone, and passes when all hold.
func TestReadiness(t *testing.T) {
	ok := func() *messages.StatusResponse {
		return &messages.StatusResponse{Role: "voter", MasterId: 2, LastChosen: 100, LastApplied: 99}
	}
	for _, tc := range []struct {
		name   string
		change func(*messages.StatusResponse)
		disk   int64
		failed string // "" : ready
	}{
		{"healthy follower", func(*messages.StatusResponse) {}, 1 << 30, ""},
		{"disk unknown", func(*messages.StatusResponse) {}, -1, ""},
		{"master with a lease", func(s *messages.StatusResponse) { s.IsMaster, s.LeaseRemainingUs = true, 900_000 }, 1 << 30, ""},
		{"learner", func(s *messages.StatusResponse) { s.Role = "learner" }, 1 << 30, ""},
		{"master without a lease (cut off)", func(s *messages.StatusResponse) { s.IsMaster, s.LeaseRemainingUs = true, 0 }, 1 << 30, "master"},
		{"no master known (campaigning, cut off)", func(s *messages.StatusResponse) { s.MasterId = 0 }, 1 << 30, "master"},
		{"far behind", func(s *messages.StatusResponse) { s.LastChosen = 100 + ReadyLagMax }, 1 << 30, "caught_up"},
		{"stuck catching up", func(s *messages.StatusResponse) { s.CatchingUp = true }, 1 << 30, "caught_up"},
		{"diverged", func(s *messages.StatusResponse) { s.Divergence = "checksum differs at 7" }, 1 << 30, "consistent"},
		{"disk full", func(*messages.StatusResponse) {}, DiskFreeMin - 1, "disk"},
		{"joining", func(s *messages.StatusResponse) { s.Role = "joining" }, 1 << 30, "member"},
	} {
		st := ok()
		tc.change(st)
		ready, checks := Readiness(st, tc.disk)
		var failed []string
		for _, c := range checks {
			if !c.OK {
				failed = append(failed, c.Name)
			}
		}
		if got := strings.Join(failed, ","); got != tc.failed || ready != (tc.failed == "") {
			t.Errorf("%s: ready %v, failed %q; want failed %q", tc.name, ready, got, tc.failed)
		}
	}
}
