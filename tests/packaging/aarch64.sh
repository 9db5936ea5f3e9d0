#!/usr/bin/env bash
# Runs the aarch64 library of dist/ on this x86_64 machine: Debian's own arm64 sqlite3 under
# qemu-user (scripts/lib/deps.sh, cloud_sync_install_aarch64_deps) loads the .so from the
# aarch64 tarball and does a whole session against the tests' PostgreSQL: saves a connection,
# tests it (TLS verified), a dry run and the confirmed export of a table holding every value
# class, then an import into a new database, whose rows must equal the source's (typeof and
# quote of every value, compared by the machine's own sqlite3). The password must not appear in
# anything printed. It checks the machine code (ring's aarch64 assembly, rustls, tokio), not the
# speed: qemu translates every instruction.
#
# Needs dist/ (scripts/package.sh) and the CLOUD_SYNC_TEST_* variables of scripts/lib/pg.sh.
# Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/deps.sh

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
sqlite3_arm64=$(cloud_sync_install_aarch64_deps)
work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT
tar -C "$work" -xzf "dist/cloud_sync-$version-linux-aarch64.tar.gz"
bash tests/packaging/check_so.sh "$work/cloud_sync.so" aarch64 >/dev/null
export CLOUD_SYNC_ENCRYPTION_KEY=9d2b7c4e1a6f3d8b0c5e2a7f4b1d9c6e3a8f5b2d7c4e1a9f6b3d0c8e5a2f7b4d

arm64() {
    qemu-aarch64 -L / "$sqlite3_arm64" -bail "$@"
}

# The session's SQL, written by Python so that the password is quoted as SQL text exactly.
schema="cs_aarch64_$$"
/usr/bin/python3 - "$work" "$schema" <<'PY'
import os, sys
work, schema = sys.argv[1], sys.argv[2]
env = os.environ
def sql(text):
    return "'" + text.replace("'", "''") + "'"
def kw(text):
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
conn = (f"host={env['CLOUD_SYNC_TEST_PG_HOST']} port={env['CLOUD_SYNC_TEST_PG_PORT']} "
        f"user={kw(env['CLOUD_SYNC_TEST_PG_USER'])} password={kw(env['CLOUD_SYNC_TEST_PG_PASSWORD'])} "
        f"dbname={kw(env['CLOUD_SYNC_TEST_PG_DB'])} sslmode=verify-full "
        f"sslrootcert={kw(env['CLOUD_SYNC_TEST_PG_CA'])}")
save = f"SELECT cloud_sync_save('pg', {sql(conn)});\n"
options = f"json_object('schema', {sql(schema)}, 'tables', json_array('t'))"
with open(os.path.join(work, "export.sql"), "w") as f:
    f.write(f".load {work}/cloud_sync\n" + save + """
CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER, price NUMERIC(10,2),
                ratio REAL, data BLOB, note TEXT);
INSERT INTO t VALUES
  (1, 'plain', 7, 19.5, 0.1, x'00ff10', NULL),
  (2, 'é, "quoted", ''single''', -9223372036854775808, 18, -1.5e300, x'', 'line
break'),
  (3, '日本語 🎉', 9223372036854775807, 0.01, 3.0, NULL, '');
SELECT json_extract(cloud_sync_test('pg'), '$.tls', '$.verified');
""" + f"""SELECT json_extract(cloud_sync_run(cloud_sync_export('pg', 1, {options})), '$.status');
SELECT json_extract(cloud_sync_run(cloud_sync_export('pg', 0, json_set({options}, '$.confirm',
    (SELECT max(id) FROM cloud_sync_jobs)))), '$.status', '$.summary.totals.inserts');
""")
with open(os.path.join(work, "import.sql"), "w") as f:
    f.write(f".load {work}/cloud_sync\n" + save + f"""
SELECT json_extract(cloud_sync_run(cloud_sync_import('pg', 0, 'skip',
    json_object('schema', {sql(schema)}, 'create_tables', json('true')))), '$.status');
""")
PY

rows="SELECT id, typeof(name), quote(name), typeof(qty), quote(qty), typeof(price), quote(price),
      typeof(ratio), quote(ratio), typeof(data), quote(data), typeof(note), quote(note)
      FROM t ORDER BY id"
exported=$(arm64 "$work/a.db" <"$work/export.sql" 2>&1) || {
    printf '%s\n' "$exported" >&2
    exit 1
}
imported=$(arm64 "$work/b.db" <"$work/import.sql" 2>&1) || {
    printf '%s\n' "$imported" >&2
    exit 1
}
for output in "$exported" "$imported"; do
    if grep -qF -- "$CLOUD_SYNC_TEST_PG_PASSWORD" <<<"$output"; then
        echo "aarch64: the password appears in what the session printed" >&2
        exit 1
    fi
done
expected=$'1\n[true,true]\nsucceeded\n["succeeded",3]'
if [ "$exported" != "$expected" ]; then
    printf 'aarch64: the export session printed:\n%s\nexpected:\n%s\n' "$exported" "$expected" >&2
    exit 1
fi
if [ "$imported" != $'1\nsucceeded' ]; then
    printf 'aarch64: the import session printed:\n%s\n' "$imported" >&2
    exit 1
fi
source_rows=$(sqlite3 "$work/a.db" "$rows")
if [ "$(sqlite3 "$work/b.db" "$rows")" != "$source_rows" ]; then
    printf 'aarch64: imported rows differ:\n%s\nfrom the source:\n%s\n' \
        "$(sqlite3 "$work/b.db" "$rows")" "$source_rows" >&2
    exit 1
fi
echo "aarch64 under qemu: cloud_sync $version from the aarch64 tarball: TLS verified, export and import of $(sqlite3 "$work/a.db" 'SELECT count(*) FROM t') rows exact"
echo "packaging aarch64: 1 passed, 0 failed"
