//! Deleting remotely the rows gone locally, when deletes propagate. A full export deletes every
//! remote row the staging table lacks; an incremental one, the remote rows of the changed keys
//! that are gone locally, whose keys were sent to the table of deleted keys with the rows
//! (`pack`). A dry run deletes them too, and rolls back: it counts what the real run's
//! statements delete.

use super::plan::TablePlan;
use super::sql::{self, Column};
use super::writes::{Tag, Writes};

/// Full export: the staging table holds every local row, so the remote rows it lacks go.
pub fn delete_missing(plan: &TablePlan, columns: &[Column], stage: &str, writes: &mut Writes) {
    writes.push(
        plan,
        "DELETE of the rows gone locally failed",
        sql::delete_missing(&plan.remote, stage, columns),
        Tag::Deleted,
    );
}

/// Incremental export: deletes the remote rows of the keys in the table of deleted keys of
/// `stage`.
pub fn delete_gone(plan: &TablePlan, columns: &[Column], stage: &str, writes: &mut Writes) {
    writes.push(
        plan,
        "DELETE failed",
        sql::delete_gone(&plan.remote, stage, columns),
        Tag::Deleted,
    );
}
