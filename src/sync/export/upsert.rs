//! The set-based upsert of the staged rows into an existing remote table, leaving unchanged rows
//! alone. A dry run runs it too (its transaction rolls back), so that it tries the very
//! statements of the real run and counts what they change.

use postgres::Transaction;

use super::plan::TablePlan;
use super::sql::{self, Column};
use super::transaction::{batch, execute, query_counts};
use crate::error::Result;
use crate::sync::summary::TableCounts;

/// Upserts the `copied` staged rows of `stage`; sets the inserts, updates and unchanged rows of
/// `counts`, and for a full export the remote-only rows.
pub fn upsert(
    tx: &mut Transaction,
    plan: &TablePlan,
    columns: &[Column],
    stage: &str,
    copied: u64,
    counts: &mut TableCounts,
) -> Result<()> {
    let table = plan.name.as_str();
    let remote = plan.remote.as_str();
    batch(
        tx,
        table,
        "ANALYZE of the staging table failed",
        &sql::analyze(stage),
    )?;
    // An incremental export does not read the whole remote table.
    let remote_rows = match plan.window {
        Some(_) => None,
        None => {
            let [rows] = query_counts(
                tx,
                table,
                "counting the remote rows failed",
                &sql::count_rows(remote),
            )?;
            Some(rows)
        }
    };
    let [inserts, updates] = write_changes(tx, table, remote, stage, columns)?;
    counts.inserts = inserts;
    counts.updates = updates;
    counts.unchanged = copied.saturating_sub(inserts + updates);
    if let Some(remote_rows) = remote_rows {
        counts.remote_only = Some(remote_rows.saturating_sub(copied.saturating_sub(inserts)));
    }
    Ok(())
}

/// Writes the new and changed rows; returns how many it inserted and updated.
fn write_changes(
    tx: &mut Transaction,
    table: &str,
    remote: &str,
    stage: &str,
    columns: &[Column],
) -> Result<[u64; 2]> {
    batch(
        tx,
        table,
        "comparing with the remote rows failed",
        &sql::create_diff(remote, stage, columns),
    )?;
    let updates = match sql::update_changed(remote, stage, columns) {
        Some(update) => execute(tx, table, "UPDATE failed", &update)?,
        None => 0,
    };
    let inserts = execute(
        tx,
        table,
        "INSERT failed",
        &sql::insert_new(remote, stage, columns),
    )?;
    Ok([inserts, updates])
}
