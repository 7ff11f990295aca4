#!/usr/bin/env bash
# Measures snapshots and log truncation (§5.5) on a local 3-node cluster with
# the default snapshot policy (issue 5's figures):
#   1. WRITES (1,000,000) puts of 128 B by 256 closed-loop clients, while a
#      sampler records each node's data directory size and RSS every second;
#      throughput per 100 ms during snapshots and between them;
#   2. the restart time of a follower after that run (SIGTERM -> start ->
#      applied what the master has);
#   3. a follower wiped while down rejoins a cluster holding a ~100 MB
#      database (100,000 keys x 1 KiB): time from start to applied.
# Everything runs on 127.0.0.1 (peer ports 7101-7103, client ports
# 7201-7203) and stops by itself; only
# the processes it started are killed, by PID. Results go to $OUT.
set -euo pipefail
BIN=${BIN:-bin/livepaxos}
WRITES=${WRITES:-1000000}
OUT=${OUT:-$(mktemp -d /tmp/lp-snapbench.XXXXXX)}
DATA=$OUT/data
PEERS=1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103
# Clients use the client ports: by default each node's peer port + 100.
EPS=127.0.0.1:7201,127.0.0.1:7202,127.0.0.1:7203
mkdir -p "$DATA"
declare -A PID
SAMPLER=
cleanup() {
  trap - INT TERM EXIT
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
  for id in 1 2 3; do [ -n "${PID[$id]:-}" ] && kill -KILL "${PID[$id]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT
start() { # start node $1
  "$BIN" node --id "$1" --peers "$PEERS" --data "$DATA/n$1" --log-level info >>"$OUT/n$1.log" 2>&1 &
  PID[$1]=$!
}
ms() { date +%s%3N; }
field() { # field NAME of node $2's status --json (status prints every member: take node $2's line)
  "$BIN" status --json --endpoints "127.0.0.1:720$2" 2>/dev/null | grep "\"node_id\":$2," | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" | head -1
}
master_applied() {
  "$BIN" status --json --endpoints "$EPS" 2>/dev/null | grep '"is_master":true' | sed -n 's/.*"last_applied":\([0-9]*\).*/\1/p'
}
wait_caught_up() { # node $1 applied what the master had when it started
  local want; want=$(master_applied)
  until [ "$(field last_applied "$1")" -ge "${want:-1}" ] 2>/dev/null; do sleep 0.05; done
}
sample() {
  echo "unix_ms,node,dir_bytes,rss_kb,snapshots,segments" >"$OUT/samples.csv"
  while true; do
    for id in 1 2 3; do
      local p=${PID[$id]:-} rss=0
      [ -n "$p" ] && rss=$(awk '/VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
      echo "$(ms),$id,$(du -sb "$DATA/n$id" 2>/dev/null | cut -f1),${rss:-0},$(field snapshots $id),$(field log_segments $id)" >>"$OUT/samples.csv"
    done
    sleep 1
  done
}

for id in 1 2 3; do start $id; done
"$BIN" status --endpoints "$EPS" --wait 30s >/dev/null
sample & SAMPLER=$!

echo "== $WRITES writes of 128 B, 256 clients (results in $OUT)"
"$BIN" bench --endpoints "$EPS" --op put --clients 256 --conns 4 --keys 100000 --value-size 128 \
  --warmup 0 --seconds 3600 --total "$WRITES" --timeline "$OUT/timeline.csv" | tee "$OUT/bench.json"
sleep 2
kill "$SAMPLER"; SAMPLER=
grep -h "snapshot taken" "$OUT"/n*.log >"$OUT/snapshots.log" || true
echo "snapshots taken: $(wc -l <"$OUT/snapshots.log")"

echo "== restart time of node 2"
kill -TERM "${PID[2]}"; wait "${PID[2]}" 2>/dev/null || true
t0=$(ms); start 2
until "$BIN" status --endpoints 127.0.0.1:7202 --timeout 200ms >/dev/null 2>&1; do sleep 0.02; done
t1=$(ms); wait_caught_up 2; t2=$(ms)
echo "restart: serving after $((t1 - t0)) ms, caught up after $((t2 - t0)) ms" | tee "$OUT/restart.txt"

echo "== ~100 MB database (100,000 keys x 1 KiB), then node 3 wiped rejoins"
"$BIN" bench --endpoints "$EPS" --op put --clients 64 --conns 4 --keys 100000 --value-size 1024 \
  --warmup 0 --seconds 3600 --total 100000 --sequential >"$OUT/fill.json"
"$BIN" snapshot --endpoints "$EPS" --timeout 5m | tee "$OUT/snapshot-cli.txt"
kill -KILL "${PID[3]}"; wait "${PID[3]}" 2>/dev/null || true
rm -rf "$DATA/n3"
# Move the others' logs past what node 3 could replay.
"$BIN" bench --endpoints "$EPS" --op put --clients 16 --keys 1000 --value-size 128 --warmup 0 --seconds 2 >/dev/null
"$BIN" snapshot --endpoints 127.0.0.1:7201,127.0.0.1:7202 --timeout 5m >/dev/null
t0=$(ms); start 3
until "$BIN" status --endpoints 127.0.0.1:7203 --timeout 200ms >/dev/null 2>&1; do sleep 0.02; done
wait_caught_up 3; t1=$(ms)
echo "wiped rejoin: caught up after $((t1 - t0)) ms, installs=$(field installs 3), data dir $(du -sb "$DATA/n3" | cut -f1) bytes" | tee "$OUT/rejoin.txt"
echo "results in $OUT"
