//! cloud_sync's own tables in the host database (sql/schema.sql), and bringing those of an
//! earlier schema version up to this one.

use crate::error::{Error, Result};
use crate::sqlite::argument::{exact_integer, shown};
use crate::sqlite::{Db, Param, Value};

pub const SCHEMA_SQL: &str = include_str!("../../sql/schema.sql");
pub const SCHEMA_VERSION: i64 = 4;

/// The columns schema version 4 added to tables of earlier versions, with their declarations
/// as sql/schema.sql has them. `CREATE TABLE IF NOT EXISTS` leaves an existing table as it is,
/// so these are added to it; new tables and views need nothing more than sql/schema.sql.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("cloud_sync_connections", "created_by", "TEXT"),
    ("cloud_sync_connections", "updated_by", "TEXT"),
    ("cloud_sync_connections", "last_tested_at", "TEXT"),
    ("cloud_sync_connections", "last_tested_by", "TEXT"),
    ("cloud_sync_connections", "last_test", "TEXT"),
    ("cloud_sync_jobs", "requested_by", "TEXT"),
    ("cloud_sync_schedule_entries", "created_by", "TEXT"),
];

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
        // Before the schema: its views read the added columns.
        add_missing_columns(db)?;
        db.exec(SCHEMA_SQL)?;
        db.execute(
            "INSERT INTO cloud_sync_meta (key, value) VALUES ('schema_version', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[Param::Text(&SCHEMA_VERSION.to_string())],
        )?;
        Ok(())
    })
}

/// Adds each of `ADDED_COLUMNS` to its table where the table exists without it (a database of
/// an earlier version). Idempotent, as the schema is.
fn add_missing_columns(db: &Db) -> Result<()> {
    for (table, column, declaration) in ADDED_COLUMNS {
        let table_exists = db
            .query_row(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                &[Param::Text(table)],
                |_| Ok(()),
            )?
            .is_some();
        let has_column = db
            .query_row(
                "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
                &[Param::Text(table), Param::Text(column)],
                |_| Ok(()),
            )?
            .is_some();
        if table_exists && !has_column {
            db.exec(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {declaration}"
            ))?;
        }
    }
    Ok(())
}

/// Whether this database's cloud_sync tables are of this build's version. They are not when a
/// database of an earlier version was only ever opened read-only since: reading stays
/// possible, and what version 4 added reads as NULL.
pub fn is_current(db: &Db) -> Result<bool> {
    Ok(installed_version(db)? == Some(SCHEMA_VERSION))
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

/// Whether this connection can write the database (it is not read-only, nor query-only).
pub fn is_writable(db: &Db) -> Result<bool> {
    Ok(why_read_only(db)?.is_none())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A column added to an earlier version's table is declared in the schema file alike, so a
    /// new database and an upgraded one have the same shape.
    #[test]
    fn every_added_column_is_declared_alike_in_the_schema() {
        let declared: Vec<String> = SCHEMA_SQL
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        for (table, column, declaration) in ADDED_COLUMNS {
            let create = format!("CREATE TABLE IF NOT EXISTS {table} (");
            let start = declared.iter().position(|l| *l == create).expect(table);
            let body = declared[start..].iter().take_while(|l| !l.starts_with(')'));
            let expected = format!("{column} {declaration}");
            assert!(
                body.into_iter()
                    .any(|l| l.trim_end_matches(',') == expected),
                "{table}.{column} is not declared as {declaration} in sql/schema.sql"
            );
        }
    }
}
