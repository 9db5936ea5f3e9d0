#!/usr/bin/env bash
# Benchmark: cloud_sync against psql \copy and pgloader, on a deterministic dataset.
#
#   scripts/bench.sh                                    100,000 and 1,000,000 rows, 5 runs each
#   CLOUD_SYNC_BENCH_SIZES="10000 20000" CLOUD_SYNC_BENCH_RUNS=3 scripts/bench.sh
#   scripts/bench.sh --latency [--rtt MS]               the latency scenario only (default 25 ms)
#   scripts/bench.sh --citus                            the Citus scenario only (3 runs each)
#
# For each size, in each round, the ways run one after the other (A, B, C, ... then again):
#   copy_csv   psql \copy from a ready CSV file (the COPY limit)
#   copy_pipe  sqlite3 -csv | psql \copy FROM STDIN
#   pgloader   pgloader sqlite:///... postgresql://... with its defaults
#   cs_dry     cloud_sync (a) dry-run export into an empty remote
#   cs_full    cloud_sync (b) the first full export (confirming (a))
#   cs_same    cloud_sync (c) full re-export with no change (confirmed by an untimed dry run)
#   cs_10pct   cloud_sync (d) full re-export after updating 10% of the rows locally
#   cs_import  cloud_sync (e) import of everything into an empty database with the same schema
#   cs_incr    cloud_sync (f) incremental export after updating 1% of the rows of the tables
#              tracked before an (untimed) full export
# then, in the same round, the tracking overhead: the same INSERTs, UPDATEs and DELETEs timed into an
# untracked and a tracked table (Python's sqlite3); and writes bench/results.md. See
# bench/README.md.
#
# Environment:
#   CLOUD_SYNC_BENCH_SIZES    rows per dataset, space separated (default "100000 1000000")
#   CLOUD_SYNC_BENCH_RUNS     runs per way and size (default 5)
#   CLOUD_SYNC_BENCH_PG_URL   use this PostgreSQL instead of a throwaway one; the benchmark
#                             creates and drops the schemas cloud_sync_bench,
#                             cloud_sync_bench_copy and cloud_sync_bench_pgloader in it
#   CLOUD_SYNC_BENCH_LIB      a built libcloud_sync.so to use instead of `cargo build --release`
#   CLOUD_SYNC_BENCH_RESULTS  where to write the results (default bench/results.md)
#   CLOUD_SYNC_PG_PORT, CLOUD_SYNC_PGBOUNCER_PORT   ports of the throwaway PostgreSQL (pg.sh)
#   CLOUD_SYNC_CITUS_KIT      --citus: the Citus kit folder, relative to the repository root
#                             (default ../shared/citus); CLOUD_SYNC_CITUS_PORT its first port
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# --latency: instead of the throughput ways, the latency scenario (scripts/lib/bench_latency.py):
# an app of 50 tracked tables, each job direct and through scripts/lib/delay_proxy.py adding
# --rtt MS per round trip, next to psql over the same link, then a schedule's steady state over
# that link; its section of the results file is rewritten, the rest kept.
# --citus: instead of the throughput ways, the Citus scenario (scripts/lib/bench_citus.py): a
# coordinator and 2 workers started from the kit CLOUD_SYNC_CITUS_KIT names (scripts/lib/citus.sh)
# beside the throwaway PostgreSQL; for each size, in each round, for plain PostgreSQL and the
# coordinator with local, distributed (items by id, events by device) and reference tables:
# psql making the tables and \copy-ing the CSV files in one transaction (the anchor), then the
# dry-run export into an empty schema and the full export confirming it, the remote data
# checked against the local after each; its section of the results file is rewritten, the rest
# kept. CLOUD_SYNC_BENCH_RUNS defaults to 3 here.
latency=
citus=
rtt=25
while [ $# -gt 0 ]; do
    case $1 in
    --latency) latency=1 ;;
    --citus) citus=1 ;;
    --rtt)
        [ $# -ge 2 ] || { echo "bench: --rtt needs milliseconds" >&2; exit 2; }
        rtt=$2
        latency=1
        shift
        ;;
    *) echo "bench: unknown argument $1 (see the header of scripts/bench.sh)" >&2; exit 2 ;;
    esac
    shift
done
if ! [[ $rtt =~ ^[0-9]+$ ]] || [ "$rtt" -lt 1 ]; then
    echo "bench: --rtt: '$rtt' is not a whole number of milliseconds >= 1" >&2
    exit 2
fi
if [ -n "$latency" ] && [ -n "$citus" ]; then
    echo "bench: --latency and --citus are separate runs" >&2
    exit 2
fi
. scripts/lib/deps.sh
. scripts/lib/pg.sh
. scripts/lib/citus.sh

py=/usr/bin/python3
helper=$root/scripts/lib/bench_data.py
sizes=${CLOUD_SYNC_BENCH_SIZES:-100000 1000000}
runs=${CLOUD_SYNC_BENCH_RUNS:-${citus:+3}}
runs=${runs:-5}
results=${CLOUD_SYNC_BENCH_RESULTS:-bench/results.md}
data_root=$root/bench/.data
schema_cs=cloud_sync_bench
schema_copy=cloud_sync_bench_copy
schema_pgl=cloud_sync_bench_pgloader

die() {
    printf 'bench: %s\n' "$*" >&2
    exit 1
}

