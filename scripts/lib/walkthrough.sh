# shellcheck shell=bash
# Sourced. Runs sql/examples/walkthrough.sql through the sqlite3 shell.
#   cloud_sync_walkthrough DB_FILE LIB URL
cloud_sync_walkthrough() {
    local db=$1 lib=$2 url=$3
    {
        printf '.load %s\n' "$lib"
        # A SQL string literal: double any single quote in the URL.
        printf ".parameter set @url '%s'\n" "${url//\'/\'\'}"
        cat "$(dirname "${BASH_SOURCE[0]}")/../../sql/examples/walkthrough.sql"
    } | sqlite3 -batch "$db"
}
