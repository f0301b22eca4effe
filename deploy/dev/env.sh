#!/usr/bin/env bash
# deploy/dev/env.sh — print the environment that shelfsync's integration tests
# read, as shell export lines:
#
#   eval "$(deploy/dev/env.sh)"      # after deploy/dev/services.sh
#
# A variable already set in the environment is kept (so CI or a developer can
# point a test elsewhere). A test whose variable is unset should skip; one
# whose variable points at something missing should fail. Missing tools are
# reported on stderr (run deploy/dev/services.sh to install them).
#
#   SHELFSYNC_TEST_PG                 PostgreSQL URL (role/db shelfsync, CREATEDB)
#   SHELFSYNC_TEST_MOSQUITTO          mosquitto broker binary
#   SHELFSYNC_TEST_MOSQUITTO_TMPL     config template ({{PORT}} {{TLS_PORT}} {{CERT_DIR}} {{ACL_FILE}} {{DATA_DIR}})
#   SHELFSYNC_TEST_MOSQUITTO_ACL      the production ACL file, for the template's {{ACL_FILE}}
#   SHELFSYNC_TEST_CHROMIUM           headless browser binary
#   SHELFSYNC_TEST_CHROMEDRIVER       matching chromedriver
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
deploy=$(cd "$here/.." && pwd)

emit() { # name default
  local name=$1 val=${!1:-$2}
  printf "export %s='%s'\n" "$name" "${val//\'/\'\\\'\'}"
}
need() { # name path-that-should-exist
  [ -e "$2" ] || echo "env.sh: warning: $1=$2 does not exist (run deploy/dev/services.sh)" >&2
}

emit SHELFSYNC_TEST_PG 'postgres://shelfsync:shelfsync@127.0.0.1:5432/shelfsync?sslmode=disable'
emit SHELFSYNC_TEST_MOSQUITTO /usr/sbin/mosquitto
emit SHELFSYNC_TEST_MOSQUITTO_TMPL "$deploy/mosquitto/mosquitto-test.conf.tmpl"
emit SHELFSYNC_TEST_MOSQUITTO_ACL "$deploy/mosquitto/shelfsync.acl"
emit SHELFSYNC_TEST_CHROMIUM /usr/bin/chromium
emit SHELFSYNC_TEST_CHROMEDRIVER /usr/bin/chromedriver

need SHELFSYNC_TEST_MOSQUITTO "${SHELFSYNC_TEST_MOSQUITTO:-/usr/sbin/mosquitto}"
need SHELFSYNC_TEST_CHROMIUM "${SHELFSYNC_TEST_CHROMIUM:-/usr/bin/chromium}"
need SHELFSYNC_TEST_CHROMEDRIVER "${SHELFSYNC_TEST_CHROMEDRIVER:-/usr/bin/chromedriver}"
case "${SHELFSYNC_TEST_PG:-@127.0.0.1:5432/}" in
  *@127.0.0.1:5432/*)
    (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null ||
      echo "env.sh: warning: nothing listens on 127.0.0.1:5432 (run deploy/dev/services.sh postgres)" >&2 ;;
esac
