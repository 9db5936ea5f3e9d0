//! The statements that write one table once its rows are staged, and the counts read back from
//! their answers. No statement needs the answer of another, so the statements of every table
//! go to the server together (`remote::batch`), after the rows: one round trip for all. A dry
//! run sends the same batch, but for the sequences, and rolls it back.

use super::plan::TablePlan;
use super::sql::{self, Column};
use crate::mapping::PgType;
use crate::remote::batch::{Answer, Step};
use crate::sync::summary::TableCounts;

/// What the answer to a step counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Nothing,
    /// A row of `count(*)` of the remote table.
    RemoteRows,
    /// Rows updated.
    Updated,
    /// Rows inserted.
    Inserted,
    /// Rows deleted.
    Deleted,
}

/// One table's steps, each with what its answer counts.
#[derive(Default)]
pub struct Writes {
    pub steps: Vec<Step>,
    tags: Vec<Tag>,
}

impl Writes {
    pub fn push(&mut self, plan: &TablePlan, what: &str, sql: String, tag: Tag) {
        self.steps.push(Step::of_table(&plan.name, what, sql));
        self.tags.push(tag);
    }

    /// The counts of the table from the answers to its steps: inserts, updates and deletes,
    /// unchanged as the rest of the `copied` rows, and for a full export the remote-only rows.
    pub fn count(&self, answers: &[Answer], copied: u64, counts: &mut TableCounts) {
        let mut remote_rows = None;
        for (tag, answer) in self.tags.iter().zip(answers) {
            match tag {
                Tag::Nothing => {}
                Tag::RemoteRows => remote_rows = Some(answer.count(0)),
                Tag::Updated => counts.updates = answer.affected,
                Tag::Inserted => counts.inserts = answer.affected,
                Tag::Deleted => counts.deletes = answer.affected,
            }
        }
        counts.unchanged = copied.saturating_sub(counts.inserts + counts.updates);
        if let Some(remote_rows) = remote_rows {
            counts.remote_only = Some(remote_rows.saturating_sub(copied - counts.inserts));
        }
    }
}

/// The steps that move the sequences of the key columns of `plan` past its keys (a real run).
/// Only integer columns have a serial or identity sequence; the statement casts the largest key
/// to bigint, which another type (a text key) would fail.
pub fn advance_sequences(plan: &TablePlan, writes: &mut Writes) {
    let integer = |ty| matches!(ty, PgType::SmallInt | PgType::Integer | PgType::BigInt);
    for column in plan.key().filter(|c| integer(c.ty)) {
        writes.push(
            plan,
            "moving its sequence failed",
            sql::advance_sequence(&plan.remote, &column.name),
            Tag::Nothing,
        );
    }
}

/// The steps that fill a table created in this export from its staging table (unless the rows
/// went in directly), then add its primary key and indexes: one index build each instead of
/// an index update per row.
pub fn load_new(
    plan: &TablePlan,
    columns: &[Column],
    stage: &str,
    direct: bool,
    writes: &mut Writes,
) {
    if !direct {
        let insert = sql::insert_staged(&plan.remote, stage, columns);
        writes.push(plan, "INSERT failed", insert, Tag::Nothing);
    }
    let key = sql::add_primary_key(&plan.remote, columns);
    writes.push(plan, "adding the primary key failed", key, Tag::Nothing);
    for statement in &plan.rules.indexes {
        writes.push(
            plan,
            "creating an index failed",
            statement.clone(),
            Tag::Nothing,
        );
    }
}
