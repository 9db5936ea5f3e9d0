#!/usr/bin/env bash
# Installs what scripts/package.sh put in dist/, as a user would, and runs a short session
# through each host (tests/packaging/python_session.py, node_session.mjs):
#
# - a fresh Python virtual environment: the wheels for this machine from dist/ (no registry
#   for them; apsw, Datasette and sqlite-utils come from PyPI), then sqlite3, apsw and
#   sqlite-utils sessions, sqlite-utils' command line, and Datasette started with the plugin,
#   asked `select cloud_sync_version()` through its JSON API;
# - a fresh Node project: the npm packages from dist/ (the main package and this machine's
#   binary package), then node:sqlite and better-sqlite3 sessions. better-sqlite3 is the one
#   tests/node built (its own install downloads a binary from GitHub, which CI cannot reach).
#
# Needs dist/, the CLOUD_SYNC_TEST_* variables of scripts/lib/pg.sh and tests/node installed
# (scripts/lib/node.sh). Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
. scripts/lib/node.sh

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
arch=$(uname -m)
case $arch in
    x86_64) node_arch=x64 ;;
    aarch64) node_arch=arm64 ;;
    *)
        echo "packaging tests: no package for $arch" >&2
        exit 1
        ;;
esac
dist=$root/dist
export CLOUD_SYNC_ENCRYPTION_KEY=3f1c6a7e9b2d4c8e0a5f7b1d3e9c2a4b6d8f0e1c3a5b7d9f2e4c6a8b0d1f3e5a
work=$(mktemp -d)
datasette_pid=
cleanup() {
    [ -z "$datasette_pid" ] || kill "$datasette_pid" 2>/dev/null || true
    rm -rf -- "$work"
}
trap cleanup EXIT

# The password must never reach what a session prints.
run_session() {
    local output
    output=$("$@" 2>&1) || {
        printf '%s\n' "$output" >&2
        return 1
    }
    printf '%s\n' "$output"
    if grep -qF -- "$CLOUD_SYNC_TEST_PG_PASSWORD" <<<"$output"; then
        echo "packaging tests: the password appears in the output of $*" >&2
        return 1
    fi
}

echo "== packaging: the .so in the tarball"
tar -C "$work" -xzf "$dist/cloud_sync-$version-linux-$arch.tar.gz"
bash tests/packaging/check_so.sh "$work/cloud_sync.so" "$arch"
[ "$(sqlite3 :memory: ".load $work/cloud_sync" 'SELECT cloud_sync_version()')" = "$version" ]
echo "sqlite3 shell: loaded cloud_sync $version from the tarball"

echo "== packaging: Python wheels in a fresh virtual environment"
/usr/bin/python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check \
    "$dist/sqlite_cloud_sync-$version-py3-none-manylinux_2_28_$arch.whl" \
    "$dist/datasette_cloud_sync-$version-py3-none-any.whl" \
    "$dist/sqlite_utils_cloud_sync-$version-py3-none-any.whl" \
    apsw
for host in sqlite3 apsw sqlite-utils; do
    run_session "$work/venv/bin/python" tests/packaging/python_session.py "$version" "$host"
done
# The csv module ends lines with CR LF.
answer=$("$work/venv/bin/sqlite-utils" memory 'select cloud_sync_version() as v' --csv --no-headers)
[ "${answer%$'\r'}" = "$version" ]
echo "sqlite-utils command line: cloud_sync $version"

echo "== packaging: Datasette with the plugin"
port=$("$work/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$work/venv/bin/sqlite-utils" create-table "$work/app.db" notes id integer --pk id
"$work/venv/bin/datasette" serve "$work/app.db" --host 127.0.0.1 --port "$port" \
    >"$work/datasette.log" 2>&1 &
datasette_pid=$!
url="http://127.0.0.1:$port/app.json?sql=select+cloud_sync_version()+as+v&_shape=array"
answer=
for _ in $(seq 1 100); do
    answer=$(curl -fsS "$url" 2>/dev/null) && break
    sleep 0.2
done
if [ "$answer" != "[{\"v\": \"$version\"}]" ] && [ "$answer" != "[{\"v\":\"$version\"}]" ]; then
    cat "$work/datasette.log" >&2
    echo "packaging tests: Datasette answered '$answer'" >&2
    exit 1
fi
echo "datasette: $answer"
kill "$datasette_pid"
wait "$datasette_pid" 2>/dev/null || true
datasette_pid=

echo "== packaging: npm packages in a fresh Node project"
node_home=$(_cloud_sync_node_home)
project=$work/node-project
mkdir -p "$project"
printf '{ "name": "cloud-sync-package-session", "private": true }\n' >"$project/package.json"
(cd "$project" && PATH="$node_home/bin:$PATH" npm install --no-audit --no-fund --loglevel=error \
    "$dist/sqlite-cloud-sync-$version.tgz" "$dist/sqlite-cloud-sync-linux-$node_arch-$version.tgz")
ln -s "$(_cloud_sync_node_dir)/node_modules/better-sqlite3" "$project/node_modules/better-sqlite3"
cp tests/packaging/node_session.mjs "$project/"
for host in node:sqlite better-sqlite3; do
    run_session "$node_home/bin/node" "$project/node_session.mjs" "$version" "$host"
done
echo "packaging: 8 passed, 0 failed"
