# shellcheck shell=bash
# Sourced. The Node hosts (tests/node): better-sqlite3 and node:sqlite load the built extension;
# pglite.test.mjs exports to PGlite's socket server (@electric-sql/pglite-socket, in the lock).
#
#   cloud_sync_node_install   install tests/node with `npm ci`; skipped while the lock is unchanged
#   cloud_sync_node_test      run tests/node/*.test.mjs with `node --test` (needs CLOUD_SYNC_LIB
#                             and the CLOUD_SYNC_TEST_* contract of pg.sh)
#
# Only the npm registry is reachable in CI, so the Node that runs the tests comes from it too
# (node-linux-<arch>, pinned in the lock; node:sqlite needs Node >= 22.13, Debian 12 has 18), and
# better-sqlite3 is built from source against that Node's own headers: its prebuilt binaries
# are downloaded from GitHub.

_cloud_sync_node_dir() {
    (cd "$(dirname "${BASH_SOURCE[0]}")/../../tests/node" && pwd)
}

# The directory of the Node that the lock installed for this machine.
_cloud_sync_node_home() {
    local arch
    case "$(uname -m)" in
        x86_64) arch=x64 ;;
        aarch64) arch=arm64 ;;
        *)
            printf 'cloud_sync node: no Node package for %s in tests/node\n' "$(uname -m)" >&2
            return 1
            ;;
    esac
    printf '%s/node_modules/node-linux-%s\n' "$(_cloud_sync_node_dir)" "$arch"
}

# What the installed tree was built from: the lock, and the machine.
_cloud_sync_node_stamp() {
    printf '%s %s\n' "$(sha256sum <"$(_cloud_sync_node_dir)/package-lock.json")" "$(uname -m)"
}

cloud_sync_node_install() {
    local dir home stamp log
    dir=$(_cloud_sync_node_dir)
    home=$(_cloud_sync_node_home) || return 1
    stamp=$(_cloud_sync_node_stamp)
    if [ "$(cat "$dir/node_modules/.cloud_sync_stamp" 2>/dev/null)" = "$stamp" ]; then
        return 0
    fi
    log=$(mktemp) || return 1
    # --ignore-scripts: better-sqlite3's install script would first try GitHub for a prebuilt
    # binary. It is built instead against the headers of the Node from the lock (nodedir: they
    # set the addon's ABI, and nothing is fetched from nodejs.org).
    if ! {
        (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) &&
            (cd "$dir/node_modules/better-sqlite3" &&
                npm_config_nodedir=$home npm run --silent build-release)
    } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f -- "$log"
        printf 'cloud_sync node: installing tests/node failed\n' >&2
        return 1
    fi
    rm -f -- "$log"
    printf '%s\n' "$stamp" >"$dir/node_modules/.cloud_sync_stamp"
}

cloud_sync_node_test() {
    local home output status=0
    home=$(_cloud_sync_node_home) || return 1
    output=$("$home/bin/node" --test --test-reporter=spec "$(_cloud_sync_node_dir)"/*.test.mjs 2>&1) ||
        status=$?
    printf '%s\n' "$output"
    # The tests check every value and error they see; this also covers what they print.
    if grep -qF -- "$CLOUD_SYNC_TEST_PG_PASSWORD" <<<"$output"; then
        printf 'cloud_sync node: the password appears in the output of the Node tests\n' >&2
        return 1
    fi
    return "$status"
}
