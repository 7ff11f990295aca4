#!/usr/bin/env bash
# Starts a local 3-node livepaxos cluster (peer ports 127.0.0.1:7001-7003,
# client ports 7101-7103) with data in
# ${LIVEPAXOS_DATA:-./data}. Ctrl-C stops all three (by PID).
set -euo pipefail
BIN=${1:-bin/livepaxos}
DATA=${LIVEPAXOS_DATA:-$PWD/data}
PEERS=1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
ENDPOINTS=127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103
mkdir -p "$DATA"
PIDS=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping nodes ${PIDS[*]}"
  kill -TERM "${PIDS[@]}" 2>/dev/null || true
  wait "${PIDS[@]}" 2>/dev/null || true
  exit 0
}
trap stop INT TERM EXIT
for id in 1 2 3; do
  "$BIN" node --id "$id" --peers "$PEERS" --data "$DATA/n$id" --log-level "${LOG_LEVEL:-info}" \
    >"$DATA/n$id.log" 2>&1 &
  PIDS+=($!)
done
"$BIN" status --endpoints "$ENDPOINTS" --wait 30s
cat <<MSG

livepaxos: 3 nodes running (pids ${PIDS[*]}), data and logs in $DATA
  $BIN put  --endpoints $ENDPOINTS greeting hello
  $BIN get  --endpoints $ENDPOINTS greeting      # a lease read; --consistency quorum|stale
  $BIN status --endpoints $ENDPOINTS
Kill the master (see status) with kill -9 and watch another take over.
Ctrl-C stops all three.
MSG
wait
