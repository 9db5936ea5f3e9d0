//! Export: local tables -> the remote Postgres, in one remote transaction.
//!
//! One job is one remote transaction: an advisory lock that holds behind transaction poolers
//! (`pg_try_advisory_xact_lock`), for each table a binary COPY of the local rows into a
//! `TEMP ... ON COMMIT DROP` staging table, then one set-based upsert that leaves unchanged rows
//! alone and counts the inserts and updates, and COMMIT. A dry run runs the same statements, the
//! writes included, and ends with ROLLBACK, so a dry run that passes predicts a real run that
//! passes; only the sequences, which a rollback would not restore, are left alone.
//! The local side is read in one snapshot and streamed.
//!
//! It returns the job's `Summary` (src/sync/summary.rs), stored as the job's `summary`.
//!
//! This module runs the steps in order; each step is its own module: `plan` (what to do with
//! each table), `distribution` (on Citus, the distributed and reference tables it creates),
//! `constraints` (the constraints and indexes of the tables it creates),
//! `transaction` (begin under the lock, end), `table` (one table's writes: `copy`, `upsert`,
//! `delete`, `sequences`), `outcome` (the summary). `sql` holds the text of
//! every statement they send.

mod constraints;
mod copy;
mod delete;
mod distribution;
mod outcome;
mod plan;
mod sequences;
mod sql;
mod table;
mod transaction;
mod upsert;

use std::time::Instant;

use postgres::Transaction;

use self::plan::{TablePlan, Tracking};
use super::options::ExportOptions;
use super::summary::{Summary, TableSummary};
use super::tracking::{self, Advance, Tracked};
use super::{JobLog, Level, Problems, Progress};
use crate::error::{Error, Result};
use crate::local::tables::{self, LocalTable};
use crate::remote::ConnInfo;
use crate::sqlite::Db;

pub struct ExportRequest<'a> {
    pub info: &'a ConnInfo,
    /// The saved connection and the job: watermarks of tracked tables are kept per connection.
    pub connection_id: i64,
    pub job_id: i64,
    pub dry_run: bool,
    pub options: &'a ExportOptions,
}

/// The tables an export with `options` would cover, after `tables`, `exclude` and eligibility.
/// A name in `tables`, `exclude` or `use_rowid` that is not an eligible local table is an error.
pub fn select_tables(db: &Db, options: &ExportOptions) -> Result<Vec<String>> {
    let selected = tables::select(
        db,
        options.tables.as_deref(),
        &options.exclude,
        &[("use_rowid", &options.use_rowid)],
    )?;
    if selected.is_empty() {
        return Err(Error::invalid(
            "there is no table to export: create one, or check the tables and exclude options",
        ));
    }
    Ok(selected)
}

/// Checks the `column_types` option against the tables `names` (those the export selects), as
/// queuing does so that a wrong entry is refused before the job exists.
pub fn check_column_types(db: &Db, names: &[String], options: &ExportOptions) -> Result<()> {
    if options.column_types.is_empty() {
        return Ok(());
    }
    let locals = names
        .iter()
        .map(|name| tables::describe(db, name))
        .collect::<Result<Vec<_>>>()?;
    plan::check_column_types(&locals, options)
}

