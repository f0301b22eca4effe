#!/usr/bin/env bash
# make run: the whole of shelfsync on one machine with embedded defaults —
# a server (embedded MQTT broker + Badger), one agent, and a simulated
# barcode scanner behind a pty that plays a short shift (receive, then
# count). Ctrl-C stops everything.
#
# Ports (override with env): SHELFSYNC_DEMO_HTTP (8080), SHELFSYNC_DEMO_AGENT_HTTP
# (8081), SHELFSYNC_DEMO_MQTT (1884 — not 1883, so a local Mosquitto is left
# alone). A port already taken is replaced by a free one.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=bin
DATA=${SHELFSYNC_DEMO_DATA:-./shelfsync-data}

# port_free reports whether nothing listens on 127.0.0.1:$1 (bash /dev/tcp;
# no curl or python needed on a fresh machine).
port_free() { ! (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { # prefer $1, else a free port from a random range
  local p=$1
  while ! port_free "$p"; do p=$((20000 + RANDOM % 20000)); done
  echo "$p"
}
# http_get HOST:PORT PATH prints the body of a GET (bash /dev/tcp).
http_get() {
  local host=${1%:*} port=${1##*:}
  exec 8<>"/dev/tcp/$host/$port" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$1" >&8
  local status; IFS= read -r status <&8
  case "$status" in *" 200 "*) ;; *) exec 8<&-; return 1;; esac
  sed '1,/^\r\{0,1\}$/d' <&8
  exec 8<&-
}
HTTP=127.0.0.1:$(free_port "${SHELFSYNC_DEMO_HTTP:-8080}")
AGENT_HTTP=127.0.0.1:$(free_port "${SHELFSYNC_DEMO_AGENT_HTTP:-8081}")
MQTT=127.0.0.1:$(free_port "${SHELFSYNC_DEMO_MQTT:-1884}")

echo "== shelfsync demo: fresh data in $DATA"
rm -rf "$DATA"; mkdir -p "$DATA"
PARENT=$PPID
PIDS=()
# cleanup stops what the script started: it closes the scanner's stdin,
# sends SIGTERM, and after 4 s sends SIGKILL to whatever is still running,
# so a stop never takes more than 5 s and leaves nothing behind.
cleanup() {
  trap '' INT TERM
  echo; echo "== stopping"
  exec 3>&- 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 40); do
    alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then echo "== pid $p ignored SIGTERM for 4s; killing it" >&2; kill -KILL "$p" 2>/dev/null || true; fi
  done
  [ -n "${SLEEPER:-}" ] && kill "$SLEEPER" 2>/dev/null
  wait 2>/dev/null || true
  echo "== stopped; logs are in $DATA/*.log"
}
trap cleanup EXIT
trap 'exit 0' INT TERM HUP

wait_http() { for _ in $(seq 1 150); do http_get "$1" /healthz >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "timed out waiting for $1; see $DATA/*.log" >&2; return 1; }

$BIN/shelfsync-server run --data "$DATA/server" --http "$HTTP" --mqtt "$MQTT" >"$DATA/server.log" 2>&1 &
PIDS+=($!)
wait_http "$HTTP"
echo "== server up: API http://$HTTP  dashboard http://$HTTP/dashboard/  (embedded MQTT broker on $MQTT)"

mkfifo "$DATA/scans"
$BIN/shelfsync-sim barcode --link "$DATA/scanner.tty" --suffix CRLF <"$DATA/scans" >"$DATA/sim.log" 2>&1 &
PIDS+=($!)
exec 3>"$DATA/scans"   # keep the scanner's stdin open
for _ in $(seq 1 50); do [ -e "$DATA/scanner.tty" ] && break; sleep 0.1; done

$BIN/shelfsync-agent run --data "$DATA/agent" --warehouse demo --gateway dock1 \
  --broker "tcp://$MQTT" --http "$AGENT_HTTP" \
  --device "scanner1=barcode:$DATA/scanner.tty,feedback=honeywell" >"$DATA/agent.log" 2>&1 &
PIDS+=($!)
wait_http "$AGENT_HTTP"
echo "== agent up: gateway demo/dock1, status http://$AGENT_HTTP/api/v1/status"

echo "== the scanner plays a shift:"
while read -r scan; do
  [ -z "$scan" ] && continue
  printf '   scan %-22s' "$scan"
  before=$(grep -c 'feedback:' "$DATA/sim.log" || true)
  echo "$scan" >&3
  for _ in $(seq 1 50); do
    now=$(grep -c 'feedback:' "$DATA/sim.log" || true)
    [ "$now" -gt "$before" ] && break
    sleep 0.05
  done
  echo "→ $(grep 'feedback:' "$DATA/sim.log" | tail -1 | sed 's/.*feedback: //')"
done <<'SHIFT'
CMD:RECEIVE
4012345678901
4012345678901
QTY:6
4006381333931
LOT:L42
SKU:PALLET-WRAP
4012345678902
CMD:DONE
CMD:COUNT
LOC:A-01-03
SKU:PALLET-WRAP
SKU:PALLET-WRAP
4006381333931
CMD:DONE
SHIFT

# The shift's last ops reach the server a moment after their beep: wait
# (up to 10 s) until the counted key shows up in the server's stock.
for _ in $(seq 1 100); do
  http_get "$HTTP" "/api/v1/stock?warehouse=demo&sku=PALLET-WRAP" 2>/dev/null | grep -q 'A-01-03' && break
  sleep 0.1
done
echo "== stock on the server (GET http://$HTTP/api/v1/stock?warehouse=demo):"
http_get "$HTTP" "/api/v1/stock?warehouse=demo" | sed 's/},{/},\n  {/g' 
echo
echo "== dashboard: http://$HTTP/dashboard/   gateway screen: http://$AGENT_HTTP/screen   gateway status: http://$AGENT_HTTP/api/v1/status   metrics: http://$HTTP/metrics"
echo "== type more scans into the scanner with: echo 'SKU:X' > $DATA/scans  (from another shell, while this runs)"
echo "== running; Ctrl-C stops everything"
# Wait in short steps in the background so a signal runs the trap at once,
# and stop too when the parent (make) goes away without passing a signal on.
SLEEPER=
while kill -0 "$PARENT" 2>/dev/null; do sleep 1 & SLEEPER=$!; wait "$SLEEPER" || true; done