for n in $sizes; do
    if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -lt 10 ]; then
        die "CLOUD_SYNC_BENCH_SIZES: '$n' is not a row count >= 10"
    fi
done
[ -n "${sizes// /}" ] || die "CLOUD_SYNC_BENCH_SIZES is empty"
if ! [[ $runs =~ ^[0-9]+$ ]] || [ "$runs" -lt 1 ]; then
    die "CLOUD_SYNC_BENCH_RUNS: '$runs' is not a count >= 1"
fi

# ---------------------------------------------------------------------------------------------
# Clean-up: runs on every exit, also on failure and on INT/TERM.

work=
bench_child=
pg_started=
schemas_made=

bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # The timed command runs in its own process group (setsid): end that group only.
    if [ -n "$bench_child" ]; then
        kill -TERM -- "-$bench_child" 2>/dev/null || kill -TERM "$bench_child" 2>/dev/null || true
        wait "$bench_child" 2>/dev/null || true
    fi
    # Our schemas on a server we did not start: dropped, best effort.
    if [ -n "$schemas_made" ] && [ -z "$pg_started" ]; then
        pg_sql "SET client_min_messages = warning" \
            "DROP SCHEMA IF EXISTS $schema_cs, $schema_copy, $schema_pgl CASCADE" \
            >/dev/null 2>&1 || true
    fi
    cloud_sync_citus_stop
    if [ -n "$pg_started" ]; then
        cloud_sync_pg_stop
    fi
    if [ -n "$work" ]; then
        rm -rf -- "$work"
    fi
    if [ "$rc" -ne 0 ]; then
        printf 'bench: failed (exit %s); stopped what it started\n' "$rc" >&2
    fi
    exit "$rc"
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Tools, build, PostgreSQL

cloud_sync_install_deps
cloud_sync_install_bench_deps

work=$(mktemp -d "${TMPDIR:-/tmp}/cloud_sync_bench.XXXXXX")

# The real psql binary: Debian's /usr/bin/psql is a Perl wrapper whose memory would count as
# psql's peak RSS (it execs psql in the same process).
# shellcheck disable=SC2012 # version directories are plain numbers
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
psql_bin=$pg_bin/psql
[ -x "$psql_bin" ] || die "no psql under /usr/lib/postgresql"

if [ -n "${CLOUD_SYNC_BENCH_LIB:-}" ]; then
    src_lib=$CLOUD_SYNC_BENCH_LIB
    [ -f "$src_lib" ] || src_lib=$src_lib.so
    [ -f "$src_lib" ] || die "CLOUD_SYNC_BENCH_LIB: no such file $CLOUD_SYNC_BENCH_LIB"
else
    echo "== cargo build --release"
    cargo build --release --locked --quiet
    src_lib=$root/target/release/libcloud_sync.so
fi
# A copy, so that a rebuild in the work tree during the run cannot change the library.
lib=$work/libcloud_sync.so
cp -- "$src_lib" "$lib"

if [ -z "${CLOUD_SYNC_ENCRYPTION_KEY:-}${CLOUD_SYNC_ENCRYPTION_KEY_FILE:-}" ]; then
    CLOUD_SYNC_ENCRYPTION_KEY=$(openssl rand -hex 32)
    export CLOUD_SYNC_ENCRYPTION_KEY
fi

if [ -n "${CLOUD_SYNC_BENCH_PG_URL:-}" ]; then
    url=$CLOUD_SYNC_BENCH_PG_URL
    admin=
else
    echo "== starting a throwaway PostgreSQL (scripts/lib/pg.sh)"
    pg_started=1
    cloud_sync_pg_start
    url=$(cloud_sync_pg_verified_url)
    admin=$CLOUD_SYNC_TEST_PG_ADMIN_URL
fi
# The parts of the URL, set by pgparts.
pg_host='' pg_port='' pg_user='' pg_password='' pg_dbname='' pg_sslmode='' pg_sslrootcert='' pg_url_nopw=''
eval "$("$py" "$helper" pgparts "$url")"
# psql and pgloader read the password from the environment, not from their arguments.
if [ -n "$pg_password" ]; then
    export PGPASSWORD=$pg_password
fi

# pg_sql SQL...: runs statements as the benchmark's user; prints unaligned tuples.
pg_sql() {
    local args=() s
    for s in "$@"; do args+=(-c "$s"); done
    "$psql_bin" -X -q -At -v ON_ERROR_STOP=1 "$pg_url_nopw" "${args[@]}"
}

# pgloader takes sslmode up to require; with a root certificate file it verifies the server
# against it (OpenSSL reads SSL_CERT_FILE).
case $pg_sslmode in
verify-ca | verify-full | require) pgl_sslmode=require ;;
*) pgl_sslmode=$pg_sslmode ;;
esac
pgl_url="postgresql://$("$py" -c 'import sys, urllib.parse as u; print(u.quote(sys.argv[1], safe=""))' "$pg_user")@$pg_host:$pg_port/$pg_dbname?sslmode=$pgl_sslmode"
pgl_env=()
if [ -n "$pg_sslrootcert" ] && [ "$pg_sslrootcert" != system ]; then
    pgl_env=(SSL_CERT_FILE="$pg_sslrootcert")
fi

pg_version=$(pg_sql 'SHOW server_version')
schemas_made=1

