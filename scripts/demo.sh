#!/usr/bin/env bash
# The main job end to end: build, save a connection, test it, preview an export (dry run), run
# the confirmed export, show the job history, edit rows in Postgres with psql, and bring them
# back with a dry-run import and a merge import, ship a local delete incrementally, and have a
# schedule export a local change by itself.
# Uses a throwaway local PostgreSQL (TLS on) unless CLOUD_SYNC_DEMO_URL names a real one
# (a Neon or Supabase connection string).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
. scripts/lib/pg.sh
. scripts/lib/walkthrough.sh

cloud_sync_install_deps
if [ -n "${CLOUD_SYNC_DEMO_URL:-}" ]; then
    url=$CLOUD_SYNC_DEMO_URL
else
    trap cloud_sync_pg_stop EXIT
    cloud_sync_pg_start
    url=$(cloud_sync_pg_verified_url)
fi

cargo build --release --locked --quiet
if [ -z "${CLOUD_SYNC_ENCRYPTION_KEY:-}${CLOUD_SYNC_ENCRYPTION_KEY_FILE:-}" ]; then
    echo "(no CLOUD_SYNC_ENCRYPTION_KEY set: using a random key for this demo only)"
    CLOUD_SYNC_ENCRYPTION_KEY=$(openssl rand -hex 32)
    export CLOUD_SYNC_ENCRYPTION_KEY
fi
db=${CLOUD_SYNC_DEMO_DB:-$(mktemp -d)/demo.db}
echo "== sqlite3 $db < sql/examples/walkthrough.sql"
cloud_sync_walkthrough "$db" "$PWD/target/release/libcloud_sync" "$url"
