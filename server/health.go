package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/livepaxos/livepaxos/messages"
)

// Readiness bounds. A node whose applied log trails what it knows chosen
// by more than ReadyLagMax instances is still catching up (one flagged
// catching up by status, behind for seconds, is too); one whose data
// directory's file system has less than DiskFreeMin bytes free cannot make
// its next log segment (64 MiB) and will soon stop accepting anything.
const (
	ReadyLagMax = 10_000
	DiskFreeMin = 64 << 20
)

// Check is one condition of readiness, as /readyz lists it.
type Check struct {
	Name   string
	OK     bool
	Detail string
}

// Readiness decides whether a node should get traffic, from its status
// and its data directory's free bytes (diskFree < 0: unknown, not
// checked): it is a voter or learner of the group, knows a master (or is
// one and holds its lease: a master cut off from the others loses it
// within a lease, and a follower cut off campaigns and forgets the
// master), has applied the log it knows chosen, has not diverged (§6.2),
// and has room on its disk. Plain Go on values, tested without a cluster.
func Readiness(st *messages.StatusResponse, diskFree int64) (ready bool, checks []Check) {
	add := func(name string, ok bool, detail string, args ...any) {
		checks = append(checks, Check{Name: name, OK: ok, Detail: fmt.Sprintf(detail, args...)})
	}
	role := st.Role
	if role == "" {
		role = "voter"
	}
	add("member", role == "voter" || role == "learner", "role %s", role)
	switch {
	case st.IsMaster:
		add("master", st.LeaseRemainingUs > 0, "this node is master, lease %dms left", st.LeaseRemainingUs/1000)
	case st.MasterId != 0:
		add("master", true, "master is node %d", st.MasterId)
	default:
		add("master", false, "no master known")
	}
	lag := uint64(0)
	if st.LastChosen > st.LastApplied {
		lag = st.LastChosen - st.LastApplied
	}
	stuck := ""
	if st.CatchingUp {
		stuck = ", behind for seconds"
	}
	add("caught_up", !st.CatchingUp && lag <= ReadyLagMax, "applied %d of %d chosen (lag %d, at most %d)%s",
		st.LastApplied, st.LastChosen, lag, ReadyLagMax, stuck)
	add("consistent", st.Divergence == "", "%s", orText(st.Divergence, "no divergence found"))
	if diskFree >= 0 {
		add("disk", diskFree >= DiskFreeMin, "%d MiB free (at least %d MiB)", diskFree>>20, DiskFreeMin>>20)
	}
	ready = true
	for _, c := range checks {
		ready = ready && c.OK
	}
	return ready, checks
}

func orText(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

// DiskFree is the bytes an unprivileged writer may still use on dir's
// file system, or -1 when it cannot be told.
func DiskFree(dir string) int64 {
	if dir == "" {
		return -1
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return -1
	}
	return int64(fs.Bavail) * int64(fs.Bsize)
}

// Ready reports whether this node should get traffic now, and each check.
func (s *Server) Ready() (bool, []Check) {
	return Readiness(s.replica.Status(), DiskFree(s.cfg.DataDir))
}

// HealthHandler serves /livez (200 while the process serves HTTP and its
// replica runs) and /readyz (200 when Ready, 503 otherwise), each check on
// a line of its own as etcd does ("[+]master ok: master is node 2"), for a
// load balancer or an orchestrator's probes.
func (s *Server) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/livez", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if s.isClosed() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "livez check failed: stopping")
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		ready, checks := s.Ready()
		if s.isClosed() {
			ready = false
			checks = append(checks, Check{Name: "serving", Detail: "stopping"})
		}
		var b strings.Builder
		for _, c := range checks {
			mark, verdict := "+", "ok"
			if !c.OK {
				mark, verdict = "-", "failed"
			}
			fmt.Fprintf(&b, "[%s]%s %s: %s\n", mark, c.Name, verdict, c.Detail)
		}
		if ready {
			b.WriteString("readyz check passed\n")
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
			b.WriteString("readyz check failed\n")
		}
		w.Write([]byte(b.String()))
	})
	return mux
}

// freshHealth is the gRPC health service with Check answered from Ready
// at the time of the call (a probe sees the truth, not the last tick's);
// Watch and List are the standard server's, kept current by healthLoop.
type freshHealth struct {
	*health.Server
	s *Server
}

func (h freshHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	resp, err := h.Server.Check(ctx, req) // unknown services; NOT_SERVING once shut down
	if err != nil || h.s.isClosed() {
		return resp, err
	}
	if ready, _ := h.s.Ready(); ready {
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}, nil
}

// healthLoop keeps the gRPC health service's answer (for the whole
// server, "", and for livepaxos.v1.KV) equal to Ready, checked every
// HealthEvery, until Close.
func (s *Server) healthLoop(set func(service string, st healthpb.HealthCheckResponse_ServingStatus)) {
	t := time.NewTicker(s.cfg.HealthEvery)
	defer t.Stop()
	for {
		st := healthpb.HealthCheckResponse_NOT_SERVING
		if ready, _ := s.Ready(); ready {
			st = healthpb.HealthCheckResponse_SERVING
		}
		set("", st)
		set(messages.KV_ServiceDesc.ServiceName, st)
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}
