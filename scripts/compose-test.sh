#!/usr/bin/env bash
# The compose cluster (deploy/compose/docker-compose.yml) end to end, in
# containers: build the image, start the cluster under a project name of its
# own, put and get from the client container, stop a node, write while it is
# down, start it again into the same volume and watch it catch up, kill the
# master and write again. It always removes what it made (its project's
# containers, network and volumes, and its image tag), also when it fails or
# is interrupted, and prints how long each step took.
#
#   scripts/compose-test.sh            # exit 0: passed; 1: failed; 3: no docker
#
# It builds its own static binary (make image); $LIVEPAXOS_BIN is not used:
# that binary is the host's, not necessarily static.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMPOSE_FILE=$ROOT/deploy/compose/docker-compose.yml
# A project name and image tag of this run's own: what it removes at the end
# is exactly what it made.
PROJECT=${LIVEPAXOS_COMPOSE_PROJECT:-lpct-$$-$(date +%s)}
IMAGE=livepaxos:$PROJECT
export LIVEPAXOS_IMAGE=$IMAGE
# Port 0: Docker picks free host ports, so a run never collides with a
# cluster already on 127.0.0.1:7101-7103 (make run, another test).
export LIVEPAXOS_N1_PORT=0 LIVEPAXOS_N2_PORT=0 LIVEPAXOS_N3_PORT=0
export LIVEPAXOS_LOG_LEVEL=info
# How long any one wait may take before the run fails.
DEADLINE_S=${LIVEPAXOS_COMPOSE_DEADLINE:-45}

T0=$EPOCHREALTIME
TIMINGS=()
STEP_NAME=""
STEP_T=$T0

now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
log() { echo "compose-test [$(secs "$T0" "$(now)")s] $*"; }
step() {
  local t; t=$(now)
  if [[ -n $STEP_NAME ]]; then TIMINGS+=("$(printf '%-44s %6ss' "$STEP_NAME" "$(secs "$STEP_T" "$t")")"); fi
  STEP_NAME=$1 STEP_T=$t
  [[ -n $1 ]] && log "$1"
  return 0
}
fail() { log "FAIL: $*"; exit 1; }

for cmd in docker docker-compose; do
  command -v "$cmd" >/dev/null || { echo "compose-test: $cmd is not installed" >&2; exit 3; }
done
docker info >/dev/null 2>&1 || { echo "compose-test: the Docker daemon is unreachable (docker info failed)" >&2; exit 3; }

dc() { docker-compose --ansi never -f "$COMPOSE_FILE" -p "$PROJECT" "$@"; }
# client runs a livepaxos client command in the client container; its
# entrypoint names the endpoints n1-n3 and the client certificate.
client() { dc run --rm -T client "$@"; }

