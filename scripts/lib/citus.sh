# shellcheck shell=bash
# Sourced. A throwaway Citus cluster (a coordinator and two workers) from the kit folder that
# CLOUD_SYNC_CITUS_KIT names (its start.sh and stop.sh), for tests/citus.rs.
#
#   cloud_sync_citus_start   start it when a kit is named, export CLOUD_SYNC_TEST_CITUS_PORT;
#                            otherwise say why the Citus tests are skipped
#   cloud_sync_citus_stop    stop it and remove its directory (idempotent, trap-safe)
#
# The coordinator listens on CLOUD_SYNC_CITUS_PORT (default 55340), the workers on the next two.

: "${_cloud_sync_citus_dir:=}" "${_cloud_sync_citus_kit:=}"

# The kit folder, absolute: CLOUD_SYNC_CITUS_KIT is taken relative to the repository root.
_cloud_sync_citus_kit_dir() {
    (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && cd "$CLOUD_SYNC_CITUS_KIT" 2>/dev/null && pwd)
}

cloud_sync_citus_start() {
    local base=${CLOUD_SYNC_CITUS_PORT:-55340} kit port dir
    if [ -z "${CLOUD_SYNC_CITUS_KIT:-}" ]; then
        echo "citus: skipped: CLOUD_SYNC_CITUS_KIT does not name a Citus kit folder"
        return 0
    fi
    if ! kit=$(_cloud_sync_citus_kit_dir) || [ ! -x "$kit/start.sh" ]; then
        echo "citus: CLOUD_SYNC_CITUS_KIT=$CLOUD_SYNC_CITUS_KIT has no start.sh" >&2
        return 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "citus: the kit's start.sh installs Citus and runs PostgreSQL as user postgres: run as root" >&2
        return 1
    fi
    for port in "$base" $((base + 1)) $((base + 2)); do
        if _cloud_sync_port_busy "$port"; then
            echo "citus: port $port is already in use; set CLOUD_SYNC_CITUS_PORT" >&2
            return 1
        fi
    done
    dir=$(mktemp -d /tmp/cloud_sync_citus.XXXXXX) || return 1
    _cloud_sync_citus_dir=$dir _cloud_sync_citus_kit=$kit
    chmod 755 "$dir"
    if ! bash "$kit/start.sh" "$dir/cluster" "$base" 2 >"$dir/start.log" 2>&1; then
        echo "citus: the kit's start.sh failed; its output follows" >&2
        cat "$dir/start.log" "$dir"/cluster/node*.log >&2 2>/dev/null
        cloud_sync_citus_stop
        return 1
    fi
    export CLOUD_SYNC_TEST_CITUS_PORT=$base
    echo "citus: coordinator on port $base, 2 workers ($kit)"
}

cloud_sync_citus_stop() {
    local dir=$_cloud_sync_citus_dir
    [ -n "$dir" ] || return 0
    _cloud_sync_citus_dir=
    bash "$_cloud_sync_citus_kit/stop.sh" "$dir/cluster" >/dev/null 2>&1 || true
    rm -rf -- "$dir" || true
    unset CLOUD_SYNC_TEST_CITUS_PORT
}
