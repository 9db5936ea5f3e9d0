//! The set-based upsert of the staged rows into an existing remote table, leaving unchanged rows
//! alone. A dry run runs it too (its transaction rolls back), so that it tries the very
//! statements of the real run and counts what they change.

use super::plan::TablePlan;
use super::sql::{self, Column};
use super::writes::{Tag, Writes};

/// The steps that upsert the staged rows of `stage`; their answers give the inserts and updates,
/// and for a full export the remote rows (whence the remote-only ones).
pub fn upsert(plan: &TablePlan, columns: &[Column], stage: &str, writes: &mut Writes) {
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
