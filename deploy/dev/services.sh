#!/usr/bin/env bash
# deploy/dev/services.sh — make the external services that shelfsync's tests
# use available on this machine (Debian 12 "bookworm", as root, or in CI).
#
#   deploy/dev/services.sh [mosquitto] [postgres] [chromium]    (no args = all)
#
# Idempotent and quick when everything is already in place:
#   mosquitto  installs the Debian packages mosquitto + mosquitto-clients.
#              It does NOT start a broker: tests start their own mosquitto
#              processes on random ports with configs made from
#              deploy/mosquitto/mosquitto-test.conf.tmpl. If the package's
#              own system service got started (hosts with systemd), it is left
#              alone and reported.
#   postgres   installs postgresql if missing, starts the cluster if it is
#              down, and makes role + database shelfsync/shelfsync (password
#              shelfsync, CREATEDB so tests can make scratch databases),
#              reachable at
#              postgres://shelfsync:shelfsync@127.0.0.1:5432/shelfsync?sslmode=disable
#   chromium   installs chromium + chromium-driver (headless browser tests).
#
# apt-get update runs only when the package lists are empty or an install
# fails. Prints one line per service; exits non-zero with a clear message on
# failure. Environment for the tests: eval "$(deploy/dev/env.sh)".
set -euo pipefail

PG_USER=shelfsync
PG_PASS=shelfsync
PG_DB=shelfsync
PG_PORT=5432
PG_URL="postgres://${PG_USER}:${PG_PASS}@127.0.0.1:${PG_PORT}/${PG_DB}?sslmode=disable"

prog=${0##*/}
start_ns=$(date +%s%N)
apt_log=${TMPDIR:-/tmp}/shelfsync-services-apt.log

die() { echo "$prog: error: $*" >&2; exit 1; }
note() { echo "$prog: $*" >&2; }
elapsed() { echo "$(( ($(date +%s%N) - start_ns) / 1000000 ))ms"; }

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

# --- arguments -------------------------------------------------------------
want_mosquitto=0 want_postgres=0 want_chromium=0
if [ $# -eq 0 ]; then
  want_mosquitto=1 want_postgres=1 want_chromium=1
fi
for a in "$@"; do
  case "$a" in
    mosquitto) want_mosquitto=1 ;;
    postgres|postgresql|pg) want_postgres=1 ;;
    chromium|chrome) want_chromium=1 ;;
    -h|--help) usage ;;
    *) echo "$prog: unknown service '$a' (expected: mosquitto postgres chromium)" >&2; usage ;;
  esac
done

# --- privileges --------------------------------------------------------------
# Only installing packages and starting/creating things needs root; a fully
# set-up machine passes for any user.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "needs root to run: $* (run $prog as root, or give this user passwordless sudo)"
  fi
}

# Run a command as the postgres OS user (peer authentication on the socket).
as_postgres() {
  if [ "$(id -un)" = postgres ]; then
    (cd / && "$@")
  elif [ "$(id -u)" -eq 0 ] && command -v runuser >/dev/null 2>&1; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && as_root su -s /bin/sh postgres -c "$(printf '%q ' "$@")")
  fi
}

# --- apt ------------------------------------------------------------------------
pkg_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

apt_lists_empty() {
  ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null
}

apt_install() {
  local -a opts=(-y -q --no-install-recommends -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300)
  : >"$apt_log" 2>/dev/null || apt_log=/dev/null
  if apt_lists_empty; then
    note "apt package lists are empty: running apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$apt_log" 2>&1 ||
      { tail -n 30 "$apt_log" >&2 2>/dev/null || true; die "apt-get update failed (full log: $apt_log)"; }
  fi
  note "installing: $* (log: $apt_log)"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" >>"$apt_log" 2>&1; then
    note "install failed; running apt-get update and trying again"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$apt_log" 2>&1 ||
      { tail -n 30 "$apt_log" >&2 2>/dev/null || true; die "apt-get update failed (full log: $apt_log)"; }
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" >>"$apt_log" 2>&1 ||
      { tail -n 30 "$apt_log" >&2 2>/dev/null || true; die "apt-get install $* failed (full log: $apt_log)"; }
  fi
}

# Packages per service.
pkgs_mosquitto=(mosquitto mosquitto-clients)
pkgs_postgres=(postgresql)
pkgs_chromium=(chromium chromium-driver)

# Collect what is missing and install it in one apt-get run.
missing=()
declare -A newly=()
add_missing() {
  local svc=$1; shift
  local p
  for p in "$@"; do
    if ! pkg_installed "$p"; then missing+=("$p"); newly[$svc]=1; fi
  done
}
[ $want_mosquitto = 1 ] && add_missing mosquitto "${pkgs_mosquitto[@]}"
[ $want_postgres = 1 ] && add_missing postgres "${pkgs_postgres[@]}"
[ $want_chromium = 1 ] && add_missing chromium "${pkgs_chromium[@]}"
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "missing packages (${missing[*]}) and no apt-get: this script supports Debian/Ubuntu only"
  apt_install "${missing[@]}"
fi
how() { if [ -n "${newly[$1]:-}" ]; then echo installed; else echo "already installed"; fi; }

tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# --- mosquitto --------------------------------------------------------------
check_mosquitto() {
  local bin=/usr/sbin/mosquitto ver sys
  [ -x "$bin" ] || die "mosquitto: $bin not found after installing ${pkgs_mosquitto[*]}"
  command -v mosquitto_pub >/dev/null 2>&1 || die "mosquitto: mosquitto_pub not found after installing mosquitto-clients"
  # 'mosquitto -h' prints "mosquitto version X.Y.Z" and exits non-zero.
  ver=$("$bin" -h 2>&1 | sed -n 's/^mosquitto version \([0-9.]*\).*/\1/p' | head -n1 || true)
  [ -n "$ver" ] || die "mosquitto: $bin does not run ('$bin -h' printed no version)"
  if tcp_open 127.0.0.1 1883; then
    sys="something listens on 127.0.0.1:1883 (left alone; tests use their own ports)"
  else
    sys="no system broker on :1883 (not started by this script)"
  fi
  echo "mosquitto: ok, $(how mosquitto), version $ver at $bin; $sys"
}

# --- postgres ---------------------------------------------------------------
pg_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 2 >/dev/null 2>&1; }
pg_url_works() { PGCONNECT_TIMEOUT=3 psql "$PG_URL" -XAtqc 'select 1' 2>/dev/null | grep -qx 1; }

pg_start() {
  local ver cluster line port status
  # Newest installed server version (directory under /usr/lib/postgresql).
  ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null |
        while read -r v; do [ -x "/usr/lib/postgresql/$v/bin/postgres" ] && echo "$v"; done | sort -V | tail -n1)
  [ -n "$ver" ] || die "postgres: no server binaries under /usr/lib/postgresql (is postgresql installed?)"

  if command -v pg_lsclusters >/dev/null 2>&1; then
    # Choose the cluster on port 5432 of any version, else a cluster of $ver.
    line=$(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p' | head -n1)
    [ -n "$line" ] || line=$(pg_lsclusters -h 2>/dev/null | awk -v v="$ver" '$1 == v' | head -n1)
    if [ -z "$line" ]; then
      note "postgres: no cluster for version $ver: creating $ver/main on port $PG_PORT"
      as_root pg_createcluster --port "$PG_PORT" "$ver" main >/dev/null ||
        die "postgres: pg_createcluster $ver main failed"
      line=$(pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main"' | head -n1)
    fi
    read -r ver cluster port status _ <<<"$line"
    [ "$port" = "$PG_PORT" ] ||
      die "postgres: cluster $ver/$cluster listens on port $port, not $PG_PORT; set 'port = $PG_PORT' in /etc/postgresql/$ver/$cluster/postgresql.conf (or free port $PG_PORT) and run again"
    if [ "$status" != online ]; then
      as_root install -d -o postgres -g postgres -m 2775 /var/run/postgresql
      as_root pg_ctlcluster "$ver" "$cluster" start >/dev/null 2>&1 ||
        as_root service postgresql start >/dev/null 2>&1 ||
        die "postgres: could not start cluster $ver/$cluster (see /var/log/postgresql/postgresql-$ver-$cluster.log)"
      started="started $ver/$cluster"
    fi
  else
    as_root service postgresql start >/dev/null 2>&1 || die "postgres: 'service postgresql start' failed"
    started="started via service"
  fi
  local i
  for i in $(seq 1 60); do pg_ready && return 0; sleep 0.5; done
  die "postgres: server does not answer on 127.0.0.1:$PG_PORT after 30s"
}

pg_setup_role() {
  # Role: create, or reset login/password (so a changed password is fixed).
  as_postgres psql -XAtq -v ON_ERROR_STOP=1 -d postgres <<SQL >/dev/null || die "postgres: could not create/alter role $PG_USER"
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '${PG_USER}') THEN
    CREATE ROLE ${PG_USER} LOGIN CREATEDB PASSWORD '${PG_PASS}';
  ELSE
    ALTER ROLE ${PG_USER} LOGIN CREATEDB PASSWORD '${PG_PASS}';
  END IF;
END
\$\$;
SQL
  if [ "$(as_postgres psql -XAtq -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '${PG_DB}'")" != 1 ]; then
    as_postgres psql -XAtq -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE ${PG_DB} OWNER ${PG_USER}" >/dev/null ||
      die "postgres: could not create database $PG_DB"
  else
    as_postgres psql -XAtq -v ON_ERROR_STOP=1 -d postgres -c "ALTER DATABASE ${PG_DB} OWNER TO ${PG_USER}" >/dev/null ||
      die "postgres: could not set owner of database $PG_DB"
  fi
}

check_postgres() {
  command -v psql >/dev/null 2>&1 || die "postgres: psql not found after installing ${pkgs_postgres[*]}"
  local started="" state
  if ! pg_ready; then pg_start; fi
  if pg_url_works; then
    state="role and database present"
  else
    pg_setup_role
    pg_url_works || die "postgres: still cannot connect as $PG_USER to $PG_URL (check pg_hba.conf allows scram-sha-256/md5 for host 127.0.0.1)"
    state="role and database created or repaired"
  fi
  local ver
  ver=$(PGCONNECT_TIMEOUT=3 psql "$PG_URL" -XAtqc 'show server_version' 2>/dev/null | awk '{print $1}')
  echo "postgres: ok, $(how postgres), server $ver ${started:-already running}, $state; $PG_URL"
}

# --- chromium ---------------------------------------------------------------
check_chromium() {
  local bin=/usr/bin/chromium drv=/usr/bin/chromedriver ver
  [ -x "$bin" ] || die "chromium: $bin not found after installing ${pkgs_chromium[*]}"
  [ -x "$drv" ] || die "chromium: $drv not found after installing chromium-driver"
  ver=$(timeout 30 "$bin" --version 2>/dev/null | head -n1 || true)
  [ -n "$ver" ] || die "chromium: '$bin --version' failed"
  echo "chromium: ok, $(how chromium), $ver at $bin (driver $drv)"
}

[ $want_mosquitto = 1 ] && check_mosquitto
[ $want_postgres = 1 ] && check_postgres
[ $want_chromium = 1 ] && check_chromium
echo "services: done in $(elapsed)"
