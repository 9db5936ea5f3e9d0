#!/usr/bin/env bash
# Checks that a built cloud_sync.so is the self-contained binary the packages ship:
#
#   tests/packaging/check_so.sh SO ARCH      ARCH: x86_64 or aarch64
#
# - it is built for ARCH;
# - it needs no library beyond libc, libm, libgcc_s, libdl, libpthread and the loader (no
#   system TLS or crypto library), read from its dynamic section (and with ldd on a machine
#   of the same architecture);
# - it exports only its two entry points (nm -D --defined-only, or readelf for another
#   architecture);
# - the newest glibc symbol version it needs is at most GLIBC_2.28 (manylinux_2_28).
# Prints what it found; exits non-zero at the first check that fails.
set -euo pipefail

so=$1 arch=$2
max_glibc=2.28
allowed_libs='libc.so.6 libm.so.6 libgcc_s.so.1 libdl.so.2 libpthread.so.0 ld-linux-x86-64.so.2 ld-linux-aarch64.so.1'
entry_points='sqlite3_cloudsync_auto_init sqlite3_cloudsync_init'

fail() {
    printf 'check_so %s: %s\n' "$so" "$*" >&2
    exit 1
}

[ -f "$so" ] || fail "no such file"
case $arch in
    x86_64) machine='Advanced Micro Devices X86-64' ;;
    aarch64) machine='AArch64' ;;
    *) fail "unknown architecture $arch" ;;
esac
readelf -h "$so" | grep -q "Machine: *$machine\$" || fail "not built for $arch"

needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
for lib in $needed; do
    [[ " $allowed_libs " == *" $lib "* ]] || fail "needs $lib (only $allowed_libs are allowed)"
done
printf 'needed: %s\n' "$needed"
if [ "$(uname -m)" = "$arch" ]; then
    printf 'ldd:\n%s\n' "$(ldd "$so")"
    for lib in $(ldd "$so" | awk '{ print $1 }'); do
        lib=${lib##*/}
        [ "$lib" = linux-vdso.so.1 ] || [[ " $allowed_libs " == *" $lib "* ]] ||
            fail "ldd lists $lib"
    done
    exported=$(nm -D --defined-only "$so" | awk '{ print $3 }' | sort | tr '\n' ' ')
else
    # readelf reads any architecture; nm may not.
    exported=$(readelf -W --dyn-syms "$so" |
        awk '$1 ~ /^[0-9]+:$/ && $7 != "UND" && $4 != "SECTION" && $4 != "FILE" && $8 != "" { print $8 }' |
        sort | tr '\n' ' ')
fi
printf 'exported: %s\n' "$exported"
[ "${exported% }" = "$entry_points" ] || fail "exports '${exported% }', not only '$entry_points'"

newest=$(readelf -W -V "$so" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
printf 'newest glibc symbol version: GLIBC_%s\n' "$newest"
[ "$(printf '%s\n%s\n' "$newest" "$max_glibc" | sort -V | tail -1)" = "$max_glibc" ] ||
    fail "needs GLIBC_$newest, newer than GLIBC_$max_glibc"
printf 'check_so %s (%s): ok, %s bytes\n' "$so" "$arch" "$(stat -c %s "$so")"
