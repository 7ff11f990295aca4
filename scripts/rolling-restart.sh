#!/usr/bin/env bash
# Rolling restart under load (issue 17's bar, BENCHMARKS.md): three nodes on
# loopback (peer ports 7501-7503, client 7511-7513, metrics 7521-7523), a
# closed-loop put load (`livepaxos bench`, CLIENTS clients, SECONDS s) while
# node 1, 2 and 3 in turn get SIGTERM, are started again, answer 200 on
# /readyz, and run for 3 s before the next. Prints bench's JSON line:
# max_gap_ms is the longest time between two successful requests, errors the
# requests that failed. Everything it starts it stops (by PID), and its data
# goes with its temporary directory.
set -euo pipefail
BIN=${1:-bin/livepaxos}
CLIENTS=${CLIENTS:-8}
SECONDS_LOAD=${SECONDS_LOAD:-30}
DIR=$(mktemp -d)
PEERS=1=127.0.0.1:7501,2=127.0.0.1:7502,3=127.0.0.1:7503
EPS=127.0.0.1:7511,127.0.0.1:7512,127.0.0.1:7513
declare -A PID
cleanup() {
  for p in "${PID[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
start() {
  "$BIN" node --id "$1" --peers "$PEERS" --data "$DIR/n$1" --client-listen "127.0.0.1:751$1" \
    --metrics "127.0.0.1:752$1" --log-level warn >>"$DIR/n$1.log" 2>&1 &
  PID[$1]=$!
}
ready() { # up to 30 s for node $1's /readyz to answer 200
  for _ in $(seq 300); do
    curl -fs -o /dev/null "http://127.0.0.1:752$1/readyz" && return 0
    sleep 0.1
  done
  echo "node $1 not ready after 30 s" >&2
  tail -20 "$DIR/n$1.log" >&2
  return 1
}
for id in 1 2 3; do start "$id"; done
for id in 1 2 3; do ready "$id"; done
"$BIN" bench --endpoints "$EPS" --clients "$CLIENTS" --seconds "$SECONDS_LOAD" --warmup 1 >"$DIR/bench.json" &
BENCH=$!
sleep 4
for id in 1 2 3; do
  kill -TERM "${PID[$id]}"
  wait "${PID[$id]}" || true
  start "$id"
  ready "$id"
  echo "node $id restarted" >&2
  sleep 3
done
wait "$BENCH"
cat "$DIR/bench.json"
