//! Export: local tables -> the remote Postgres, in one remote transaction.
//!
//! One job is one remote transaction: an advisory lock that holds behind transaction poolers
//! (`pg_try_advisory_xact_lock`), for each table the local rows in a `TEMP ... ON COMMIT DROP`
//! staging table, then one set-based upsert that leaves unchanged rows alone and counts the
//! inserts and updates, and COMMIT. A dry run runs the same statements, the writes included,
//! and ends with ROLLBACK, so a dry run that passes predicts a real run that passes; only the
//! sequences, which a rollback would not restore, are left alone. The local side is read in one
//! snapshot and streamed.
//!
//! Round trips, not bytes, are what a remote server across a network charges for, so the
//! export sends in phases, each as few messages as it can, whatever the number of tables: the
//! lock and the catalog of every table it writes (one batch); the remote and staging tables
//! (one batch); the rows (small tables packed together, large ones by COPY); every table's
//! writes (one batch, the dry run's too); COMMIT. A tracked table with no change waiting is
//! idle: not looked at remotely at all. docs/design.md, "Round trips", says what was batched
//! and what was not.
//!
//! It returns the job's `Summary` (src/sync/summary.rs), stored as the job's `summary`.
//!
//! This module runs the phases in order; each step is its own module: `incremental` (which
//! tables go incrementally, which are idle), `plan` (what to do with each table),
//! `distribution` (on Citus, the distributed and reference tables it creates), `constraints`
//! (the constraints and indexes of the tables it creates), `transaction` (begin under the lock,
//! end), `table` (one table's parts: `copy` and `pack` send its rows, `writes`, `upsert` and
//! `delete` write them), `outcome` (the summary). `sql` holds the text of every statement they
//! send.

mod constraints;
mod copy;
mod delete;
mod distribution;
mod incremental;
mod outcome;
mod pack;
mod plan;
mod sql;
mod table;
mod transaction;
mod upsert;
mod writes;

use std::time::Instant;

use postgres::Transaction;

