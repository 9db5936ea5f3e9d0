# shellcheck shell=bash
# Sourced. The README's walk-through end to end against one Postgres:
#   cloud_sync_walkthrough DB_FILE LIB URL
# sql/examples/walkthrough.sql (save, test, dry run, confirmed export) through the sqlite3
# shell, sql/examples/remote_edit.sql through psql, then sql/examples/import.sql (dry-run
# import, merge import) and sql/examples/incremental.sql (a local delete, an incremental
# export) through the sqlite3 shell again, and the remote rows through psql.
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
    psql "$url" -X -q -v ON_ERROR_STOP=1 -c "SELECT id, name, price FROM items ORDER BY id"
}