if [ -n "$latency" ]; then
    [ -n "$admin" ] || die "--latency needs the throwaway server (it creates and drops schemas as its superuser)"
    echo "== latency scenario: $rtt ms per round trip, $runs run(s)"
    "$py" "$root/scripts/lib/bench_latency.py" run "$lib" "$url" "$admin" "$rtt" "$runs" "$work/latency.tsv"
    mkdir -p "$(dirname "$results")"
    "$py" "$root/scripts/lib/bench_latency.py" report "$work/latency.tsv" "$rtt" "$results"
    echo "bench: wrote the latency section of $results"
    exit 0
fi

# settle: before each timed run, on the throwaway server only, a CHECKPOINT so that no run
# pays for the previous run's dirty pages.
settle() {
    if [ -n "$admin" ]; then
        "$psql_bin" -X -q -v ON_ERROR_STOP=1 "$admin" -c CHECKPOINT >/dev/null
    fi
}

# fresh_schema NAME: drops and recreates it, empty.
fresh_schema() {
    pg_sql "SET client_min_messages = warning" "DROP SCHEMA IF EXISTS $1 CASCADE" \
        "CREATE SCHEMA $1" >/dev/null
}

# ---------------------------------------------------------------------------------------------
# Timing

raw=$work/raw.tsv
meta=$work/meta.tsv
printf 'rows\tround\tway\twall_s\trss_kib\tjob_ms\n' >"$raw"
: >"$meta"

# timed ROWS ROUND WAY CMD...: runs CMD under GNU time in its own process group; stdout goes
# to $work/out, stderr to $work/err. Sets wall (s) and rss (KiB). When CMD fails, prints its
# output and returns 1 (which ends the benchmark, under set -e, unless the caller tests it).
timed() {
    local rows=$1 round=$2 way=$3
    shift 3
    settle
    setsid -w /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out" 2>"$work/err" &
    bench_child=$!
    if ! wait "$bench_child"; then
        bench_child=
        printf 'bench: %s (%s rows, round %s) failed:\n' "$way" "$rows" "$round" >&2
        tail -n 40 "$work/time" "$work/err" "$work/out" >&2 2>/dev/null || true
        return 1
    fi
    bench_child=
    read -r wall rss < <(tail -n 1 "$work/time")
}

# record ROWS ROUND WAY [JOB_MS]: appends the last timed run.
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$wall" "$rss" "${4:-}" >>"$raw"
    printf '  %-10s %8.2f s  %7.1f MiB%s\n' "$3" "$wall" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" \
        "${4:+  (job ${4} ms)}"
}

# cs_sql DB SQL: one statement in the sqlite3 shell with the extension loaded. Timed runs use
# the same command line: sqlite3 -batch -bail DB ".load LIB" SQL.
cs_sql() {
    sqlite3 -batch -bail "$1" ".load $lib" "$2"
}

# save_connection DB: saves the benchmark's connection as 'b' (the URL goes through stdin, so
# the password never appears in a process's arguments).
save_connection() {
    printf ".load %s\nSELECT cloud_sync_save('b', '%s');\n" "$lib" "${url//\'/\'\'}" |
        sqlite3 -batch -bail "$1" >/dev/null
}

# job_fields FILE: "id total_ms inserts updates unchanged" of a cloud_sync_run() result;
# fails unless the job succeeded.
job_fields() {
    "$py" "$helper" job "$1"
}

# mode_fields FILE: "id total_ms modes tables source_rows changes inserts updates unchanged
# deletes" of a cloud_sync_run() result (modes: the tables' modes, distinct, joined by ',');
# fails unless the job succeeded.
mode_fields() {
    "$py" "$helper" job-modes "$1"
}

# track_tables DB: cloud_sync_track() of items and events; fails unless both are new.
track_tables() {
    local got
    got=$(cs_sql "$1" "SELECT json_extract(cloud_sync_track('items'), '\$.status');
                       SELECT json_extract(cloud_sync_track('events'), '\$.status');")
    [ "$got" = $'tracked\ntracked' ] || die "cloud_sync_track of items and events in $1: got '${got//$'\n'/ | }', expected 'tracked' twice"
}

remote_checksum() {
    "$psql_bin" -X -q -At -v ON_ERROR_STOP=1 "$pg_url_nopw" -f <("$py" "$helper" pg-checksum-sql "$1")
}

# expect_same WHAT LOCAL REMOTE: fails the benchmark when the two checksums differ.
expect_same() {
    if [ "$2" != "$3" ]; then
        printf 'bench: CHECK FAILED: %s\n  local:  %s\n  remote: %s\n' "$1" "${2//$'\n'/ | }" \
            "${3//$'\n'/ | }" >&2
        exit 1
    fi
}

# remote_count SCHEMA: rows in SCHEMA.items + SCHEMA.events.
remote_count() {
    pg_sql "SELECT (SELECT count(*) FROM $1.items) + (SELECT count(*) FROM $1.events)"
}

# wait_backends_gone: the cloud_sync session of the process that just exited may still be
# closing (and flushing its statistics) on the server.
wait_backends_gone() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(pg_sql "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                       AND application_name = 'cloud_sync' AND pid <> pg_backend_pid()")" = 0 ] && return 0
        sleep 0.1
    done
}

