//! Errors keep their codes at the SQL boundary: a host can tell a busy database from a bad
//! argument by SQLite's result code, without reading the message.

mod common;

use std::time::Duration;

use common::{open, temp_db};
use rusqlite::{Connection, ErrorCode};

/// The primary and extended codes and the message of a failed statement.
fn failure(conn: &Connection, sql: &str) -> (ErrorCode, i32, String) {
    match conn.query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0)) {
        Err(rusqlite::Error::SqliteFailure(e, message)) => {
            (e.code, e.extended_code, message.unwrap_or_default())
        }
        other => panic!("{sql}: expected a SQLite failure, got {other:?}"),
    }
}

#[test]
fn a_bad_argument_is_sqlite_error() {
    let (_dir, path) = temp_db("codes-bad-argument");
    let conn = open(&path);
    let (code, extended, message) = failure(&conn, "SELECT cloud_sync_export('prod', 2)");
    assert_eq!((code, extended), (ErrorCode::Unknown, 1), "{message}");
    assert!(message.contains("argument 2 (dry_run)"), "{message}");
}

#[test]
fn a_locked_local_database_is_sqlite_busy() {
    let (_dir, path) = temp_db("codes-busy");
    let conn = open(&path);
    conn.busy_timeout(Duration::ZERO).unwrap();
    let holder = Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (code, extended, message) = failure(
        &conn,
        "SELECT cloud_sync_save('prod', 'postgresql://u@localhost/db')",
    );
    assert_eq!((code, extended), (ErrorCode::DatabaseBusy, 5), "{message}");
    assert!(message.contains("database is locked"), "{message}");
    holder.execute_batch("ROLLBACK").unwrap();
    // The same call succeeds once the lock is gone: the busy error changed nothing.
    let id: i64 = conn
        .query_row(
            "SELECT cloud_sync_save('prod', 'postgresql://u@localhost/db')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(id, 1);
}

/// The SQL boundary puts the function's name in front of every message, so no message names
/// it again: `cloud_sync_run: cannot run inside...`, not `cloud_sync_run: cloud_sync_run ...`.
#[test]
fn a_message_names_its_function_once() {
    let (_dir, path) = temp_db("codes-named-once");
    let conn = open(&path);
    conn.execute_batch("BEGIN").unwrap();
    for (function, sql) in [
        ("cloud_sync_run", "SELECT cloud_sync_run(1)"),
        ("cloud_sync_run_jobs", "SELECT cloud_sync_run_jobs()"),
        ("cloud_sync_run_jobs", "SELECT cloud_sync_run_jobs(1)"),
    ] {
        let (_, _, message) = failure(&conn, sql);
        let rest = message
            .strip_prefix(&format!("{function}: "))
            .unwrap_or_else(|| panic!("{sql}: {message}"));
        assert!(
            rest.starts_with("cannot run inside an open transaction"),
            "{sql}: {message}"
        );
        assert!(!rest.contains("cloud_sync_run"), "{sql}: {message}");
    }
    conn.execute_batch("ROLLBACK").unwrap();
    for (function, sql) in [
        ("cloud_sync_export", "SELECT cloud_sync_export('prod', 2)"),
        ("cloud_sync_report", "SELECT cloud_sync_report(99)"),
        (
            "cloud_sync_worker_start",
            "SELECT cloud_sync_worker_start('[]')",
        ),
        (
            "cloud_sync_job_log",
            "SELECT * FROM cloud_sync_job_log('x')",
        ),
    ] {
        let (_, _, message) = failure(&conn, sql);
        assert_eq!(message.matches(function).count(), 1, "{sql}: {message}");
    }
}

/// A message quotes at most about 100 characters of what it was given, with its length, so a
/// 10 MB argument does not come back as a 10 MB error; a NUL in it is written `\0`.
#[test]
fn messages_cut_long_input() {
    let (_dir, path) = temp_db("codes-long-input");
    let conn = open(&path);
    conn.execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY)")
        .unwrap();
    conn.query_row(
        "SELECT cloud_sync_save('prod', 'postgresql://u@localhost/db')",
        [],
        |_| Ok(()),
    )
    .unwrap();
    let long = "x".repeat(10_000_000);
    let mut echoed = 0;
    for sql in [
        "SELECT cloud_sync_import('prod', 1, ?1)",
        "SELECT cloud_sync_export(?1, 1)",
        "SELECT cloud_sync_report(1, ?1)",
        "SELECT cloud_sync_track(?1)",
        "SELECT cloud_sync_untrack(?1)",
        "SELECT cloud_sync_run(?1)",
        "SELECT cloud_sync_export('prod', 1, json_object('tables', json_array(?1)))",
        "SELECT cloud_sync_export('prod', 1, json_object(?1, 1))",
        "SELECT cloud_sync_export('prod', 1, json_object('max_attempts', ?1))",
        "SELECT cloud_sync_worker_start(json_object('poll_interval_ms', ?1))",
    ] {
        let message = match conn.query_row(sql, [&long], |r| r.get::<_, rusqlite::types::Value>(0))
        {
            Err(rusqlite::Error::SqliteFailure(_, Some(message))) => message,
            other => panic!("{sql}: expected a failure, got {other:?}"),
        };
        // Either the value is not quoted at all, or it is cut with its length.
        assert!(message.len() < 600, "{sql}: {} bytes", message.len());
        let quoted = message.contains(&"x".repeat(100));
        assert!(
            !quoted || message.contains(&format!("{}…", "x".repeat(100))),
            "{sql}: {message}"
        );
        assert_eq!(
            quoted,
            message.contains("(10000000 characters)"),
            "{sql}: {message}"
        );
        echoed += usize::from(quoted);
    }
    assert!(echoed >= 7, "only {echoed} messages show the value");
    let (_, _, message) = failure(
        &conn,
        "SELECT cloud_sync_import('prod', 1, 'a' || char(0) || 'b')",
    );
    assert!(message.contains("unknown strategy \"a\\0b\""), "{message}");
}