BUILT=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  step "teardown (down -v, image tag)"
  if ((rc != 0)); then
    log "--- failed (exit $rc); containers and recent logs of project $PROJECT:"
    dc ps -a 2>&1 || true
    dc logs --no-color --tail=30 2>&1 | tail -120 || true
  fi
  dc down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || dc down -v --remove-orphans --timeout 5 || rc=1
  if ((BUILT)); then docker image rm "$IMAGE" >/dev/null || rc=1; fi
  local label=label=com.docker.compose.project=$PROJECT left
  left=$( (docker ps -aq --filter "$label"; docker volume ls -q --filter "$label"; docker network ls -q --filter "$label") | tr '\n' ' ')
  if [[ -n ${left// /} ]]; then
    log "FAIL: project $PROJECT left behind: $left"
    rc=1
  fi
  step ""
  echo "compose-test timings (project $PROJECT):"
  printf '  %s\n' "${TIMINGS[@]}"
  printf '  %-44s %6ss\n' "total" "$(secs "$T0" "$(now)")"
  if ((rc == 0)); then log "PASS"; else log "FAIL (exit $rc)"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# json_field NAME: the number or string NAME in one `status --json` line.
json_field() { grep -o "\"$1\":\(\"[^\"]*\"\|[a-z0-9]*\)" | head -1 | cut -d: -f2- | tr -d '"'; }

# poll DESCRIPTION COMMAND...: run COMMAND until it succeeds or the deadline
# passes.
poll() {
  local what=$1 end=$((SECONDS + DEADLINE_S))
  shift
  until "$@"; do
    ((SECONDS < end)) || fail "$what: not within ${DEADLINE_S}s"
  done
}

step "make image ($IMAGE)"
BUILT=1
make -s -C "$ROOT" image IMAGE="$IMAGE" >/dev/null
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$IMAGE"

step "up -d (certs, n1, n2, n3)"
dc up -d

step "first master accepts writes (status --wait)"
poll "a master accepting writes" client status --wait 10s

step "put, then get, from the client container"
value="hello from $PROJECT"
client put greeting "$value"
got=$(client get greeting)
[[ $got == "$value" ]] || fail "get greeting: got \"$got\", want \"$value\""
log "get greeting: $got"

# max_applied: the furthest any reachable node has applied.
max_applied() {
  local row a max=0
  while read -r row; do
    a=$(json_field last_applied <<<"$row")
    ((${a:-0} > max)) && max=$a
  done < <(client status --json 2>/dev/null || true)
  echo "$max"
}

step "stop n2; writes while it is down"
n2=$(dc ps -q n2)
dc stop -t 10 n2
[[ $(docker inspect -f '{{.State.Running}}' "$n2") == false ]] || fail "n2 still running after stop"
client bench --op put --total 300 --clients 4 --keys 50 --warmup 0 --seconds 30 >/dev/null
down_value="written while n2 was down"
client put while-n2-down "$down_value"
target=$(max_applied)
log "the others applied up to $target with n2 down"

step "start n2; it catches up from its own volume"
dc start n2
[[ $(dc ps -q n2) == "$n2" ]] || fail "n2 is a new container, not the stopped one"
mounts=$(docker inspect -f '{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}' "$n2")
[[ $mounts == *"${PROJECT}_n2-data:/data"* ]] || fail "n2's /data is not volume ${PROJECT}_n2-data: $mounts"
n2_caught_up() {
  local row applied
  row=$(client status --json --endpoints=n2:7101 2>/dev/null) || return 1
  applied=$(json_field last_applied <<<"$row")
  [[ -n $applied ]] && ((applied >= target))
}
poll "n2 applying instance $target" n2_caught_up
# The restarted node started from its data directory, not an empty one.
started=$(dc logs --no-color n2 | grep 'msg="node started"' | tail -1)
restart_applied=$(grep -o 'applied=[0-9]*' <<<"$started" | cut -d= -f2)
[[ -n $restart_applied ]] && ((restart_applied > 0)) ||
  fail "n2 did not restart from its volume (last 'node started': $started)"
# ...and it had missed the writes made while it was down (the master batches
# concurrent writes, so there are fewer instances than writes, but some).
((restart_applied < target)) || fail "n2 restarted at applied=$restart_applied, missing nothing of $target"
log "n2 restarted at applied=$restart_applied (its volume), caught up to $target"
got=$(client get --consistency stale --endpoints=n2:7101 while-n2-down)
[[ $got == "$down_value" ]] || fail "stale read at n2: got \"$got\", want \"$down_value\""

step "kill the master; a write still succeeds"
master=""
find_master() {
  master=$(client status --json 2>/dev/null | grep '"is_master":true' | json_field endpoint | cut -d: -f1)
  [[ -n $master ]]
}
poll "a master in status" find_master
master_id=$(dc ps -q "$master")
dc kill -s SIGKILL "$master"
[[ $(docker inspect -f '{{.State.Running}}' "$master_id") == false ]] || fail "$master still running after kill"
log "killed $master (the master); writing through the other two"
t_kill=$(now)
after_value="written after $master was killed"
poll "a write after killing $master" client put after-kill "$after_value"
log "write acknowledged $(secs "$t_kill" "$(now)")s after the kill"
got=$(client get after-kill)
[[ $got == "$after_value" ]] || fail "get after-kill: got \"$got\", want \"$after_value\""
[[ $(docker inspect -f '{{.State.Running}}' "$master_id") == false ]] ||
  fail "$master was running again during the write; the test proves nothing"
