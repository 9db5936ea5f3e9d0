# shellcheck shell=bash
# Sourced after pg.sh. A second pgbouncer in front of the test server, from the kit folder that
# CLOUD_SYNC_PGBOUNCER_KIT names (PgBouncer 1.25, the generation Neon and Supabase run), in
# transaction mode with max_prepared_statements = 200, configured as pg.sh's (TLS, SCRAM) so
# that the export and import suites can run through it too.
#
#   cloud_sync_pgbouncer_kit_start   start it when a kit is named (after cloud_sync_pg_start),
#                                    export CLOUD_SYNC_TEST_PGBOUNCER_KIT_PORT; otherwise say
#                                    why it is skipped
#   cloud_sync_pgbouncer_kit_stop    stop it (idempotent, trap-safe; before cloud_sync_pg_stop)
#
# It listens on CLOUD_SYNC_PGBOUNCER_KIT_PORT (default 56433).

: "${_cloud_sync_pgbouncer_kit_pidfile:=}"

cloud_sync_pgbouncer_kit_start() {
    local port=${CLOUD_SYNC_PGBOUNCER_KIT_PORT:-56433} kit dir=$CLOUD_SYNC_TEST_DIR
    if [ -z "${CLOUD_SYNC_PGBOUNCER_KIT:-}" ]; then
        echo "pgbouncer kit: skipped: CLOUD_SYNC_PGBOUNCER_KIT does not name a PgBouncer kit folder"
        return 0
    fi
    # Relative to the repository root.
    if ! kit=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && cd "$CLOUD_SYNC_PGBOUNCER_KIT" 2>/dev/null && pwd) ||
        [ ! -x "$kit/pgbouncer" ]; then
        echo "pgbouncer kit: CLOUD_SYNC_PGBOUNCER_KIT=$CLOUD_SYNC_PGBOUNCER_KIT has no pgbouncer" >&2
        return 1
    fi
    if _cloud_sync_port_busy "$port"; then
        echo "pgbouncer kit: port $port is already in use; set CLOUD_SYNC_PGBOUNCER_KIT_PORT" >&2
        return 1
    fi
    # pg.sh's configuration, on its own port, pid file and log, with prepared statements kept
    # across transaction pooling (the [pgbouncer] section is the file's last).
    sed -e "s|^listen_port = .*|listen_port = $port|" \
        -e "s|^pidfile = .*|pidfile = $dir/pgbouncer_kit.pid|" \
        -e "s|^logfile = .*|logfile = $dir/pgbouncer_kit.log|" \
        "$dir/pgbouncer.ini" >"$dir/pgbouncer_kit.ini" || return 1
    echo "max_prepared_statements = 200" >>"$dir/pgbouncer_kit.ini"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir/pgbouncer_kit.ini" || return 1
    fi
    if ! _cloud_sync_as_pg "$kit/pgbouncer" -d -q "$dir/pgbouncer_kit.ini"; then
        echo "pgbouncer kit: failed to start; its log follows" >&2
        cat "$dir/pgbouncer_kit.log" >&2
        return 1
    fi
    _cloud_sync_pgbouncer_kit_pidfile=$dir/pgbouncer_kit.pid
    CLOUD_SYNC_TEST_PGBOUNCER_PORT=$port _cloud_sync_pg_wait_bouncer || return 1
    export CLOUD_SYNC_TEST_PGBOUNCER_KIT_PORT=$port
    echo "pgbouncer kit: $("$kit/pgbouncer" --version | head -1) on port $port"
}

cloud_sync_pgbouncer_kit_stop() {
    local pidfile=$_cloud_sync_pgbouncer_kit_pidfile pid i
    [ -n "$pidfile" ] || return 0
    _cloud_sync_pgbouncer_kit_pidfile=
    if [ -s "$pidfile" ] && pid=$(cat "$pidfile") && kill -TERM "$pid" 2>/dev/null; then
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    unset CLOUD_SYNC_TEST_PGBOUNCER_KIT_PORT
}
