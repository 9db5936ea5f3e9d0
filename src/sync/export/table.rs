//! Exporting one planned table inside the remote transaction, in three parts that the export
//! runs for all tables at once: the statements that prepare it (create the remote table if the
//! plan says so, a Citus table if the options say so, and its staging tables), its rows
//! (straight into a new table when every column travels in its own binary form, otherwise into
//! a staging table), and the statements that load a new table or upsert into an existing one,
//! delete what is gone locally and move the sequences.

use std::time::Instant;

use postgres::Transaction;

use super::copy::{copy_rows, Copied};
use super::pack::Pack;
use super::plan::TablePlan;
use super::sql;
use super::writes::{self, Writes};
use super::{delete, distribution, upsert};
use crate::error::Result;
use crate::remote::batch::Step;
use crate::sqlite::Db;
use crate::sync::{elapsed_ms, JobLog, Problems, Progress};

/// Whether the rows go straight into the table: created in this transaction, with every column
/// in its own binary form. Existing tables (and the rest) get them in a staging table first.
fn direct(plan: &TablePlan) -> bool {
    plan.create && plan.columns.iter().all(|c| !c.ty.staged_as_text())
}

/// Whether the changed keys gone locally are sent, for the deletes to join against.
fn sends_gone_keys(plan: &TablePlan) -> bool {
    plan.window.is_some() && plan.propagate_deletes
}

/// The statements that prepare the `index`th table of the export for its rows.
pub fn setup(plan: &TablePlan, index: usize) -> Result<Vec<Step>> {
    let table = plan.name.as_str();
    let columns = plan.sql_columns();
    let stage = sql::stage_name(index);
    let mut steps = Vec::new();
    if plan.create {
        let create = sql::create_table(&plan.remote, &columns, |c| plan.rules.column_clause(c));
        steps.push(Step::of_table(table, "CREATE TABLE failed", create));
        steps.extend(distribution::step(plan));
    }
    if !direct(plan) {
        let create = sql::create_stage(&stage, &columns);
        steps.push(Step::of_table(
            table,
            "cannot create the staging table",
            create,
        ));
    }
    if sends_gone_keys(plan) {
        let key: Vec<_> = plan.key_in_order()?.iter().map(|c| c.sql()).collect();
        let create = sql::create_gone(&stage, &key);
        steps.push(Step::of_table(
            table,
            "cannot create the table of deleted keys",
            create,
        ));
    }
    Ok(steps)
}

/// Sends the rows of the `index`th table (by COPY, or into `pack`), and its changed keys gone
/// locally.
#[allow(clippy::too_many_arguments)]
pub fn send_rows(
    tx: &mut Transaction,
    db: &Db,
    plan: &TablePlan,
    index: usize,
    dry_run: bool,
    progress: &Progress,
    problems: &mut Problems,
    pack: &mut Pack,
    log: &mut JobLog,
) -> Result<Copied> {
    let table = plan.name.as_str();
    progress.check_cancel(table)?;
    let stage = sql::stage_name(index);
    let into = if direct(plan) { &plan.remote } else { &stage };
    let started = Instant::now();
    let copied = copy_rows(tx, db, plan, into, dry_run, progress, problems, pack)?;
    if !copied.gone.is_empty() {
        pack.add(tx, table, &sql::gone_name(&stage), &copied.gone)?;
    }
    log.info(
        Some(table),
        format!(
            "read {} rows for {} in {:.0} ms",
            copied.rows,
            if direct(plan) {
                "the new table"
            } else {
                "staging"
            },
            elapsed_ms(started)
        ),
    );
    Ok(copied)
}

/// The statements that write the `index`th table once its rows are sent. A dry run has the
/// same ones, and rolls them back, but for the sequences.
pub fn writes(plan: &TablePlan, index: usize, copied: &Copied, dry_run: bool) -> Writes {
    let columns = plan.sql_columns();
    let stage = sql::stage_name(index);
    let mut writes = Writes::default();
    if plan.create {
        writes::load_new(plan, &columns, &stage, direct(plan), &mut writes);
    } else {
        upsert::upsert(plan, &columns, &stage, &mut writes);
        match plan.window {
            _ if !plan.propagate_deletes => {}
            Some(_) if copied.gone.is_empty() => {}
            Some(_) => delete::delete_gone(plan, &columns, &stage, &mut writes),
            None => delete::delete_missing(plan, &columns, &stage, &mut writes),
        }
    }
    // A sequence moved by setval stays moved after a rollback: a dry run leaves them alone.
    if !dry_run {
        writes::advance_sequences(plan, &mut writes);
    }
    writes
}

/// Logs the counts of a table.
pub fn log_counts(plan: &TablePlan, counts: &crate::sync::summary::TableCounts, log: &mut JobLog) {
    log.info(
        Some(&plan.name),
        format!(
            "{} inserts, {} updates, {} unchanged, {} deletes{}",
            counts.inserts,
            counts.updates,
            counts.unchanged,
            counts.deletes,
            match counts.remote_only {
                Some(remote_only) => format!(", {remote_only} only on the remote"),
                None => String::new(),
            }
        ),
    );
}