# table_counters: "n_tup_ins n_tup_upd n_tup_del" summed over the two cloud_sync tables.
table_counters() {
    pg_sql "SELECT coalesce(sum(n_tup_ins), 0) || ' ' || coalesce(sum(n_tup_upd), 0) || ' '
                   || coalesce(sum(n_tup_del), 0)
              FROM pg_stat_user_tables
             WHERE schemaname = '$schema_cs' AND relname IN ('items', 'events')"
}

# table_stats: "n_tup_upd n_dead_tup" summed over the two cloud_sync tables.
table_stats() {
    pg_sql "SELECT coalesce(sum(n_tup_upd), 0) || ' ' || coalesce(sum(n_dead_tup), 0)
              FROM pg_stat_user_tables
             WHERE schemaname = '$schema_cs' AND relname IN ('items', 'events')"
}

# ---------------------------------------------------------------------------------------------
# Data

dataset_version=$("$py" "$helper" version)

# prepare_dataset ROWS: bench/.data/v<version>-<rows>/{data.sqlite,items.csv,events.csv},
# generated once and reused; sets dataset_dir and writes the dataset's checksum to
# $work/checksum.
prepare_dataset() {
    local rows=$1 dir
    dir=$data_root/v$dataset_version-$rows
    mkdir -p "$dir"
    if [ ! -f "$dir/data.sqlite" ]; then
        echo "== generating $rows rows into $dir/data.sqlite"
        "$py" "$helper" generate "$rows" "$dir/data.sqlite"
    fi
    if [ ! -f "$dir/items.csv" ] || [ ! -f "$dir/events.csv" ]; then
        echo "== writing the CSV files for psql \\copy (sqlite3 -csv)"
        sqlite3 -csv "$dir/data.sqlite" "$q_items" >"$dir/items.csv.tmp"
        sqlite3 -csv "$dir/data.sqlite" "$q_events" >"$dir/events.csv.tmp"
        mv "$dir/items.csv.tmp" "$dir/items.csv"
        mv "$dir/events.csv.tmp" "$dir/events.csv"
    fi
    dataset_dir=$dir
    "$py" "$helper" checksum "$dir/data.sqlite" >"$work/checksum"
}

# The rows as CSV for COPY: blobs as bytea hex input ('\x...'); NULL as an empty field.
# shellcheck disable=SC2016
q_items="SELECT id, name, price, qty, created_at, '\\x' || hex(payload), note FROM items"
q_events="SELECT device, seq, value FROM events"

# The remote tables for the psql ways: the types and keys cloud_sync creates.
copy_ddl="CREATE TABLE $schema_copy.items (id bigint PRIMARY KEY, name text, price double precision,
            qty bigint, created_at text, payload bytea, note text);
          CREATE TABLE $schema_copy.events (device text, seq bigint, value double precision,
            PRIMARY KEY (device, seq))"

# ---------------------------------------------------------------------------------------------
# The ways

way_copy_csv() {
    local rows=$1 round=$2
    fresh_schema "$schema_copy"
    pg_sql "$copy_ddl" >/dev/null
    timed "$rows" "$round" copy_csv "$psql_bin" -X -q -v ON_ERROR_STOP=1 -1 "$pg_url_nopw" \
        -c "\\copy $schema_copy.items FROM '$dataset_dir/items.csv' WITH (FORMAT csv)" \
        -c "\\copy $schema_copy.events FROM '$dataset_dir/events.csv' WITH (FORMAT csv)"
    [ "$(remote_count "$schema_copy")" = "$rows" ] || die "copy_csv loaded $(remote_count "$schema_copy") of $rows rows"
    record "$rows" "$round" copy_csv
}

way_copy_pipe() {
    local rows=$1 round=$2
    fresh_schema "$schema_copy"
    pg_sql "$copy_ddl" >/dev/null
    # shellcheck disable=SC2016 # expanded by the inner shell
    timed "$rows" "$round" copy_pipe bash -c 'set -euo pipefail
        sqlite3 -csv "$1" "$2" | "$4" -X -q -v ON_ERROR_STOP=1 "$5" -c "\\copy $6.items FROM STDIN WITH (FORMAT csv)"
        sqlite3 -csv "$1" "$3" | "$4" -X -q -v ON_ERROR_STOP=1 "$5" -c "\\copy $6.events FROM STDIN WITH (FORMAT csv)"' \
        bench "$dataset_dir/data.sqlite" "$q_items" "$q_events" "$psql_bin" "$pg_url_nopw" "$schema_copy"
    [ "$(remote_count "$schema_copy")" = "$rows" ] || die "copy_pipe loaded $(remote_count "$schema_copy") of $rows rows"
    record "$rows" "$round" copy_pipe
}

way_pgloader() {
    local rows=$1 round=$2 loaded
    # pgloader creates its tables in the first schema of the search path (public by default):
    # a fresh, empty schema of its own each run.
    fresh_schema "$schema_pgl"
    rm -rf -- "$work/pgloader"
    # A pgloader failure (say, its heap exhausted) is reported, and the other ways go on.
    if ! timed "$rows" "$round" pgloader env "${pgl_env[@]}" pgloader --root-dir "$work/pgloader" \
        --set "search_path='$schema_pgl'" "sqlite://$dataset_dir/data.sqlite" "$pgl_url"; then
        pgloader_failed "$rows" "$round" "$(grep -m 1 -E 'FATAL|ERROR|KABOOM|exhausted' "$work/out" "$work/err" 2>/dev/null |
            cut -d: -f2- | cut -c1-200)"
        return 0
    fi
    loaded=$(pg_sql "SELECT (SELECT count(*) FROM $schema_pgl.items) + (SELECT count(*) FROM $schema_pgl.events)" 2>/dev/null) ||
        loaded="?"
    if [ "$loaded" != "$rows" ]; then
        tail -n 40 "$work/out" "$work/err" >&2
        pgloader_failed "$rows" "$round" "it exited 0 but loaded $loaded of $rows rows"
        return 0
    fi
    record "$rows" "$round" pgloader
}