/// Runs one export. Errors carry the table and statement at fault; the remote transaction is
/// rolled back on any error, and always for a dry run.
pub fn run(
    db: &Db,
    request: &ExportRequest,
    progress: &Progress,
    log: &mut JobLog,
) -> Result<Summary> {
    let started = Instant::now();
    let options = request.options;
    let names = select_tables(db, options)?;
    let (mut summary, exported_tracked, through) = db.snapshot(|| {
        let locals = names
            .iter()
            .map(|name| tables::describe(db, name))
            .collect::<Result<Vec<_>>>()?;
        plan::check_column_types(&locals, options)?;
        // The high water and the tracked tables come from the same snapshot as the rows: a
        // change committed after it has a higher seq and is shipped next time.
        let through = tracking::high_water(db)?;
        let tracked = plan::tracked_in(db, &names, options)?;

        let (mut session, connect_ms) = super::connect(request.info, started, log)?;
        let mut tx = transaction::begin(&mut session, &options.schema, log)?;
        let schema_created = transaction::ensure_schema(
            &mut tx,
            &options.schema,
            options.create_tables,
            request.dry_run,
            log,
        )?;
        let mut plans = plan_tables(&mut tx, db, request, &locals, &tracked, through, log)?;
        distribution::plan(&mut tx, &mut plans, options)?;
        constraints::plan(&mut tx, db, &mut plans, &locals, &options.schema)?;
        for plan in &plans {
            for note in &plan.rules.not_created {
                log.info(Some(&plan.name), format!("not created: {note}"));
            }
        }
        progress.set_total(plans.iter().map(|p| p.source_rows).sum());

        let mut problems =
            Problems::of_plans(plans.iter().map(|p| (p.name.as_str(), &p.problems[..])));
        if !request.dry_run {
            problems.refuse_full_run("export")?;
        }
        let tables = export_tables(&mut tx, db, request, &plans, progress, &mut problems, log)?;
        transaction::end(tx, request.dry_run, log)?;

        let summary = outcome::summary(
            request,
            tables,
            problems,
            schema_created,
            through,
            connect_ms,
            started,
        );
        let exported_tracked: Vec<i64> = plans.iter().filter_map(|p| p.tracking_id).collect();
        Ok((summary, exported_tracked, through))
    })?;
    if !request.dry_run && !exported_tracked.is_empty() {
        // The remote has committed: a watermark that cannot be saved only means the next export
        // sends these changes again, which its upserts and deletes make harmless.
        if let Err(e) = save_watermark(db, request, &exported_tracked, through) {
            log.push(
                Level::Warn,
                None,
                format!("the watermark could not be saved ({e}): the next export sends these changes again"),
            );
            summary.watermark_saved = Some(false);
        }
    }
    Ok(summary)
}

/// Plans every table, logging each plan and its problems.
fn plan_tables(
    tx: &mut Transaction,
    db: &Db,
    request: &ExportRequest,
    locals: &[LocalTable],
    tracked: &[Tracked],
    through: i64,
    log: &mut JobLog,
) -> Result<Vec<TablePlan>> {
    let options = request.options;
    let mut plans = Vec::new();
    for local in locals {
        let tracking = match tracked.iter().find(|t| t.table == local.name) {
            Some(t) => Some(Tracking {
                tracking_id: t.id,
                watermark: tracking::watermark(db, t.id, request.connection_id, &options.schema)?,
                through,
            }),
            None => None,
        };
        let plan = plan::plan_table(tx, db, local, options, tracking.as_ref())?;
        log.info(
            Some(&plan.name),
            format!(
                "planned: {} export of {} {}, {}, key ({})",
                plan.mode().name(),
                plan.source_rows,
                if plan.window.is_some() {
                    format!("changed rows ({} changes)", plan.changes)
                } else {
                    "rows".to_string()
                },
                if plan.create {
                    "remote table to create"
                } else {
                    "remote table exists"
                },
                plan.key()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        for problem in &plan.problems {
            log.push(Level::Warn, Some(&plan.name), problem.problem.clone());
        }
        plans.push(plan);
    }
    Ok(plans)
}

/// Exports every table whose plan has no problem, then adds the foreign keys of the tables it
/// created, and summarizes each table. A dry run also checks the values of a keyless table, so
/// its preview lists them with the missing key.
fn export_tables(
    tx: &mut Transaction,
    db: &Db,
    request: &ExportRequest,
    plans: &[TablePlan],
    progress: &Progress,
    problems: &mut Problems,
    log: &mut JobLog,
) -> Result<Vec<TableSummary>> {
    let mut tables = Vec::new();
    for (index, plan) in plans.iter().enumerate() {
        let table_started = Instant::now();
        let counts = if plan.problems.is_empty() {
            table::export_table(
                tx,
                db,
                plan,
                index,
                request.dry_run,
                progress,
                problems,
                log,
            )?
        } else if request.dry_run && plan.checks_values_only() {
            let found = copy::check_values(db, plan, problems)?;
            outcome::skipped(plan, found)
        } else {
            outcome::skipped(plan, 0)
        };
        let schema = &request.options.schema;
        tables.push(outcome::table(plan, counts, schema, table_started));
    }
    constraints::add_foreign_keys(tx, plans)?;
    Ok(tables)
}

/// Moves the watermark of the exported tracked tables to `through`.
fn save_watermark(
    db: &Db,
    request: &ExportRequest,
    exported_tracked: &[i64],
    through: i64,
) -> Result<()> {
    let advance = Advance {
        connection_id: request.connection_id,
        target: &request.info.display(),
        schema: &request.options.schema,
        job_id: request.job_id,
        through,
    };
    advance.save(db, exported_tracked)
}
