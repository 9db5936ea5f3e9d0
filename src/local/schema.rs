//! cloud_sync's own tables in the host database (sql/schema.sql).

use crate::error::{Error, Result};
use crate::sqlite::{Db, Param};

pub const SCHEMA_SQL: &str = include_str!("../../sql/schema.sql");
pub const SCHEMA_VERSION: i64 = 2;

/// Creates or completes cloud_sync's tables and records the schema version. Idempotent.
/// A database set up by a newer cloud_sync is left alone with an error.
pub fn apply(db: &Db) -> Result<()> {
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

/// The schema version recorded in this database, `None` when cloud_sync never set it up.
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
    db.query_row(
        "SELECT CAST(value AS INTEGER) FROM cloud_sync_meta WHERE key = 'schema_version'",
        &[],
        |row| Ok(row.int(0)),
    )
}

/// Fails with a clear message when cloud_sync's tables are missing (a database opened read-only
/// before cloud_sync was ever loaded into it read-write).
pub fn require_installed(db: &Db) -> Result<()> {
    match installed_version(db)? {
        Some(_) => Ok(()),
        None => Err(Error::local(
            "cloud_sync's tables are not in this database: it was opened read-only before \
             cloud_sync was ever loaded into it read-write; open it read-write once and load \
             cloud_sync",
        )),
    }
}

/// Fails with a clear message when the database cannot be written.
pub fn require_writable(db: &Db, action: &str) -> Result<()> {
    if db.is_readonly() {
        return Err(Error::local(format!(
            "the database is read-only, so cloud_sync cannot {action}: open it read-write"
        )));
    }
    require_installed(db)
}
