//! cloud_sync's own tables in the host database (sql/schema.sql).

use crate::error::{Error, Result};
use crate::sqlite::argument::{exact_integer, shown};
use crate::sqlite::{Db, Param, Value};

pub const SCHEMA_SQL: &str = include_str!("../../sql/schema.sql");
pub const SCHEMA_VERSION: i64 = 3;

/// Readies the database at load time, before anything is registered: creates or completes
/// cloud_sync's tables through a connection that can write; leaves a read-only or query-only
/// one alone (the functions that write then say why they cannot).
pub fn prepare_at_load(db: &Db) -> Result<()> {
    if why_read_only(db)?.is_some() {
        return Ok(());
    }
    apply(db).map_err(|e| {
        if e.is_locally_busy() || matches!(e, Error::Busy(_)) {
            Error::Busy(
                "the database is locked by another connection, so cloud_sync cannot check or \
                 create its tables: load it again once the lock is released, or set PRAGMA \
                 busy_timeout (milliseconds) first so that the load waits for it"
                    .into(),
            )
        } else {
            e
        }
    })
}

/// Creates or completes cloud_sync's tables and records the schema version. Idempotent.
/// A database set up by a newer cloud_sync is left alone with an error.
fn apply(db: &Db) -> Result<()> {
    // The common case, every load after the first, reads and writes nothing more.
    if installed_version(db)? == Some(SCHEMA_VERSION) {
        return Ok(());
    }
    db.atomically(|| {
        if let Some(found) = installed_version(db)? {
            if found > SCHEMA_VERSION {
                return Err(Error::local(format!(
                    "this database was set up by a newer cloud_sync (schema version {found}; \
                     this build knows {SCHEMA_VERSION}): load a newer cloud_sync"
                )));
            }
        }
        db.exec(SCHEMA_SQL)?;
        db.execute(
            "INSERT INTO cloud_sync_meta (key, value) VALUES ('schema_version', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[Param::Text(&SCHEMA_VERSION.to_string())],
        )?;
        Ok(())
    })
}

/// The schema version recorded in this database, `None` when cloud_sync never set it up. A
/// `cloud_sync_meta` without a valid version is an error: the tables' shape is then unknown,
/// and neither using nor upgrading them is safe.
pub fn installed_version(db: &Db) -> Result<Option<i64>> {
    let has_meta = db
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'cloud_sync_meta'",
            &[],
            |_| Ok(()),
        )?
        .is_some();
    if !has_meta {
        return Ok(None);
    }
    let recorded = db.query_row(
        "SELECT value FROM cloud_sync_meta WHERE key = 'schema_version'",
        &[],
        |row| Ok(row.text(0)),
    )?;
    match recorded.flatten() {
        None => Err(damaged("it records no schema_version")),
        Some(text) => match exact_integer(Value::Text(text.as_bytes())) {
            Some(version) if version > 0 => Ok(Some(version)),
            _ => Err(damaged(&format!(
                "its schema_version is {}, not a version number",
                shown(Value::Text(text.as_bytes()))
            ))),
        },
    }
}

/// The error for a `cloud_sync_meta` whose version is missing or unreadable: `what` is wrong.
fn damaged(what: &str) -> Error {
    Error::local(format!(
        "cloud_sync_meta is damaged: {what}, so cloud_sync cannot tell the shape of its tables. \
         Something other than cloud_sync changed it: restore the database from a backup, or, if \
         its cloud_sync tables are of this build's schema version ({SCHEMA_VERSION}), record \
         it: INSERT OR REPLACE INTO cloud_sync_meta (key, value) VALUES ('schema_version', \
         '{SCHEMA_VERSION}')"
    ))
}

/// Fails with a clear message when cloud_sync's tables are missing (cloud_sync was loaded only
/// through read-only or query-only connections, which do not create them).
pub fn require_installed(db: &Db) -> Result<()> {
    match installed_version(db)? {
        Some(_) => Ok(()),
        None => Err(Error::local(
            "cloud_sync's tables are not in this database: they are created when cloud_sync is \
             loaded through a connection that can write, and it never was (read-only databases \
             and PRAGMA query_only connections are left alone); load cloud_sync once through a \
             read-write connection",
        )),
    }
}

/// Why this connection cannot write the database (how a refusal starts) and what to do about
/// it; `None` when it can write.
fn why_read_only(db: &Db) -> Result<Option<(&'static str, &'static str)>> {
    if db.is_readonly() {
        return Ok(Some(("the database is read-only", "open it read-write")));
    }
    // PRAGMA query_only reads no schema, so a locked database answers it too.
    let query_only = db.query_row("PRAGMA query_only", &[], |row| Ok(row.int(0)))?;
    if query_only == Some(1) {
        return Ok(Some((
            "the connection is query-only (PRAGMA query_only = 1)",
            "run PRAGMA query_only = 0 first",
        )));
    }
    Ok(None)
}

/// Fails with a clear message when the database cannot be written through this connection.
pub fn require_writable(db: &Db, action: &str) -> Result<()> {
    if let Some((what, fix)) = why_read_only(db)? {
        return Err(Error::local(format!(
            "{what}, so cloud_sync cannot {action}: {fix}"
        )));
    }
    require_installed(db)
}
