//! Deleting remotely the rows gone locally, when deletes propagate. A full export deletes every
//! remote row the staging table lacks (its dry run counted them already: the remote-only rows);
//! an incremental one, the remote rows of the changed keys that are gone locally, whose keys
//! were sent to the table of deleted keys with the rows (`pack`).

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
/// `stage`, or for a dry run counts them.
pub fn delete_gone(
    plan: &TablePlan,
    columns: &[Column],
    stage: &str,
    dry_run: bool,
    writes: &mut Writes,
) {
    let (what, statement) = if dry_run {
        (
            "counting deletes failed",
            sql::count_gone(&plan.remote, stage, columns),
        )
    } else {
        (
            "DELETE failed",
            sql::delete_gone(&plan.remote, stage, columns),
        )
    };
    writes.push(plan, what, statement, Tag::Deleted);
}
