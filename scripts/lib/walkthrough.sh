# shellcheck shell=bash
# Sourced. The README's walk-through end to end against one Postgres:
#   cloud_sync_walkthrough DB_FILE LIB URL
# sql/examples/walkthrough.sql (save, test, dry run, confirmed export) through the sqlite3
# shell, sql/examples/remote_edit.sql through psql, then sql/examples/import.sql (dry-run
# import, merge import) and sql/examples/incremental.sql (a local delete, an incremental
# export) through the sqlite3 shell again, and the remote rows through psql. Last,
# sql/examples/schedule.sql (a schedule, the worker, a local change) in one sqlite3 process
# that waits, its worker running, until the change is on the remote, then runs
# sql/examples/schedule_stop.sql (the worker stopped, what the schedule did).
cloud_sync_walkthrough() {
    local db=$1 lib=$2 url=$3
    local examples
    examples="$(dirname "${BASH_SOURCE[0]}")/../../sql/examples"
    {
        printf '.load %s\n' "$lib"
        # A SQL string literal: double any single quote in the URL.
        printf ".parameter set @url '%s'\n" "${url//\'/\'\'}"
        cat "$examples/walkthrough.sql"
    } | sqlite3 -batch "$db" || return 1
    echo "== psql: edit the exported rows remotely"
    psql "$url" -X -q -v ON_ERROR_STOP=1 -f "$examples/remote_edit.sql" || return 1
    { printf '.load %s\n' "$lib"; cat "$examples/import.sql"; } | sqlite3 -batch "$db" || return 1
    { printf '.load %s\n' "$lib"; cat "$examples/incremental.sql"; } | sqlite3 -batch "$db" || return 1
    echo "== psql: the remote items after the incremental export"
    psql "$url" -X -q -v ON_ERROR_STOP=1 -c "SELECT id, name, price FROM items ORDER BY id" \
        || return 1
    echo "== sqlite3: a schedule exports a local change by itself"
    {
        printf '.load %s\n' "$lib"
        cat "$examples/schedule.sql"
        # sqlite3 waits on its input meanwhile, and its worker runs; if the change never
        # arrives, sqlite3 is told to fail.
        _cloud_sync_wait_for_remote "$url" "SELECT count(*) FROM items WHERE id = 5" 1 \
            || printf '.exit 1\n'
        cat "$examples/schedule_stop.sql"
    } | sqlite3 -batch "$db" || return 1
    echo "== psql: the remote items after the schedule's export"
    psql "$url" -X -q -v ON_ERROR_STOP=1 -c "SELECT id, name, price FROM items ORDER BY id"
}

# Polls the remote until QUERY gives EXPECTED, for up to 30 s. Says how long it took on stderr:
# its stdout may be feeding a sqlite3 shell.
_cloud_sync_wait_for_remote() {
    local url=$1 query=$2 expected=$3 started=$SECONDS
    until [ "$(psql "$url" -X -q -t -A -c "$query")" = "$expected" ]; do
        if (( SECONDS - started >= 30 )); then
            echo "walk-through: the remote still does not answer $expected to: $query" >&2
            return 1
        fi
        sleep 0.2
    done
    echo "walk-through: on the remote within $(( SECONDS - started + 1 )) s" >&2
}
