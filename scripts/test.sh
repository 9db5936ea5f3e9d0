#!/usr/bin/env bash
# Installs what is missing, starts a throwaway PostgreSQL (TLS, SCRAM) and pgbouncer
# (transaction mode), and when their kit folders are named (relative to the repository root)
# a Citus cluster (CLOUD_SYNC_CITUS_KIT) and PgBouncer 1.25 (CLOUD_SYNC_PGBOUNCER_KIT), runs
# every test, runs the core suites against PostgreSQL 13 and 18 too, builds the release packages
# and tests them installed (the aarch64 library under qemu-user on an x86_64 machine), and stops
# what it started even when a test fails.
#
#   scripts/test.sh [--quick]   --quick skips PostgreSQL 13 and 18 and the packages (CI runs all)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
case "${1:-}" in
    --quick) quick=true ;;
    "") ;;
    *)
        echo "usage: scripts/test.sh [--quick]" >&2
        exit 2
        ;;
esac
. scripts/lib/deps.sh
. scripts/lib/pg.sh
. scripts/lib/walkthrough.sh
. scripts/lib/node.sh
. scripts/lib/citus.sh
. scripts/lib/pgbouncer_kit.sh
. scripts/lib/pg_versions.sh

cloud_sync_install_deps
cloud_sync_node_install
trap 'cloud_sync_citus_stop; cloud_sync_pgbouncer_kit_stop; cloud_sync_pg_stop' EXIT
cloud_sync_pg_start
cloud_sync_pgbouncer_kit_start
cloud_sync_citus_start

echo "== build"
cargo build --release --locked
export CLOUD_SYNC_LIB="$PWD/target/release/libcloud_sync.so"

echo "== cargo test (unit tests, rusqlite host, sqlite3 shell host, Citus)"
cargo test --release --locked

if [ -n "${CLOUD_SYNC_TEST_PGBOUNCER_KIT_PORT:-}" ]; then
    echo "== export and import (their pooled and lock tests) through the PgBouncer kit"
    CLOUD_SYNC_TEST_PGBOUNCER_PORT=$CLOUD_SYNC_TEST_PGBOUNCER_KIT_PORT \
        cargo test --release --locked --test export --test import
fi

echo "== apsw host"
/usr/bin/python3 tests/apsw_host.py

echo "== python sqlite3 host"
/usr/bin/python3 tests/python_sqlite3_host.py

echo "== forked python child"
/usr/bin/python3 tests/fork_host.py

echo "== fuzz: every function with wrong counts and hostile values"
/usr/bin/python3 tests/fuzz_host.py

echo "== a real Django app's database, out and back"
/usr/bin/python3 tests/django_host.py

echo "== the admin page: Datasette with the plugin's wheel, in headless Chromium"
/usr/bin/python3 tests/datasette_page.py

echo "== node hosts (better-sqlite3, node:sqlite) and PGlite's socket server as a target"
cloud_sync_node_test

echo "== walk-through through the sqlite3 shell"
workdir=$(mktemp -d)
output=$(CLOUD_SYNC_ENCRYPTION_KEY=$(openssl rand -hex 32) \
    cloud_sync_walkthrough "$workdir/walkthrough.db" "$CLOUD_SYNC_LIB" "$(cloud_sync_pg_verified_url)")
rm -rf "$workdir"
echo "$output"
for expected in 'key_configured = 1' 'connection_id = 1' ':***@localhost' '"verified":true' \
    'dry_run = succeeded' 'export = succeeded' 'committed' \
    'dry_run_import = succeeded' 'merge_import = succeeded' '│ 1  │ tea    │ 3.75  │' \
    '│ 2  │ coffee │ 4.25  │' '│ 4  │ juice  │ 2.5   │' 'tracking = tracked' \
    'incremental_export = succeeded' '│ items      │ incremental │ 3            │ 0       │ 1       │' \
    '  4 | juice  |   2.5' 'scheduled = export' 'worker_running = 1' 'worker_stopped = 1' \
    '│ live │ export │ succeeded    │ 7           │' \
    '│ items      │ incremental │ 1            │ 1       │' '  5 | cocoa  |   3.2'; do
    if ! grep -qF -- "$expected" <<<"$output"; then
        echo "walk-through: expected '$expected' in its output" >&2
        exit 1
    fi
done
encoded_password=$(cloud_sync_pg_verified_url | sed -E 's|^postgresql://[^:]+:([^@]+)@.*|\1|')
for secret in "$CLOUD_SYNC_TEST_PG_PASSWORD" "$encoded_password"; do
    if grep -qF -- "$secret" <<<"$output"; then
        echo "walk-through: the password appears in the output" >&2
        exit 1
    fi
done
if grep -qF -- '  3 | water' <<<"$output"; then
    echo "walk-through: the row deleted locally is still on the remote after the incremental export" >&2
    exit 1
fi
echo "walk-through: 1 passed, 0 failed"

if $quick; then
    echo "== --quick: PostgreSQL 13 and 18 and the packages skipped"
    exit 0
fi

cloud_sync_pg_versions_test

echo "== packages: scripts/package.sh builds dist/, tests/packaging installs and uses it"
bash scripts/package.sh
bash tests/packaging/run.sh
# The other architecture's library, under qemu-user (an aarch64 machine runs its own above).
if [ "$(uname -m)" = x86_64 ]; then
    bash tests/packaging/aarch64.sh
fi