# pgloader_failed ROWS ROUND REASON
pgloader_failed() {
    printf '  %-10s FAILED: %s (reported; the benchmark goes on)\n' pgloader "${3:-see above}"
    printf 'failed\t%s\t%s\tpgloader\t%s\n' "$1" "$2" "${3:-exit status non-zero}" >>"$meta"
}

# The six cloud_sync steps, in order, on one working copy of the dataset.
way_cloud_sync() {
    local rows=$1 round=$2 db=$work/work.sqlite imp=$work/import.sqlite
    local dry_id ms ins upd same local_sum remote_sum before after xid newer changed got
    local cs_opts="'schema', '$schema_cs'"
    fresh_schema "$schema_cs"
    rm -f -- "$db" "$db-journal" "$imp" "$imp-journal"
    cp -- "$dataset_dir/data.sqlite" "$db"
    save_connection "$db"

    # (a) dry run into an empty remote
    timed "$rows" "$round" cs_dry sqlite3 -batch -bail "$db" ".load $lib" \
        "SELECT cloud_sync_run(cloud_sync_export('b', 1, json_object($cs_opts)))"
    read -r dry_id ms ins upd same < <(job_fields "$work/out")
    [ "$ins" = "$rows" ] || die "(a) dry run: $ins inserts previewed, expected $rows"
    record "$rows" "$round" cs_dry "$ms"

    # (b) the first full export, confirming (a)
    timed "$rows" "$round" cs_full sqlite3 -batch -bail "$db" ".load $lib" \
        "SELECT cloud_sync_run(cloud_sync_export('b', 0, json_object('confirm', $dry_id, $cs_opts)))"
    read -r _ ms ins upd same < <(job_fields "$work/out")
    [ "$ins" = "$rows" ] || die "(b) full export: $ins inserts, expected $rows"
    record "$rows" "$round" cs_full "$ms"
    remote_sum=$(remote_checksum "$schema_cs")
    expect_same "remote data after the first full export ($rows rows, round $round)" \
        "$(cat "$work/checksum")" "$remote_sum"
    # The steady state a later export meets: autovacuum has been through the new rows.
    pg_sql "VACUUM (ANALYZE) $schema_cs.items, $schema_cs.events" >/dev/null

    # (c) re-export with no change, confirmed by a fresh (untimed) dry run
    cs_sql "$db" "SELECT cloud_sync_run(cloud_sync_export('b', 1, json_object($cs_opts)))" >"$work/out"
    read -r dry_id _ < <(job_fields "$work/out")
    wait_backends_gone
    before=$(table_stats)
    xid=$(pg_sql "SELECT txid_current() % 4294967296")
    timed "$rows" "$round" cs_same sqlite3 -batch -bail "$db" ".load $lib" \
        "SELECT cloud_sync_run(cloud_sync_export('b', 0, json_object('confirm', $dry_id, $cs_opts)))"
    read -r _ ms ins upd same < <(job_fields "$work/out")
    wait_backends_gone
    after=$(table_stats)
    # Rows with a version newer than the transaction taken just before the run.
    newer=$(pg_sql "SELECT (SELECT count(*) FROM $schema_cs.items WHERE age(xmin) < age('$xid'::xid))
                         + (SELECT count(*) FROM $schema_cs.events WHERE age(xmin) < age('$xid'::xid))")
    local upd_delta=$((${after% *} - ${before% *})) dead_delta=$((${after#* } - ${before#* }))
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' rewritten "$rows" "$round" "$newer" "$upd_delta" \
        "$dead_delta" "$ins/$upd/$same" >>"$meta"
    if [ "$ins" != 0 ] || [ "$upd" != 0 ] || [ "$same" != "$rows" ]; then
        die "(c) re-export with no change: the job reported $ins inserts, $upd updates, $same unchanged"
    fi
    record "$rows" "$round" cs_same "$ms"

    # (d) 10% of the rows updated locally, then an (untimed) dry run and the timed export
    changed=$(sqlite3 -batch -bail "$db" \
        "SELECT (SELECT count(*) FROM items WHERE id % 10 = 0) + (SELECT count(*) FROM events WHERE seq % 10 = 0);
         UPDATE items SET price = price + 1 WHERE id % 10 = 0;
         UPDATE events SET value = value + 1 WHERE seq % 10 = 0;")
    cs_sql "$db" "SELECT cloud_sync_run(cloud_sync_export('b', 1, json_object($cs_opts)))" >"$work/out"
    read -r dry_id _ < <(job_fields "$work/out")
    timed "$rows" "$round" cs_10pct sqlite3 -batch -bail "$db" ".load $lib" \
        "SELECT cloud_sync_run(cloud_sync_export('b', 0, json_object('confirm', $dry_id, $cs_opts)))"
    read -r _ ms ins upd same < <(job_fields "$work/out")
    if [ "$ins" != 0 ] || [ "$upd" != "$changed" ]; then
        die "(d) re-export after updating $changed rows: the job reported $ins inserts, $upd updates"
    fi
    record "$rows" "$round" cs_10pct "$ms"
    local_sum=$("$py" "$helper" checksum "$db")
    remote_sum=$(remote_checksum "$schema_cs")
    expect_same "remote data after the 10% re-export ($rows rows, round $round)" "$local_sum" "$remote_sum"
    printf '%s\t%s\t%s\t%s\n' changed "$rows" "$round" "$changed" >>"$meta"

    # (e) import of everything into an empty database with the same two tables
    sqlite3 -batch -bail "$dataset_dir/data.sqlite" \
        "SELECT sql || ';' FROM sqlite_schema WHERE type = 'table' AND name IN ('items', 'events') ORDER BY name" |
        sqlite3 -batch -bail "$imp"
    save_connection "$imp"
    timed "$rows" "$round" cs_import sqlite3 -batch -bail "$imp" ".load $lib" \
        "SELECT cloud_sync_run(cloud_sync_import('b', 0, 'skip', json_object($cs_opts)))"
    read -r _ ms ins upd same < <(job_fields "$work/out")
    [ "$ins" = "$rows" ] || die "(e) import: $ins inserts, expected $rows"
    record "$rows" "$round" cs_import "$ms"
    expect_same "imported database against the exported one ($rows rows, round $round)" \
        "$local_sum" "$("$py" "$helper" checksum "$imp")"

    # (f) incremental: both tables tracked, then an untimed dry run + full export (mode automatic:
    # full, as no watermark exists yet; it sets them), 1% of the rows updated locally by the plain
    # sqlite3 shell (the triggers record them), an untimed dry run and the timed export. Each
    # round starts from a fresh copy and an empty schema: every round does the same.
    local modes ntab src chg del dry_counts counts newer_incr
    track_tables "$db"
    cs_sql "$db" "SELECT cloud_sync_run(cloud_sync_export('b', 1, json_object($cs_opts)))" >"$work/out"
    read -r dry_id _ < <(mode_fields "$work/out")
    cs_sql "$db" "SELECT cloud_sync_run(cloud_sync_export('b', 0, json_object('confirm', $dry_id, $cs_opts)))" >"$work/out"
    read -r _ _ modes ntab src chg ins upd same del < <(mode_fields "$work/out")
    if [ "$modes" != full ] || [ "$ntab" != 2 ] || [ "$ins/$upd/$same/$del" != "0/0/$rows/0" ]; then
        die "(f) full export of the tracked tables: the job reported modes $modes for $ntab tables, inserts/updates/unchanged/deletes $ins/$upd/$same/$del (expected full, 2 tables, 0/0/$rows/0)"
    fi
    got=$(cs_sql "$db" "SELECT group_concat(table_name || ':' || json_array_length(exports) || ':' || pending_changes, ' ')
                          FROM (SELECT * FROM cloud_sync_tracked ORDER BY table_name)")
    [ "$got" = "events:1:0 items:1:0" ] ||
        die "(f) after the full export of the tracked tables, cloud_sync_tracked (table:exports:pending) reads '$got', expected 'events:1:0 items:1:0'"
    pg_sql "VACUUM (ANALYZE) $schema_cs.items, $schema_cs.events" >/dev/null
    changed=$(sqlite3 -batch -bail "$db" \
        "SELECT (SELECT count(*) FROM items WHERE id % 100 = 0) + (SELECT count(*) FROM events WHERE seq % 100 = 0);
         UPDATE items SET qty = qty + 1 WHERE id % 100 = 0;
         UPDATE events SET value = value + 1 WHERE seq % 100 = 0;")
    got=$(sqlite3 -batch -bail "$db" "SELECT count(*) || ' ' || count(*) FILTER (WHERE kind = 'update') FROM cloud_sync_changes")
    [ "$got" = "$changed $changed" ] ||
        die "(f) after updating $changed tracked rows, cloud_sync_changes holds (all, updates) '$got', expected '$changed $changed'"
    cs_sql "$db" "SELECT cloud_sync_run(cloud_sync_export('b', 1, json_object($cs_opts)))" >"$work/out"
    read -r dry_id _ modes ntab src chg ins upd same del < <(mode_fields "$work/out")
    dry_counts="$modes $ntab $src $chg $ins/$upd/$same/$del"
    wait_backends_gone
    before=$(table_counters)
    xid=$(pg_sql "SELECT txid_current() % 4294967296")
    timed "$rows" "$round" cs_incr sqlite3 -batch -bail "$db" ".load $lib" \
        "SELECT cloud_sync_run(cloud_sync_export('b', 0, json_object('confirm', $dry_id, $cs_opts)))"
    read -r _ ms modes ntab src chg ins upd same del < <(mode_fields "$work/out")
    counts="$ins/$upd/$same/$del"
    if [ "$modes $ntab $src $chg $counts" != "incremental 2 $changed $changed 0/$changed/0/0" ]; then
        die "(f) incremental export after updating $changed rows: the job reported modes $modes for $ntab tables, source_rows $src, changes $chg, inserts/updates/unchanged/deletes $counts (expected incremental, 2 tables, $changed, $changed, 0/$changed/0/0)"
    fi
    [ "$dry_counts" = "$modes $ntab $src $chg $counts" ] ||
        die "(f) the incremental dry run reported '$dry_counts' (modes tables source_rows changes i/u/u/d), the export '$modes $ntab $src $chg $counts'"
    # The server's counters: the backend flushes them when it exits; give it a few seconds.
    wait_backends_gone
    local i d_ins d_upd d_del
    for ((i = 0; i < 50; i++)); do
        after=$(table_counters)
        read -r d_ins d_upd d_del < <(awk -v a="$after" -v b="$before" \
            'BEGIN { split(a, x, " "); split(b, y, " "); print x[1] - y[1], x[2] - y[2], x[3] - y[3] }')
        [ "$d_upd" -lt "$changed" ] || break
        sleep 0.1
    done
    newer_incr=$(pg_sql "SELECT (SELECT count(*) FROM $schema_cs.items WHERE age(xmin) < age('$xid'::xid))
                              + (SELECT count(*) FROM $schema_cs.events WHERE age(xmin) < age('$xid'::xid))")
    if [ "$d_ins $d_upd $d_del $newer_incr" != "0 $changed 0 $changed" ]; then
        die "(f) incremental export of $changed changed rows: on the remote n_tup_ins +$d_ins, n_tup_upd +$d_upd, n_tup_del +$d_del, rows with a newer xmin $newer_incr (expected +0, +$changed, +0, $changed)"
    fi
    record "$rows" "$round" cs_incr "$ms"
    expect_same "remote data after the incremental export ($rows rows, round $round)" \
        "$("$py" "$helper" checksum "$db")" "$(remote_checksum "$schema_cs")"
    got=$(sqlite3 -batch -bail "$db" "SELECT count(*) FROM cloud_sync_changes")
    [ "$got" = 0 ] || die "(f) after the incremental export, cloud_sync_changes still holds $got rows (expected 0: pruned)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' incr "$rows" "$round" "$changed" "$src" \
        "$chg" "$d_ins" "$d_upd" "$d_del" "$newer_incr" "$counts" >>"$meta"
    rm -f -- "$db" "$imp"
}

# The tracking overhead: the same writes timed into an untracked and a tracked copy of the
# dataset's schema (at most 1,000,000 rows); bench_data.py overhead checks the data and the
# changes recorded.
way_tracking() {
    local rows=$1 round=$2 plain=$work/plain.sqlite tracked=$work/tracked.sqlite n op p t
    n=$((rows < 1000000 ? rows : 1000000))
    rm -f -- "$plain" "$plain-journal" "$tracked" "$tracked-journal"
    sqlite3 -batch -bail "$dataset_dir/data.sqlite" \
        "SELECT sql || ';' FROM sqlite_schema WHERE type = 'table' AND name IN ('items', 'events') ORDER BY name" >"$work/schema.sql"
    sqlite3 -batch -bail "$plain" <"$work/schema.sql"
    sqlite3 -batch -bail "$tracked" <"$work/schema.sql"
    track_tables "$tracked"
    settle
    "$py" "$helper" overhead "$dataset_dir/data.sqlite" "$plain" "$tracked" "$n" "$round" >"$work/out" ||
        die "tracking overhead ($n rows, round $round) failed"
    while read -r op p t; do
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' overhead "$n" "$round" "$op" "$p" "$t" >>"$meta"
        printf '  %-10s %8.2f s  untracked, %8.2f s  tracked (x%.2f)\n' "trk_$op" "$p" "$t" \
            "$(awk -v p="$p" -v t="$t" 'BEGIN { print t / p }')"
    done <"$work/out"
    rm -f -- "$plain" "$tracked"
}

# ---------------------------------------------------------------------------------------------
# The Citus scenario (--citus)

if [ -n "$citus" ]; then
    [ -n "$admin" ] || die "--citus needs the throwaway server (it checkpoints it as its superuser)"
    started=$SECONDS
    export CLOUD_SYNC_CITUS_KIT=${CLOUD_SYNC_CITUS_KIT:-../shared/citus}
    echo "== starting Citus (scripts/lib/citus.sh, kit $CLOUD_SYNC_CITUS_KIT)"
    cloud_sync_citus_start
    [ -n "${CLOUD_SYNC_TEST_CITUS_PORT:-}" ] || die "no Citus cluster started"
    citus_ports="$CLOUD_SYNC_TEST_CITUS_PORT $((CLOUD_SYNC_TEST_CITUS_PORT + 1)) $((CLOUD_SYNC_TEST_CITUS_PORT + 2))"
    # The throwaway PostgreSQL's durability settings (pg.sh) on every node: fsync is already
    # off in the kit; without these two, Citus would pay for WAL that plain PostgreSQL does not.
    for port in $citus_ports; do
        "$psql_bin" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres \
            -c "ALTER SYSTEM SET synchronous_commit = off" \
            -c "ALTER SYSTEM SET full_page_writes = off" -c "SELECT pg_reload_conf()" >/dev/null
    done
    citus_psql() {
        "$psql_bin" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$CLOUD_SYNC_TEST_CITUS_PORT" \
            -U postgres -d postgres -c "$1"
    }
    citus_raw=$work/citus.tsv
    citus_meta=$work/citus_meta.tsv
    : >"$citus_raw"
    : >"$citus_meta"
    cs_version=$(sqlite3 -batch :memory: ".load $lib" \
        "SELECT cloud_sync_version() || ' (' || coalesce(json_extract(cloud_sync_debug(), '\$.git_commit'), '?') || ')'")
    echo "== Citus scenario: sizes $sizes, $runs run(s); cloud_sync $cs_version"
    for rows in $sizes; do
        prepare_dataset "$rows"
        CLOUD_SYNC_BENCH_PLAIN_URL=$url CLOUD_SYNC_BENCH_PLAIN_ADMIN=$admin \
            CLOUD_SYNC_BENCH_CITUS_PORTS=$citus_ports \
            "$py" "$root/scripts/lib/bench_citus.py" run "$lib" "$psql_bin" "$dataset_dir" \
            "$rows" "$runs" "$citus_raw" "$citus_meta"
    done
    {
        printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
        printf 'machine\t%s\n' "$(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
        printf 'cloud_sync\t%s\n' "$cs_version"
        printf 'plain\t%s\n' "$pg_version, the throwaway local cluster of scripts/lib/pg.sh (SCRAM)"
        printf 'citus\t%s\n' "Citus $(citus_psql "SELECT split_part(citus_version(), ' ', 2)") on PostgreSQL $(citus_psql 'SHOW server_version'), a coordinator and $(citus_psql 'SELECT count(*) FROM pg_dist_node WHERE groupid <> 0') workers on one machine (trust authentication), $(citus_psql 'SHOW citus.shard_count') shards per distributed table"
        printf 'elapsed\t%s\n' "$(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s"
    } >>"$citus_meta"
    mkdir -p "$(dirname "$results")"
    echo
    "$py" "$root/scripts/lib/bench_citus.py" report "$citus_raw" "$citus_meta" "$results"
    echo
    echo "bench: wrote the Citus section of $results ($((SECONDS - started)) s)"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Run

started=$SECONDS
cs_version=$(sqlite3 -batch :memory: ".load $lib" \
    "SELECT cloud_sync_version() || ' (' || coalesce(json_extract(cloud_sync_debug(), '\$.git_commit'), '?') || ')'")
echo "== PostgreSQL $pg_version, cloud_sync $cs_version, sizes: $sizes, runs: $runs"

for rows in $sizes; do
    prepare_dataset "$rows"
    for ((round = 1; round <= runs; round++)); do
        echo "== $rows rows, round $round of $runs"
        way_copy_csv "$rows" "$round"
        way_copy_pipe "$rows" "$round"
        way_pgloader "$rows" "$round"
        way_cloud_sync "$rows" "$round"
        way_tracking "$rows" "$round"
    done
    read -r -a sum_items < <(grep '^items ' "$work/checksum")
    read -r -a sum_events < <(grep '^events ' "$work/checksum")
    {
        printf 'check\t%s rows (dataset v%s: items %s rows, md5 %s; events %s rows, md5 %s): in each of the %s rounds the remote data equalled the local data after the first full export (b), after the 10%% re-export (d) and after the incremental export (f), the database imported by (e) equalled the exported one (count, sums and md5 per table, see below), psql \\copy and the pipe loaded all %s rows every run, and so did every pgloader run that succeeded\n' \
            "$rows" "$dataset_version" "${sum_items[1]}" "${sum_items[9]}" "${sum_events[1]}" \
            "${sum_events[5]}" "$runs" "$rows"
    } >>"$meta"
    fresh_schema "$schema_cs"
    fresh_schema "$schema_copy"
    fresh_schema "$schema_pgl"
done

kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
{
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'nproc\t%s\n' "$(nproc)"
    printf 'cpu\t%s\n' "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    printf 'mem\t%s\n' "$(awk -v k="$kib" 'BEGIN { printf "%.1f GiB", k / 1048576 }')"
    printf 'kernel\t%s\n' "$(uname -r)"
    printf 'pg_version\t%s\n' "$pg_version"
    if [ -n "$pg_started" ]; then
        printf 'pg_where\t%s\n' "the throwaway local cluster of scripts/lib/pg.sh: fsync, synchronous_commit and full_page_writes off; a CHECKPOINT before each timed run"
        printf 'transport\t%s\n' "TCP to localhost, TLS verified against the throwaway CA (psql and cloud_sync sslmode=verify-full, pgloader sslmode=require with SSL_CERT_FILE), SCRAM"
    else
        printf 'pg_where\t%s\n' "CLOUD_SYNC_BENCH_PG_URL, host $pg_host"
        printf 'transport\t%s\n' "sslmode=$pg_sslmode as given in CLOUD_SYNC_BENCH_PG_URL (pgloader: $pgl_sslmode)"
    fi
    printf 'sqlite\t%s\n' "$(sqlite3 --version | cut -d' ' -f1)"
    printf 'pgloader\t%s\n' "$(pgloader --version 2>/dev/null | head -n 1 | tr -d '"')"
    printf 'cloud_sync\t%s\n' "$cs_version"
    printf 'runs\t%s\n' "$runs"
    printf 'elapsed\t%s\n' "$((SECONDS - started))"
} >>"$meta"

mkdir -p "$(dirname "$results")"
echo
"$py" "$helper" report "$raw" "$meta" "$results"
echo
echo "bench: wrote $results ($((SECONDS - started)) s)"
