#!/usr/bin/env bash
# Measures livepaxos with 3 and with 5 nodes in one run, in peerbench's shape
# (../shared/peerbench runs 3-node clusters only): put 128 B by 256 clients
# and lease get 128 B by 64 clients, closed loop, conns = min(clients, 16),
# 1 s warm-up, 10 s measured, keys uniform over 10,000. One JSON line per
# case (the bench line, with "nodes" added) goes to $OUT (appended).
#   SIZES="3 5"  SECONDS_PER_CASE=10  OUT=bench/cluster-size-DATE.jsonl
# Everything runs on 127.0.0.1 (peer ports 7301-7305, client ports
# 7401-7405) and stops by itself; only the processes it started are killed,
# by PID, and its data directories are removed.
set -euo pipefail
BIN=${BIN:-bin/livepaxos}
SIZES=${SIZES:-3 5}
SECS=${SECONDS_PER_CASE:-10}
OUT=${OUT:-/tmp/cluster-size-bench.jsonl}
DATA=$(mktemp -d /tmp/lp-sizebench.XXXXXX)
PIDS=()
cleanup() {
  trap - INT TERM EXIT
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup INT TERM EXIT

for n in $SIZES; do
  peers= eps=
  for id in $(seq 1 "$n"); do
    peers+="${peers:+,}$id=127.0.0.1:$((7300 + id))"
    eps+="${eps:+,}127.0.0.1:$((7400 + id))"
  done
  PIDS=()
  for id in $(seq 1 "$n"); do
    "$BIN" node --id "$id" --peers "$peers" --client-listen "127.0.0.1:$((7400 + id))" \
      --data "$DATA/n$n-$id" >"$DATA/n$n-$id.log" 2>&1 &
    PIDS+=($!)
  done
  "$BIN" status --endpoints "$eps" --wait 60s >/dev/null
  for c in put:256 get:64; do
    op=${c%%:*} clients=${c##*:}
    line=$("$BIN" bench --endpoints "$eps" --op "$op" --clients "$clients" --conns $((clients < 16 ? clients : 16)) \
      --value-size 128 --seconds "$SECS" --warmup 1)
    echo "${line%\}},\"nodes\":$n}" | tee -a "$OUT"
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
done
