# shellcheck shell=bash
# Sourced. Throwaway PostgreSQL + pgbouncer (TLS, SCRAM) for cloud_sync tests.
#
#   cloud_sync_pg_start         start both, export the CLOUD_SYNC_TEST_* contract
#   cloud_sync_pg_stop          stop both, remove the temp dir (idempotent, trap-safe)
#   cloud_sync_pg_stop_server   stop only PostgreSQL, keeping its data (retry tests)
#   cloud_sync_pg_start_server  start it again
#
# The last two are exported with `export -f` and rely only on exported variables,
# so a child `bash -c cloud_sync_pg_stop_server` (e.g. from a test) works too.

_cloud_sync_pg_user=cloud_sync_test
_cloud_sync_pg_password='Pa ss:w/rd@%?#1'
_cloud_sync_pg_limited_user=cloud_sync_limited
_cloud_sync_pg_limited_password=limited_pw
# The temp dir this shell created; only its owner tears it down, so a child
# process that inherited the exported contract cannot delete it by accident.
# Kept if this file is sourced again.
: "${_cloud_sync_pg_owned_dir:=}" "${_cloud_sync_pg_bin:=}"

_cloud_sync_pg_log() {
    printf 'cloud_sync pg: %s\n' "$*" >&2
}

# initdb, postgres and pgbouncer refuse to run as root. cd / because root's
# working directory is usually not readable by postgres.
_cloud_sync_as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

cloud_sync_pg_stop_server() {
    _cloud_sync_as_pg "$CLOUD_SYNC_TEST_PG_BIN/pg_ctl" -D "$CLOUD_SYNC_TEST_DIR/data" \
        -m fast -w -t 30 stop >/dev/null
}

cloud_sync_pg_start_server() {
    if ! _cloud_sync_as_pg "$CLOUD_SYNC_TEST_PG_BIN/pg_ctl" -D "$CLOUD_SYNC_TEST_DIR/data" \
        -l "$CLOUD_SYNC_TEST_DIR/postgres.log" -w -t 30 start >/dev/null; then
        _cloud_sync_pg_log "PostgreSQL failed to start (30 s limit); its log follows"
        cat "$CLOUD_SYNC_TEST_DIR/postgres.log" >&2
        return 1
    fi
}

export -f _cloud_sync_pg_log _cloud_sync_as_pg cloud_sync_pg_stop_server cloud_sync_pg_start_server

_cloud_sync_port_busy() {
    local addr
    for addr in 127.0.0.1 ::1; do
        if (exec 3<>"/dev/tcp/$addr/$1") 2>/dev/null; then
            return 0
        fi
    done
    return 1
}

