//! The set-based upsert of the staged rows into an existing remote table, leaving unchanged rows
//! alone; a dry run only counts what it would insert and update.

use super::plan::TablePlan;
use super::sql::{self, Column};
use super::writes::{Tag, Writes};

/// The steps that upsert the staged rows of `stage`; their answers give the inserts and updates,
/// and for a full export the remote rows (whence the remote-only ones).
pub fn upsert(
    plan: &TablePlan,
    columns: &[Column],
    stage: &str,
    dry_run: bool,
    writes: &mut Writes,
) {
    let remote = plan.remote.as_str();
    writes.push(
        plan,
        "ANALYZE of the staging table failed",
        sql::analyze(stage),
        Tag::Nothing,
    );
    // An incremental export does not read the whole remote table.
    if plan.window.is_none() {
        writes.push(
            plan,
            "counting the remote rows failed",
            sql::count_rows(remote),
            Tag::RemoteRows,
        );
    }
    if dry_run {
        writes.push(
            plan,
            "counting changes failed",
            sql::count_changes(remote, stage, columns),
            Tag::Changes,
        );
        return;
    }
    writes.push(
        plan,
        "comparing with the remote rows failed",
        sql::create_diff(remote, stage, columns),
        Tag::Nothing,
    );
    if let Some(update) = sql::update_changed(remote, stage, columns) {
        writes.push(plan, "UPDATE failed", update, Tag::Updated);
    }
    writes.push(
        plan,
        "INSERT failed",
        sql::insert_new(remote, stage, columns),
        Tag::Inserted,
    );
}
