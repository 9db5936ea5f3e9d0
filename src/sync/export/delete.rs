//! Deleting remotely the rows gone locally, when deletes propagate. A full export deletes every
//! remote row the staging table lacks; an incremental one, the remote rows of the changed keys
//! that are gone locally. A dry run deletes them too, and rolls back: it counts what the real
//! run's statements delete.

use postgres::Transaction;

use super::copy::copy_gone;
use super::plan::TablePlan;
use super::sql::{self, Column};
use super::transaction::{batch, execute};
use crate::error::Result;

/// Full export: the staging table holds every local row, so the remote rows it lacks go.
/// Returns how many.
pub fn delete_missing(
    tx: &mut Transaction,
    plan: &TablePlan,
    columns: &[Column],
    stage: &str,
) -> Result<u64> {
    execute(
        tx,
        &plan.name,
        "DELETE of the rows gone locally failed",
        &sql::delete_missing(&plan.remote, stage, columns),
    )
}

/// Incremental export: deletes the remote rows of `gone` (binary COPY rows of the key columns,
/// in key order). Returns how many.
pub fn delete_gone(
    tx: &mut Transaction,
    plan: &TablePlan,
    columns: &[Column],
    stage: &str,
    gone: &[u8],
) -> Result<u64> {
    if gone.is_empty() {
        return Ok(0);
    }
    let table = plan.name.as_str();
    let key: Vec<Column> = plan.key_in_order()?.iter().map(|c| c.sql()).collect();
    batch(
        tx,
        table,
        "cannot create the table of deleted keys",
        &sql::create_gone(stage, &key),
    )?;
    copy_gone(tx, table, stage, gone)?;
    execute(
        tx,
        table,
        "DELETE failed",
        &sql::delete_gone(&plan.remote, stage, columns),
    )
}
