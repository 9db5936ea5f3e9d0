#!/usr/bin/env bash
# Proves the environment contract of pg.sh end to end: installs deps, starts
# PostgreSQL + pgbouncer, checks TLS, auth and permissions, then tears down.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/deps.sh
. "$here/deps.sh"
# shellcheck source=scripts/lib/pg.sh
. "$here/pg.sh"

failures=0

# check NAME ok|fail PATTERN CMD...: CMD must succeed (ok) or fail (fail), and
# its combined output must match the grep PATTERN unless PATTERN is empty.
check() {
    local name=$1 expect=$2 pattern=$3 out got=ok
    shift 3
    out=$("$@" 2>&1) || got=fail
    if [ "$got" = "$expect" ] && { [ -z "$pattern" ] || grep -qE -- "$pattern" <<<"$out"; }; then
        printf 'PASS  %s\n' "$name"
    else
        printf 'FAIL  %s (expected %s%s, got %s)\n' "$name" "$expect" \
            "${pattern:+ matching /$pattern/}" "$got"
        [ -z "$out" ] || printf '      %s\n' "${out//$'\n'/$'\n'      }"
        failures=$((failures + 1))
    fi
}

# psql_q CONNINFO SQL: unaligned, quiet, stops on the first error.
psql_q() {
    "$CLOUD_SYNC_TEST_PG_BIN/psql" -X -Atq -v ON_ERROR_STOP=1 "$1 connect_timeout=5" -c "$2"
}

# sql CONNINFO SQL: runs SQL as the test user with the password from the contract.
sql() {
    PGPASSWORD=$CLOUD_SYNC_TEST_PG_PASSWORD psql_q "$1 user=$CLOUD_SYNC_TEST_PG_USER" "$2"
}

cloud_sync_install_deps
trap cloud_sync_pg_stop EXIT
cloud_sync_pg_start

pg="port=$CLOUD_SYNC_TEST_PG_PORT dbname=$CLOUD_SYNC_TEST_PG_DB"
bouncer="port=$CLOUD_SYNC_TEST_PGBOUNCER_PORT dbname=$CLOUD_SYNC_TEST_PG_DB"
ssl_q='SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'

check "pg: verify-full via localhost uses TLS" ok '^t$' \
    sql "host=localhost $pg sslmode=verify-full sslrootcert=$CLOUD_SYNC_TEST_PG_CA" "$ssl_q"
check "pg: verify-full via 127.0.0.1 fails on host name" fail 'does not match host name' \
    sql "host=127.0.0.1 $pg sslmode=verify-full sslrootcert=$CLOUD_SYNC_TEST_PG_CA" 'SELECT 1'
check "pg: verify-full with the other CA fails" fail 'certificate verify failed' \
    sql "host=localhost $pg sslmode=verify-full sslrootcert=$CLOUD_SYNC_TEST_OTHER_CA" 'SELECT 1'
check "pg: sslmode=disable works without TLS" ok '^f$' \
    sql "host=localhost $pg sslmode=disable" "$ssl_q"
PGPASSWORD=wrong check "pg: wrong password is rejected" fail 'password authentication failed' \
    psql_q "host=localhost $pg user=$CLOUD_SYNC_TEST_PG_USER sslmode=disable" 'SELECT 1'

# The password needs percent-encoding in a URL; prove the encoded form authenticates.
enc_pw=$(/usr/bin/python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' \
    "$CLOUD_SYNC_TEST_PG_PASSWORD")
check "pg: URL with percent-encoded password" ok '^1$' \
    "$CLOUD_SYNC_TEST_PG_BIN/psql" -X -Atq -c 'SELECT 1' \
    "postgresql://$CLOUD_SYNC_TEST_PG_USER:$enc_pw@localhost:$CLOUD_SYNC_TEST_PG_PORT/$CLOUD_SYNC_TEST_PG_DB?sslmode=verify-full&sslrootcert=$CLOUD_SYNC_TEST_PG_CA"

check "pg: test user can create tables in public" ok '' \
    sql "host=localhost $pg sslmode=disable" 'CREATE TABLE public.selfcheck_x(); DROP TABLE public.selfcheck_x'
PGPASSWORD=limited_pw check "pg: limited user cannot create tables in public" fail \
    'permission denied for schema public' \
    psql_q "host=localhost $pg user=cloud_sync_limited sslmode=disable" 'CREATE TABLE public.x()'
check "pg: admin conninfo is a superuser" ok '^postgres\|t$' \
    psql_q "$CLOUD_SYNC_TEST_PG_ADMIN_URL" \
    'SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user'

check "pgbouncer: sslmode=disable" ok '^1$' \
    sql "host=127.0.0.1 $bouncer sslmode=disable" 'SELECT 1'
check "pgbouncer: sslmode=require" ok '^1$' \
    sql "host=127.0.0.1 $bouncer sslmode=require" 'SELECT 1'
check "pgbouncer: verify-full via localhost" ok '^1$' \
    sql "host=localhost $bouncer sslmode=verify-full sslrootcert=$CLOUD_SYNC_TEST_PG_CA" 'SELECT 1'

# The restart helpers must work from a child process, as tests will call them.
check "restart: stop_server from a child bash" ok '' bash -c cloud_sync_pg_stop_server
check "restart: PG refuses connections while stopped" fail '' \
    sql "host=localhost $pg sslmode=disable" 'SELECT 1'
check "restart: start_server from a child bash" ok '' bash -c cloud_sync_pg_start_server
check "restart: PG accepts connections again" ok '^1$' \
    sql "host=localhost $pg sslmode=disable" 'SELECT 1'
check "restart: pgbouncer reconnects to the restarted PG" ok '^1$' \
    sql "host=127.0.0.1 $bouncer sslmode=disable" 'SELECT 1'

dir=$CLOUD_SYNC_TEST_DIR
ports=("$CLOUD_SYNC_TEST_PG_PORT" "$CLOUD_SYNC_TEST_PGBOUNCER_PORT")
cloud_sync_pg_stop
check "stop: temp dir removed" ok '' test ! -e "$dir"
for port in "${ports[@]}"; do
    check "stop: port $port free" ok '' bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null"
done
check "stop: second call is a no-op" ok '' cloud_sync_pg_stop

if [ "$failures" -ne 0 ]; then
    printf '%d check(s) failed\n' "$failures"
    exit 1
fi
printf 'all checks passed\n'
