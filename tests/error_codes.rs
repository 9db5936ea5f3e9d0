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
