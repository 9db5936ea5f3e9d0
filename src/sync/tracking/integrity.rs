//! Whether a tracked table is still the one tracked. Its triggers record only what happens to
//! the table they were made for: a table renamed, dropped or altered since, or one that lost a
//! trigger, has changes nobody recorded, so an incremental export from it would miss rows. The
//! errors say what happened and the SQL that fixes it.

use super::{fingerprint, trigger_name, Tracked, KINDS};
use crate::error::{Error, Result};
use crate::local::tables;
use crate::sql_text::sql_literal;
use crate::sqlite::{Db, Param};

/// Whether the table is still the one tracked: it exists, with the same columns and key, and
/// carries its three triggers. The error says what happened and how to fix it.
pub fn integrity(db: &Db, tracked: &Tracked) -> Result<()> {
    let table = &tracked.table;
    if !exists(db, table)? {
        return Err(renamed_or_dropped(db, table)?);
    }
    check_unaltered(db, tracked)?;
    check_triggers(db, table)
}

/// The fix for a table whose changes went unrecorded.
fn retrack(table: &str) -> String {
    format!(
        "run SELECT cloud_sync_track({}) to track it as it is now (its next export is then a \
         full one)",
        sql_literal(table)
    )
}

fn exists(db: &Db, table: &str) -> Result<bool> {
    Ok(db
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            &[Param::Text(table)],
            |_| Ok(()),
        )?
        .is_some())
}

/// The error for a tracked table that is gone: renamed (to the name its triggers now carry)
/// or dropped.
fn renamed_or_dropped(db: &Db, table: &str) -> Result<Error> {
    let untrack = format!("SELECT cloud_sync_untrack({})", sql_literal(table));
    // A rename carries the triggers along: they name the table's new name.
    let renamed_to = db.query_row(
        "SELECT tbl_name FROM sqlite_schema WHERE type = 'trigger' AND name = ?1",
        &[Param::Text(&trigger_name("insert", table))],
        |r| Ok(r.text(0).unwrap_or_default()),
    )?;
    Ok(Error::invalid(match renamed_to {
        Some(new) => format!(
            "tracked table {table} was renamed to {new}: run {untrack}, then SELECT \
             cloud_sync_track({}) (its next export is then a full one)",
            sql_literal(&new)
        ),
        None => format!(
            "tracked table {table} no longer exists: it was dropped (or renamed) while \
             tracked; run {untrack}, and SELECT cloud_sync_track('<its new name>') if it \
             was renamed"
        ),
    }))
}

/// The table has the key and columns it had when tracking began.
fn check_unaltered(db: &Db, tracked: &Tracked) -> Result<()> {
    let table = &tracked.table;
    let (key_columns, columns) = fingerprint(&tables::describe(db, table)?);
    if key_columns != tracked.key_columns || columns != tracked.columns {
        return Err(Error::invalid(format!(
            "tracked table {table} was altered since it was tracked (its columns or key \
             changed), so rows changed by the alteration were not recorded: {}",
            retrack(table)
        )));
    }
    Ok(())
}

/// The table still carries its three triggers.
fn check_triggers(db: &Db, table: &str) -> Result<()> {
    let mut stmt = db.prepare(
        "SELECT count(*) FROM sqlite_schema
         WHERE type = 'trigger' AND tbl_name = ?1 AND name IN (?2, ?3, ?4)",
    )?;
    let names: Vec<String> = KINDS.iter().map(|k| trigger_name(k, table)).collect();
    stmt.bind_all(&[
        Param::Text(table),
        Param::Text(&names[0]),
        Param::Text(&names[1]),
        Param::Text(&names[2]),
    ])?;
    stmt.step()?;
    if stmt.int(0) != 3 {
        return Err(Error::invalid(format!(
            "tracked table {table} lost change-tracking triggers ({} expected), so changes may \
             not have been recorded: {}",
            names.join(", "),
            retrack(table)
        )));
    }
    Ok(())
}
