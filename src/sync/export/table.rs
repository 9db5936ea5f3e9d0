//! Exporting one planned table inside the remote transaction: create the remote table if the
//! plan says so, copy the local rows in (straight into a new table when every column travels in
//! its own binary form, otherwise through a staging table), then load a new table or upsert into
//! an existing one, delete what is gone locally, and move the sequences.

use std::time::Instant;

use postgres::Transaction;

use super::copy::copy_rows;
use super::plan::TablePlan;
use super::sql::{self, Column};
use super::transaction::batch;
use super::{constraints, delete, distribution, sequences, upsert};
use crate::error::Result;
use crate::sqlite::Db;
use crate::sync::summary::TableCounts;
use crate::sync::{elapsed_ms, JobLog, Problems, Progress};

/// Exports the table of `plan`, the `index`th of the export; returns its counts.
#[allow(clippy::too_many_arguments)]
pub fn export_table(
    tx: &mut Transaction,
    db: &Db,
    plan: &TablePlan,
    index: usize,
    dry_run: bool,
    progress: &Progress,
    problems: &mut Problems,
    log: &mut JobLog,
) -> Result<TableCounts> {
    let table = plan.name.as_str();
    progress.check_cancel(table)?;
    let columns = plan.sql_columns();
    if plan.create {
        let create = sql::create_table(&plan.remote, &columns, |c| plan.rules.column_clause(c));
        batch(tx, table, "CREATE TABLE failed", &create)?;
        distribution::apply(tx, plan)?;
        log.info(Some(table), format!("created {}", plan.remote));
    }
    // A table created in this transaction takes the rows directly when every column travels in
    // its own binary form; existing tables (and the rest) get them in a staging table first.
    let direct = plan.create && plan.columns.iter().all(|c| !c.ty.staged_as_text());
    let stage = sql::stage_name(index);
    if !direct {
        let create = sql::create_stage(&stage, &columns);
        batch(tx, table, "cannot create the staging table", &create)?;
    }
    let into = if direct { &plan.remote } else { &stage };

    let copy_started = Instant::now();
    let copied = copy_rows(tx, db, plan, into, dry_run, progress, problems)?;
    log.info(
        Some(table),
        format!(
            "copied {} rows {} in {:.0} ms",
            copied.rows,
            if direct {
                "into the new table"
            } else {
                "to staging"
            },
            elapsed_ms(copy_started)
        ),
    );

    let mut counts = copied.counts;
    if plan.create {
        load_new(tx, plan, &columns, &stage, direct)?;
        counts.inserts = copied.rows;
    } else {
        upsert::upsert(tx, plan, &columns, &stage, copied.rows, &mut counts)?;
        if plan.propagate_deletes {
            counts.deletes = match plan.window {
                Some(_) => delete::delete_gone(tx, plan, &columns, &stage, &copied.gone)?,
                None => delete::delete_missing(tx, plan, &columns, &stage)?,
            };
        }
    }
    log.info(
        Some(table),
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
    // A sequence moved by setval stays moved after a rollback: a dry run leaves them alone.
    if !dry_run {
        sequences::advance(tx, plan)?;
    }
    Ok(counts)
}

/// Fills a table created in this transaction from its staging table (unless the rows went in
/// directly), then adds its primary key and indexes: one index build each instead of an index
/// update per row.
fn load_new(
    tx: &mut Transaction,
    plan: &TablePlan,
    columns: &[Column],
    stage: &str,
    direct: bool,
) -> Result<()> {
    let table = plan.name.as_str();
    if !direct {
        let insert = sql::insert_staged(&plan.remote, stage, columns);
        batch(tx, table, "INSERT failed", &insert)?;
    }
    let key = sql::add_primary_key(&plan.remote, columns);
    batch(tx, table, "adding the primary key failed", &key)?;
    constraints::add_indexes(tx, plan)
}