use self::incremental::Tracking;
use self::pack::Pack;
use self::plan::TablePlan;
use super::options::ExportOptions;
use super::summary::{Summary, TableSummary};
use super::tracking::{self, Advance};
use super::{JobLog, Level, Problems, Progress};
use crate::error::{Error, Result};
use crate::local::tables::{self, LocalTable};
use crate::remote::batch;
use crate::remote::catalog::Catalog;
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
        let tracked = incremental::tracked_in(db, &names, options)?;
        let trackings = incremental::trackings(db, request, &locals, &tracked, through)?;
        let mut busy = Vec::new();
        let mut idle = Vec::new();
        for (local, tracking) in locals.iter().zip(&trackings) {
            if incremental::is_idle(db, options, tracking.as_ref())? {
                idle.push((local, tracking.as_ref().map(|t| t.tracking_id)));
            } else {
                busy.push((local, tracking.as_ref()));
            }
        }

        let (mut session, connect_ms) = super::connect(request.info, started, log)?;
        let remotes: Vec<String> = busy
            .iter()
            .map(|(l, _)| plan::remote_name(&options.schema, &l.name))
            .collect();
        let (mut tx, begun) = transaction::begin(&mut session, &options.schema, &remotes, log)?;
        let schema_created = transaction::ensure_schema(
            &mut tx,
            &options.schema,
            begun.schema_exists,
            options.create_tables,
            request.dry_run,
            log,
        )?;
        let mut plans = plan_tables(&begun.catalog, db, request, &busy, log)?;
        distribution::plan(&mut tx, &mut plans, options)?;
        let busy_locals: Vec<&LocalTable> = busy.iter().map(|(l, _)| *l).collect();
        constraints::plan(
            &begun.catalog,
            db,
            &mut plans,
            &busy_locals,
            &options.schema,
        )?;
        for plan in &plans {
            for note in &plan.rules.not_created {
                log.info(Some(&plan.name), format!("not created: {note}"));
            }
        }
        for (local, _) in &idle {
            log.info(Some(&local.name), "idle: no change since the last export");
        }
        progress.set_total(plans.iter().map(|p| p.source_rows).sum());

        let mut problems =
            Problems::of_plans(plans.iter().map(|p| (p.name.as_str(), &p.problems[..])));
        if !request.dry_run {
            problems.refuse_full_run("export")?;
        }
        let mut exported =
            export_tables(&mut tx, db, request, &plans, progress, &mut problems, log)?;
        transaction::end(tx, request.dry_run, log)?;

        // Every table in the order of the selection, idle ones included.
        let tables = names
            .iter()
            .filter_map(
                |name| match exported.iter().position(|t| &t.table == name) {
                    Some(at) => Some(exported.swap_remove(at)),
                    None => idle
                        .iter()
                        .find(|(l, _)| &l.name == name)
                        .map(|(local, _)| outcome::idle(local, options)),
                },
            )
            .collect();
        let summary = outcome::summary(
            request,
            tables,
            problems,
            schema_created,
            through,
            connect_ms,
            started,
        );
        let exported_tracked: Vec<i64> = plans
            .iter()
            .filter_map(|p| p.tracking_id)
            .chain(idle.iter().filter_map(|(_, id)| *id))
            .collect();
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
    catalog: &Catalog,
    db: &Db,
    request: &ExportRequest,
    busy: &[(&LocalTable, Option<&Tracking>)],
    log: &mut JobLog,
) -> Result<Vec<TablePlan>> {
    let mut plans = Vec::new();
    for (local, tracking) in busy {
        let plan = plan::plan_table(catalog, db, local, request.options, *tracking)?;
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

/// Exports every table whose plan has no problem, in three phases for all of them: one batch
/// creates the remote and staging tables, the rows go (`table::send_rows`), one batch writes
/// them and adds the foreign keys of the tables created (a dry run's too, rolled back with the
/// transaction); then summarizes each table. A dry run also checks the values of a keyless
/// table, so its preview lists them with the missing key.
fn export_tables(
    tx: &mut Transaction,
    db: &Db,
    request: &ExportRequest,
    plans: &[TablePlan],
    progress: &Progress,
    problems: &mut Problems,
    log: &mut JobLog,
) -> Result<Vec<TableSummary>> {
    let dry_run = request.dry_run;
    let exported: Vec<usize> = (0..plans.len())
        .filter(|&i| plans[i].problems.is_empty())
        .collect();
    let mut setup = Vec::new();
    for &i in &exported {
        setup.extend(table::setup(&plans[i], i)?);
    }
    batch::run(tx, &setup)?;
    for plan in exported.iter().map(|&i| &plans[i]).filter(|p| p.create) {
        log.info(Some(&plan.name), format!("created {}", plan.remote));
    }

    let mut pack = Pack::default();
    let mut sent = Vec::new();
    for &i in &exported {
        let started = Instant::now();
        let copied = table::send_rows(
            tx, db, &plans[i], i, dry_run, progress, problems, &mut pack, log,
        )?;
        sent.push((i, copied, started));
    }
    pack.send(tx)?;

    let writes: Vec<_> = sent
        .iter()
        .map(|(i, copied, _)| table::writes(&plans[*i], *i, copied, dry_run))
        .collect();
    let mut steps: Vec<_> = writes
        .iter()
        .flat_map(|w| w.steps.iter())
        .cloned()
        .collect();
    steps.extend(constraints::foreign_keys(plans));
    let answers = batch::run(tx, &steps)?;

    let mut tables = Vec::new();
    let mut answered = answers.as_slice();
    let mut sent = sent.into_iter().zip(&writes).peekable();
    for (index, plan) in plans.iter().enumerate() {
        let table_started = Instant::now();
        let counts = match sent.next_if(|((i, _, _), _)| *i == index) {
            Some(((_, copied, started), writes)) => {
                let (mine, rest) = answered.split_at(writes.steps.len());
                answered = rest;
                let mut counts = copied.counts;
                if plan.create {
                    counts.inserts = copied.rows;
                } else {
                    writes.count(mine, copied.rows, &mut counts);
                }
                table::log_counts(plan, &counts, log);
                tables.push(outcome::table(
                    plan,
                    counts,
                    &request.options.schema,
                    started,
                ));
                continue;
            }
            None if dry_run && plan.checks_values_only() => {
                let found = copy::check_values(db, plan, problems)?;
                outcome::skipped(plan, found)
            }
            None => outcome::skipped(plan, 0),
        };
        tables.push(outcome::table(
            plan,
            counts,
            &request.options.schema,
            table_started,
        ));
    }
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
