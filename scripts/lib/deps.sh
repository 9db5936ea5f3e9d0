# shellcheck shell=bash
# Sourced. Defines cloud_sync_install_deps: installs, on Debian, whatever the
# build and the integration tests need and is not there yet.

# Prints the Debian packages that are missing, one per line. Checks what the
# scripts actually use rather than package names where that is more precise.
_cloud_sync_missing_debs() {
    # Any server version will do; pg.sh picks the newest bin dir.
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || echo postgresql
    # The Citus kit (CLOUD_SYNC_CITUS_KIT, scripts/lib/citus.sh) is built for Debian 12's
    # PostgreSQL 15 and installs into its directories.
    if [ -n "${CLOUD_SYNC_CITUS_KIT:-}" ] && [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
        echo postgresql-15
    fi
    # pgbouncer lives in /usr/sbin, which a non-root PATH may lack.
    PATH="$PATH:/usr/sbin" command -v pgbouncer >/dev/null || echo pgbouncer
    command -v sqlite3 >/dev/null || echo sqlite3
    command -v openssl >/dev/null || echo openssl
    command -v pkg-config >/dev/null || echo pkg-config
    command -v pgrep >/dev/null || echo procps
    _cloud_sync_deb_installed libclang-dev || echo libclang-dev
    _cloud_sync_deb_installed libssl-dev || echo libssl-dev
    # Tests run the Debian interpreter, not whatever python3 is first in PATH.
    /usr/bin/python3 -c 'import apsw' >/dev/null 2>&1 || echo python3-apsw
    # tests/django_host.py makes a venv for Django; Debian ships venv's ensurepip separately.
    /usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || echo python3-venv
    # tests/datasette_page.py drives Debian's Chromium through Debian's chromedriver (the same
    # version, never downloaded).
    [ -x /usr/bin/chromium ] || echo chromium
    [ -x /usr/bin/chromedriver ] || echo chromium-driver
    # npm installs tests/node; the Node that runs those tests comes from npm (scripts/lib/node.sh),
    # so any node will do here. node-gyp builds better-sqlite3 with make and g++.
    command -v node >/dev/null || echo nodejs
    command -v npm >/dev/null || echo npm
    command -v make >/dev/null || echo make
    command -v g++ >/dev/null || echo g++
    # A C compiler alone cannot link without the libc headers and crt files.
    if ! printf 'int main(void) { return 0; }\n' | cc -x c -o /dev/null - >/dev/null 2>&1; then
        echo gcc
        echo libc6-dev
    fi
}

# Installs the space-separated Debian packages in $1, quietly; prints apt's log on failure.
_cloud_sync_apt_install() {
    local log
    log=$(mktemp) || return 1
    # Word splitting of $1 is intended: it is a list of package names.
    # shellcheck disable=SC2086
    if ! {
        DEBIAN_FRONTEND=noninteractive apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                -o DPkg::Lock::Timeout=300 $1
    } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f -- "$log"
        printf 'cloud_sync: apt-get failed installing %s\n' "$1" >&2
        return 1
    fi
    rm -f -- "$log"
}

_cloud_sync_deb_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

cloud_sync_install_deps() {
    local missing
    missing=$(_cloud_sync_missing_debs | tr '\n' ' ')
    missing=${missing% }
    [ -n "$missing" ] || return 0

    if [ "$(id -u)" -ne 0 ]; then
        printf 'cloud_sync: missing packages: %s\ninstall them as root: apt-get install %s\n' \
            "$missing" "$missing" >&2
        return 1
    fi

    printf 'cloud_sync: installing %s\n' "$missing" >&2
    _cloud_sync_apt_install "$missing"
}

# Defines cloud_sync_install_bench_deps: what scripts/bench.sh needs on top of
# cloud_sync_install_deps (the tests never need these): pgloader, and GNU time
# (/usr/bin/time, for wall time and peak RSS).
_cloud_sync_missing_bench_debs() {
    command -v pgloader >/dev/null || echo pgloader
    [ -x /usr/bin/time ] || echo time
    command -v setsid >/dev/null || echo util-linux
}

cloud_sync_install_bench_deps() {
    local missing
    missing=$(_cloud_sync_missing_bench_debs | tr '\n' ' ')
    missing=${missing% }
    [ -n "$missing" ] || return 0

    if [ "$(id -u)" -ne 0 ]; then
        printf 'cloud_sync: missing packages for the benchmark: %s\ninstall them as root: apt-get install %s\n' \
            "$missing" "$missing" >&2
        return 1
    fi

    printf 'cloud_sync: installing %s (benchmark)\n' "$missing" >&2
    _cloud_sync_apt_install "$missing"
}

# Defines cloud_sync_install_package_deps: what scripts/package.sh needs on top of
# cloud_sync_install_deps: Rust's standard library for aarch64, and in a virtual environment
# of its own (printed on success) Zig and cargo-zigbuild, which link
# against glibc 2.28's symbols whatever the machine's glibc and cross-link for aarch64, and
# auditwheel, which checks the wheels against the manylinux_2_28 policy. cargo-zigbuild comes
# as the binary PyPI ships (pinned; `cargo install cargo-zigbuild --locked` builds the same
# program from source in several minutes more). The environment lives outside the source
# tree: Zig reports its library directory relative to the working directory when it can, and
# cargo-zigbuild hands that path to build scripts, which run elsewhere.
CLOUD_SYNC_ZIGLANG_VERSION=0.17.0
CLOUD_SYNC_ZIGBUILD_VERSION=0.24.0
CLOUD_SYNC_AUDITWHEEL_VERSION=6.8.2

cloud_sync_install_package_deps() {
    local venv stamp
    venv="${XDG_CACHE_HOME:-$HOME/.cache}/cloud_sync/package-tools"
    stamp="ziglang==$CLOUD_SYNC_ZIGLANG_VERSION cargo-zigbuild==$CLOUD_SYNC_ZIGBUILD_VERSION auditwheel==$CLOUD_SYNC_AUDITWHEEL_VERSION"
    rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu ||
        rustup target add aarch64-unknown-linux-gnu >&2 || return 1
    if [ "$(cat "$venv/.cloud_sync_stamp" 2>/dev/null)" != "$stamp" ]; then
        rm -rf -- "$venv"
        mkdir -p -- "$(dirname "$venv")" || return 1
        /usr/bin/python3 -m venv "$venv" >&2 || return 1
        # Word splitting of $stamp is intended: it is the list of pinned requirements.
        # shellcheck disable=SC2086
        "$venv/bin/pip" install -q --disable-pip-version-check $stamp >&2 || return 1
        printf '%s\n' "$stamp" >"$venv/.cloud_sync_stamp"
    fi
    printf '%s\n' "$venv"
}

# Defines cloud_sync_install_aarch64_deps, for tests/packaging/aarch64.sh: qemu-user and
# Debian's own arm64 sqlite3 with the arm64 libraries it needs (Debian multiarch: the arm64
# architecture is added to dpkg once; the libraries install beside the machine's own). The
# arm64 sqlite3 binary cannot install beside the machine's, so it is unpacked into a cache
# folder. Prints that folder's sqlite3. Needs root the first time.
cloud_sync_install_aarch64_deps() {
    local cache=/var/cache/cloud_sync/sqlite3-arm64 debs='' deb
    if ! command -v qemu-aarch64 >/dev/null; then
        debs='qemu-user'
    fi
    for deb in libc6 libsqlite3-0 libreadline8 zlib1g; do
        _cloud_sync_deb_installed "$deb:arm64" || debs="$debs $deb:arm64"
    done
    debs=${debs# }
    if [ -n "$debs" ] || [ ! -x "$cache/usr/bin/sqlite3" ]; then
        if [ "$(id -u)" -ne 0 ]; then
            printf 'cloud_sync: the aarch64 check needs, as root: dpkg --add-architecture arm64; apt-get install qemu-user libc6:arm64 libsqlite3-0:arm64 libreadline8:arm64 zlib1g:arm64\n' >&2
            return 1
        fi
        dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64 || return 1
    fi
    if [ -n "$debs" ]; then
        printf 'cloud_sync: installing %s\n' "$debs" >&2
        _cloud_sync_apt_install "$debs" || return 1
    fi
    if [ ! -x "$cache/usr/bin/sqlite3" ]; then
        local tmp
        tmp=$(mktemp -d) || return 1
        # apt-get download writes as the _apt user: give it the folder.
        chown _apt "$tmp" 2>/dev/null || true
        (cd "$tmp" && apt-get download -q sqlite3:arm64 >/dev/null 2>&1) || {
            rm -rf -- "$tmp"
            echo 'cloud_sync: apt-get download sqlite3:arm64 failed' >&2
            return 1
        }
        mkdir -p -- "$cache" && dpkg -x "$tmp"/sqlite3_*_arm64.deb "$cache" || {
            rm -rf -- "$tmp"
            return 1
        }
        rm -rf -- "$tmp"
    fi
    printf '%s\n' "$cache/usr/bin/sqlite3"
}