# CA, server cert (SAN DNS:localhost only, so host 127.0.0.1 must fail
# verify-full), and an unrelated CA for negative tests.
_cloud_sync_pg_make_tls() {
    local tls=$1 ca
    mkdir -p "$tls" || return 1
    for ca in ca:"cloud_sync test CA" other_ca:"cloud_sync other CA"; do
        openssl req -x509 -new -nodes -days 2 \
            -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
            -keyout "$tls/${ca%%:*}.key" -out "$tls/${ca%%:*}.crt" -subj "/CN=${ca#*:}" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1 || return 1
    done
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout "$tls/server.key" -out "$tls/server.csr" \
        -subj "/CN=cloud_sync test server" >/dev/null 2>&1 || return 1
    openssl x509 -req -days 2 -in "$tls/server.csr" \
        -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial -out "$tls/server.crt" \
        -extfile <(printf '%s\n' 'subjectAltName=DNS:localhost' 'basicConstraints=CA:FALSE' \
            'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth') \
        >/dev/null 2>&1 || return 1
    # PostgreSQL refuses a key readable by others.
    chmod 600 "$tls"/*.key
}

_cloud_sync_pg_write_configs() {
    local dir=$1 pg_port=$2 bouncer_port=$3
    cat >>"$dir/data/postgresql.conf" <<EOF || return 1

# cloud_sync throwaway test cluster
listen_addresses = 'localhost'
port = $pg_port
unix_socket_directories = '$dir'
max_connections = 100
ssl = on
ssl_cert_file = '$dir/tls/server.crt'
ssl_key_file = '$dir/tls/server.key'
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
EOF
    cat >"$dir/data/pg_hba.conf" <<EOF || return 1
local all all trust
local replication all trust
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
EOF
    # Plain-text passwords: pgbouncer then does SCRAM with both the client and the server.
    (umask 077 && printf '"%s" "%s"\n' \
        "$_cloud_sync_pg_user" "$_cloud_sync_pg_password" \
        "$_cloud_sync_pg_limited_user" "$_cloud_sync_pg_limited_password" \
        >"$dir/userlist.txt") || return 1
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
cloud_sync_test = host=127.0.0.1 port=$pg_port dbname=cloud_sync_test

[pgbouncer]
listen_addr = localhost
listen_port = $bouncer_port
unix_socket_dir = $dir
pidfile = $dir/pgbouncer.pid
logfile = $dir/pgbouncer.log
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 200
default_pool_size = 10
ignore_startup_parameters = extra_float_digits
client_tls_sslmode = allow
client_tls_key_file = $dir/tls/server.key
client_tls_cert_file = $dir/tls/server.crt
client_tls_ca_file = $dir/tls/ca.crt
server_tls_sslmode = disable
EOF
}

_cloud_sync_pg_create_roles() {
    "$CLOUD_SYNC_TEST_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
        -v test_pw="$_cloud_sync_pg_password" -v limited_pw="$_cloud_sync_pg_limited_password" \
        "host=$CLOUD_SYNC_TEST_DIR port=$CLOUD_SYNC_TEST_PG_PORT user=postgres dbname=postgres" \
        >/dev/null <<'EOF'
CREATE ROLE cloud_sync_test LOGIN PASSWORD :'test_pw';
CREATE ROLE cloud_sync_limited LOGIN PASSWORD :'limited_pw';
CREATE DATABASE cloud_sync_test OWNER cloud_sync_test;
GRANT CONNECT ON DATABASE cloud_sync_test TO cloud_sync_limited;
\connect cloud_sync_test
-- Explicit rather than relying on the PostgreSQL 15+ defaults for schema public.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CREATE ON SCHEMA public TO cloud_sync_test;
EOF
}

_cloud_sync_pg_wait_bouncer() {
    local deadline=$((SECONDS + 30))
    until PGPASSWORD=$_cloud_sync_pg_password "$CLOUD_SYNC_TEST_PG_BIN/psql" -X -Atq \
        "host=127.0.0.1 port=$CLOUD_SYNC_TEST_PGBOUNCER_PORT user=$_cloud_sync_pg_user dbname=cloud_sync_test sslmode=disable connect_timeout=2" \
        -c 'SELECT 1' >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            _cloud_sync_pg_log "pgbouncer did not accept connections within 30 s; its log follows"
            cat "$CLOUD_SYNC_TEST_DIR/pgbouncer.log" >&2
            return 1
        fi
        sleep 0.5
    done
}

_cloud_sync_pg_start() {
    local pg_port=${CLOUD_SYNC_PG_PORT:-55432}
    local bouncer_port=${CLOUD_SYNC_PGBOUNCER_PORT:-56432}
    local bin pgbouncer dir port

    if [ -n "$_cloud_sync_pg_owned_dir" ]; then
        _cloud_sync_pg_log "already started in this shell ($_cloud_sync_pg_owned_dir)"
        return 1
    fi
    # shellcheck disable=SC2012 # version directories are plain numbers
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [ ! -x "$bin/initdb" ]; then
        _cloud_sync_pg_log "no PostgreSQL server under /usr/lib/postgresql (run cloud_sync_install_deps)"
        return 1
    fi
    if ! pgbouncer=$(PATH="$PATH:/usr/sbin" command -v pgbouncer); then
        _cloud_sync_pg_log "pgbouncer is not installed (run cloud_sync_install_deps)"
        return 1
    fi
    if [ "$pg_port" = "$bouncer_port" ]; then
        _cloud_sync_pg_log "PostgreSQL and pgbouncer ports must differ (both $pg_port)"
        return 1
    fi
    for port in "$pg_port" "$bouncer_port"; do
        if ! [[ $port =~ ^[0-9]+$ ]]; then
            _cloud_sync_pg_log "invalid port '$port'"
            return 1
        fi
        if _cloud_sync_port_busy "$port"; then
            _cloud_sync_pg_log "port $port is already in use; stop what listens there or set CLOUD_SYNC_PG_PORT / CLOUD_SYNC_PGBOUNCER_PORT"
            return 1
        fi
    done
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin postgres || return 1
    fi

    # Under /tmp regardless of TMPDIR: postgres must traverse it, and the unix
    # socket path must stay under the ~107-byte limit.
    dir=$(mktemp -d /tmp/cloud_sync_test.XXXXXX) || return 1
    _cloud_sync_pg_owned_dir=$dir
    _cloud_sync_pg_bin=$bin
    # The root test process reads the CA files; the keys stay 600.
    chmod 755 "$dir" || return 1
    export CLOUD_SYNC_TEST_DIR=$dir
    export CLOUD_SYNC_TEST_PG_BIN=$bin
    export CLOUD_SYNC_TEST_PG_PORT=$pg_port
    export CLOUD_SYNC_TEST_PGBOUNCER_PORT=$bouncer_port

    if ! _cloud_sync_pg_make_tls "$dir/tls"; then
        _cloud_sync_pg_log "openssl failed to generate the test certificates"
        return 1
    fi
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres: "$dir" || return 1
    fi
    if ! _cloud_sync_as_pg "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$dir/initdb.log" 2>&1; then
        _cloud_sync_pg_log "initdb failed; its output follows"
        cat "$dir/initdb.log" >&2
        return 1
    fi
    _cloud_sync_pg_write_configs "$dir" "$pg_port" "$bouncer_port" || return 1
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir/userlist.txt" "$dir/pgbouncer.ini" || return 1
    fi
    cloud_sync_pg_start_server || return 1
    if ! _cloud_sync_pg_create_roles; then
        _cloud_sync_pg_log "creating the test roles and database failed"
        return 1
    fi
    if ! _cloud_sync_as_pg "$pgbouncer" -d -q "$dir/pgbouncer.ini"; then
        _cloud_sync_pg_log "pgbouncer failed to start; its log follows"
        cat "$dir/pgbouncer.log" >&2
        return 1
    fi
    _cloud_sync_pg_wait_bouncer || return 1

    export CLOUD_SYNC_TEST_PG_HOST=localhost
    export CLOUD_SYNC_TEST_PG_USER=$_cloud_sync_pg_user
    export CLOUD_SYNC_TEST_PG_PASSWORD=$_cloud_sync_pg_password
    export CLOUD_SYNC_TEST_PG_DB=cloud_sync_test
    export CLOUD_SYNC_TEST_PG_CA=$dir/tls/ca.crt
    export CLOUD_SYNC_TEST_OTHER_CA=$dir/tls/other_ca.crt
    export CLOUD_SYNC_TEST_PG_ADMIN_URL="host=$dir port=$pg_port user=postgres dbname=cloud_sync_test"
}

# All or nothing: a failed start leaves no process or directory behind.
cloud_sync_pg_start() {
    _cloud_sync_pg_start || {
        cloud_sync_pg_stop
        return 1
    }
}

cloud_sync_pg_stop() {
    local dir=$_cloud_sync_pg_owned_dir pid i
    [ -n "$dir" ] || return 0
    _cloud_sync_pg_owned_dir=

    # Every step tolerates failure: this runs from EXIT traps, possibly under set -e.
    if [ -s "$dir/pgbouncer.pid" ] && pid=$(cat "$dir/pgbouncer.pid") &&
        kill -TERM "$pid" 2>/dev/null; then
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    if [ -f "$dir/data/postmaster.pid" ] &&
        ! _cloud_sync_as_pg "$_cloud_sync_pg_bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop \
            >/dev/null 2>&1; then
        _cloud_sync_as_pg "$_cloud_sync_pg_bin/pg_ctl" -D "$dir/data" -m immediate -w stop \
            >/dev/null 2>&1 || true
    fi
    rm -rf -- "$dir" || true
    unset CLOUD_SYNC_TEST_DIR CLOUD_SYNC_TEST_PG_HOST CLOUD_SYNC_TEST_PG_PORT \
        CLOUD_SYNC_TEST_PGBOUNCER_PORT CLOUD_SYNC_TEST_PG_USER CLOUD_SYNC_TEST_PG_PASSWORD \
        CLOUD_SYNC_TEST_PG_DB CLOUD_SYNC_TEST_PG_CA CLOUD_SYNC_TEST_OTHER_CA \
        CLOUD_SYNC_TEST_PG_ADMIN_URL CLOUD_SYNC_TEST_PG_BIN
}

# Prints a URL to the test server as the test user, TLS verified against the test CA.
cloud_sync_pg_verified_url() {
    local password
    password=$(/usr/bin/python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' \
        "$CLOUD_SYNC_TEST_PG_PASSWORD")
    printf 'postgresql://%s:%s@localhost:%s/%s?sslmode=verify-full&sslrootcert=%s\n' \
        "$CLOUD_SYNC_TEST_PG_USER" "$password" "$CLOUD_SYNC_TEST_PG_PORT" \
        "$CLOUD_SYNC_TEST_PG_DB" "$CLOUD_SYNC_TEST_PG_CA"
}
