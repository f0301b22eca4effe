#!/usr/bin/env bash
# Checks that `make run` stops cleanly: started in a process group of its own, it
# is stopped once as Ctrl-C does it (SIGINT to the whole process group) and
# once with SIGTERM to make alone; each time every process of the session
# must be gone within 5 s. Then `timeout -s INT 30 make run` must return
# within 35 s and leave nothing behind. Exit 1 with what stayed behind.
set -euo pipefail
# Job control: each background job below is a process group of its own (as
# a command typed at a terminal is), and does not start with SIGINT ignored.
set -m
cd "$(dirname "$0")/../.."
fail() { echo "run_test: FAIL: $*" >&2; exit 1; }
random_port() { echo $((20000 + RANDOM % 20000)); }
group_procs() { ps -eo pid=,pgid=,args= | awk -v g="$1" '$2 == g' || true; }

# demo_env prints the environment for one demo: a data dir of its own and
# random ports, so this test runs beside another `make test` on one machine.
demo_env() {
  local data; data=$(mktemp -d "${TMPDIR:-/tmp}/shelfsync-run-test.XXXXXX")
  echo "SHELFSYNC_DEMO_DATA=$data SHELFSYNC_DEMO_HTTP=$(random_port) SHELFSYNC_DEMO_AGENT_HTTP=$(random_port) SHELFSYNC_DEMO_MQTT=$(random_port)"
}

# stop_case NAME HOW: HOW is "group-int" (Ctrl-C) or "make-term".
stop_case() {
  local name=$1 how=$2 envs log pg data
  envs=$(demo_env); data=$(sed 's/.*SHELFSYNC_DEMO_DATA=\([^ ]*\).*/\1/' <<<"$envs")
  log="$data.log"
  env $envs make --no-print-directory run >"$log" 2>&1 &
  pg=$!
  for _ in $(seq 1 1200); do
    grep -q '== running' "$log" && break
    kill -0 "$pg" 2>/dev/null || { cat "$log"; fail "$name: make run exited before it was up"; }
    sleep 0.1
  done
  grep -q '== running' "$log" || { cat "$log"; group_procs "$pg"; kill -KILL -- "-$pg"; fail "$name: make run not up after 120 s"; }
  grep -q 'PALLET-WRAP' "$log" || { cat "$log"; kill -TERM -- "-$pg"; fail "$name: the demo printed no stock for the shift"; }
  case $how in
    group-int) kill -INT -- "-$pg" ;;
    make-term) kill -TERM "$pg" ;;
  esac
  local start=$SECONDS
  for _ in $(seq 1 50); do
    [ -z "$(group_procs "$pg")" ] && break
    sleep 0.1
  done
  local left; left=$(group_procs "$pg")
  if [ -n "$left" ]; then
    echo "$left" >&2; kill -KILL -- "-$pg" 2>/dev/null || true
    fail "$name: processes left 5 s after the stop"
  fi
  wait "$pg" 2>/dev/null || true
  echo "run_test: $name: stopped within $((SECONDS - start + 1)) s, nothing left"
  rm -rf "$data" "$log"
}

stop_case "Ctrl-C" group-int
stop_case "SIGTERM to make" make-term

if [ "${SHELFSYNC_RUN_TEST_TIMEOUT:-}" = 1 ]; then
  envs=$(demo_env); data=$(sed 's/.*SHELFSYNC_DEMO_DATA=\([^ ]*\).*/\1/' <<<"$envs")
  start=$SECONDS
  env $envs timeout -s INT 30 make --no-print-directory run >"$data.log" 2>&1 &
  pg=$!
  wait "$pg" || true
  took=$((SECONDS - start))
  left=$(group_procs "$pg")
  [ -z "$left" ] || { echo "$left" >&2; kill -KILL -- "-$pg" 2>/dev/null || true; fail "timeout -s INT 30 make run left processes"; }
  [ "$took" -le 35 ] || fail "timeout -s INT 30 make run took $took s"
  echo "run_test: timeout -s INT 30 make run: returned after $took s, nothing left"
  rm -rf "$data" "$data.log"
fi
echo "run_test: ok"
