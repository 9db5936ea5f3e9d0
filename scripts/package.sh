#!/usr/bin/env bash
# Builds everything a release ships into dist/, for Linux x86_64 and aarch64 with glibc 2.28
# or newer (cross-built with cargo-zigbuild; scripts/lib/deps.sh installs the tools):
#
#   cloud_sync-<version>-linux-<arch>.tar.gz            cloud_sync.so, for the sqlite3 shell
#   sqlite_cloud_sync-<version>-py3-none-manylinux_2_28_<arch>.whl
#                                                       Python: sqlite_cloud_sync.load(conn)
#   datasette_cloud_sync-<version>-py3-none-any.whl     Datasette plugin
#   sqlite_utils_cloud_sync-<version>-py3-none-any.whl  sqlite-utils plugin
#   sqlite-cloud-sync-<version>.tgz                     npm: load(db), getLoadablePath()
#   sqlite-cloud-sync-linux-<x64|arm64>-<version>.tgz   npm: the binary, an optional dependency
#   SHA256SUMS
#
# Every version is Cargo.toml's. Each binary is checked (tests/packaging/check_so.sh) and each
# platform wheel is checked with auditwheel before it is packed. Publishing: scripts/publish.sh.
#
#   CLOUD_SYNC_PACKAGE_ARCHS   architectures to build (default "x86_64 aarch64")
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. scripts/lib/deps.sh

archs=${CLOUD_SYNC_PACKAGE_ARCHS:-x86_64 aarch64}
dist=$root/dist
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
[ -n "$version" ] || {
    echo "package: no version in Cargo.toml" >&2
    exit 1
}

cloud_sync_install_deps
tools=$(cloud_sync_install_package_deps)
export PATH="$tools/bin:$PATH"

rm -rf -- "$dist"
mkdir -p "$dist"
stage=$(mktemp -d)
trap 'rm -rf -- "$stage"' EXIT

# node's names for the architectures.
node_arch() {
    case $1 in
        x86_64) echo x64 ;;
        aarch64) echo arm64 ;;
    esac
}

# fill TEMPLATE DEST ARCH: copies a template with its placeholders filled in.
fill() {
    sed -e "s/@VERSION@/$version/g" -e "s/@NODE_PLATFORM@/linux-$(node_arch "$3")/g" \
        -e "s/@NODE_ARCH@/$(node_arch "$3")/g" "$1" >"$2"
}

wheel() {
    "$tools/bin/python" packaging/build_wheel.py --version "$version" --out "$dist" "$@" >/dev/null
}

npm_pack() {
    (cd "$1" && npm pack --silent --pack-destination "$dist" >/dev/null)
}

for arch in $archs; do
    echo "== $arch: build (glibc 2.28)"
    target=$arch-unknown-linux-gnu
    cargo zigbuild --release --locked --quiet --target "$target.2.28"
    so=$stage/$arch/cloud_sync.so
    mkdir -p "$stage/$arch"
    cp "target/$target/release/libcloud_sync.so" "$so"
    bash tests/packaging/check_so.sh "$so" "$arch"

    echo "== $arch: tarball, wheel, npm package"
    tar -C "$stage/$arch" --owner=0 --group=0 --mtime=@0 -czf \
        "$dist/cloud_sync-$version-linux-$arch.tar.gz" cloud_sync.so
    wheel --name sqlite-cloud-sync --tag "py3-none-manylinux_2_28_$arch" \
        --summary "cloud_sync, the SQLite extension that exports and imports tables to and from Postgres" \
        --readme packaging/python/sqlite_cloud_sync.md \
        --package packaging/python/sqlite_cloud_sync --file "$so=sqlite_cloud_sync/cloud_sync.so"
    platform_wheel=$dist/sqlite_cloud_sync-$version-py3-none-manylinux_2_28_$arch.whl
    audit=$("$tools/bin/auditwheel" show "$platform_wheel")
    if ! grep -q "manylinux_2_28_$arch" <<<"$audit"; then
        printf '%s\n' "$audit" >&2
        echo "package: auditwheel does not place $platform_wheel within manylinux_2_28" >&2
        exit 1
    fi
    grep -o '"manylinux_[0-9_]*'"$arch"'"' <<<"$audit" | head -1 |
        sed 's/^/auditwheel: consistent with /'

    npm_dir=$stage/npm-$arch
    mkdir -p "$npm_dir"
    fill packaging/npm/platform/package.json "$npm_dir/package.json" "$arch"
    fill packaging/npm/platform/README.md "$npm_dir/README.md" "$arch"
    cp "$so" "$npm_dir/cloud_sync.so"
    npm_pack "$npm_dir"
done

echo "== plugins and the npm package"
wheel --name datasette-cloud-sync --tag py3-none-any \
    --summary "Datasette plugin: the cloud_sync SQLite extension and its admin page" \
    --readme packaging/python/datasette_cloud_sync.md \
    --package packaging/python/datasette_cloud_sync \
    --requires "datasette>=0.65.1,<0.66" --requires "sqlite-cloud-sync==$version" \
    --entry-point datasette:cloud_sync=datasette_cloud_sync
wheel --name sqlite-utils-cloud-sync --tag py3-none-any \
    --summary "sqlite-utils plugin that loads the cloud_sync SQLite extension" \
    --readme packaging/python/sqlite_utils_cloud_sync.md \
    --package packaging/python/sqlite_utils_cloud_sync \
    --requires "sqlite-utils>=3.34" --requires "sqlite-cloud-sync==$version" \
    --entry-point sqlite_utils:cloud_sync=sqlite_utils_cloud_sync
main=$stage/npm-main
cp -r packaging/npm/sqlite-cloud-sync "$main"
fill packaging/npm/sqlite-cloud-sync/package.json "$main/package.json" x86_64
npm_pack "$main"

(cd "$dist" && sha256sum -- * >SHA256SUMS)
echo "== dist/ (version $version)"
(cd "$dist" && ls -l --time-style=+ -- * | awk '{ printf "%10s  %s\n", $5, $NF }')
