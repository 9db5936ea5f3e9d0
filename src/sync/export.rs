//! Export: local tables -> the remote Postgres, in one remote transaction.
//!
//! One job is one remote transaction: an advisory lock that holds behind transaction poolers
//! (`pg_try_advisory_xact_lock`), for each table a binary COPY of the local rows into a
//! `TEMP ... ON COMMIT DROP` staging table, the counts (insert / update / unchanged), then one
//! set-based upsert that leaves unchanged rows alone, and COMMIT, or ROLLBACK for a dry run.
//! The local side is read in one snapshot and streamed.
//!
//! It returns the job's `Summary` (src/sync/summary.rs), stored as the job's `summary`.

use std::io::Write;
use std::time::Instant;

use postgres::types::Type;
use postgres::Transaction;
use serde_json::{Map, Value};

use super::options::{ExportOptions, Mode};
use super::summary::{ColumnSummary, Kind, Summary, TableCounts, TableSummary, Timings};
use super::tracking::{self, Advance, Tracked, Window};
use super::{elapsed_ms, JobLog, Problems, Progress};
use crate::error::{Error, Result};
use crate::local::tables::{self, LocalTable};
use crate::mapping::{self, PgType, Profile};
use crate::remote::catalog;
use crate::remote::session::remote_error;
use crate::remote::ConnInfo;
use crate::sql_text::{quote, sql_literal};
use crate::sqlite::api::Stmt;
use crate::sqlite::Db;

/// Postgres truncates longer identifiers; we refuse them instead.
const MAX_IDENTIFIER_BYTES: usize = 63;
/// Bytes of COPY data buffered before a write to the server.
const COPY_CHUNK: usize = 1 << 20;

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

struct ColumnPlan {
    name: String,
    sqlite_type: String,
    ty: PgType,
    /// The expression that reads it locally.
    local_expr: String,
    is_key: bool,
}

struct TablePlan {
    name: String,
    /// `"schema"."table"`.
    remote: String,
    columns: Vec<ColumnPlan>,
    /// The key columns in key order (the order the tracking triggers record them in).
    key_order: Vec<String>,
    create: bool,
    /// `Some` for an incremental export: the changes it ships.
    window: Option<Window>,
    /// Set when the table is tracked: its watermark moves once the export commits.
    tracking_id: Option<i64>,
    propagate_deletes: bool,
    /// Rows it reads: every local row, or every changed key.
    source_rows: u64,
    /// Change records read (incremental).
    changes: u64,
    problems: Vec<String>,
}

impl TablePlan {
    fn key(&self) -> impl Iterator<Item = &ColumnPlan> {
        self.columns.iter().filter(|c| c.is_key)
    }

    fn non_key(&self) -> impl Iterator<Item = &ColumnPlan> {
        self.columns.iter().filter(|c| !c.is_key)
    }

    fn mode(&self) -> Mode {
        if self.window.is_some() {
            Mode::Incremental
        } else {
            Mode::Full
        }
    }
}

#[derive(Default)]
struct Counts {
    source_rows: u64,
    inserts: i64,
    updates: i64,
    unchanged: i64,
    skipped: u64,
    remote_only: i64,
    deletes: i64,
    problems: u64,
    /// Changed keys that are no longer in the local table (incremental).
    gone: u64,
}

impl Counts {
    /// The counts a summary shows. An incremental export does not read the whole remote
    /// table, so it has no count of remote-only rows.
    fn table_counts(&self, incremental: bool) -> TableCounts {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        TableCounts {
            source_rows: self.source_rows,
            inserts: count(self.inserts),
            updates: count(self.updates),
            unchanged: count(self.unchanged),
            skipped: self.skipped,
            deletes: count(self.deletes),
            remote_only: (!incremental).then(|| count(self.remote_only)),
            problems: self.problems,
        }
    }
}

/// A tracked table's state in the export's snapshot.
struct Tracking {
    tracking_id: i64,
    /// The last change already exported to this connection and schema.
    watermark: Option<i64>,
    /// The snapshot's high water.
    through: i64,
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
        check_column_types(&locals, options)?;
        // The high water and the tracked tables come from the same snapshot as the rows: a
        // change committed after it has a higher seq and is shipped next time.
        let through = tracking::high_water(db)?;
        let tracked = tracked_in(db, &names, options)?;

        let (mut session, connect_ms) = super::connect(request.info, started, log)?;
        let mut tx = session
            .client
            .transaction()
            .map_err(|e| remote_error("cannot begin a remote transaction", &e))?;
        // Zone-less timestamps bound for timestamptz mean UTC, whatever the server's default.
        tx.batch_execute("SET LOCAL TimeZone = 'UTC'")
            .map_err(|e| remote_error("cannot set the time zone", &e))?;
        take_lock(&mut tx, &options.schema)?;
        log.info(None, format!("lock taken on schema {}", options.schema));

        let mut plans = Vec::new();
        for local in &locals {
            let tracking = match tracked.iter().find(|t| t.table == local.name) {
                Some(t) => Some(Tracking {
                    tracking_id: t.id,
                    watermark: tracking::watermark(
                        db,
                        t.id,
                        request.connection_id,
                        &options.schema,
                    )?,
                    through,
                }),
                None => None,
            };
            let plan = plan_table(&mut tx, db, local, options, tracking.as_ref())?;
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
                log.push(super::Level::Warn, Some(&plan.name), problem.clone());
            }
            plans.push(plan);
        }
        progress.set_total(plans.iter().map(|p| p.source_rows).sum());

        let mut problems =
            Problems::of_plans(plans.iter().map(|p| (p.name.as_str(), &p.problems[..])));
        if !request.dry_run {
            problems.refuse_full_run("export")?;
        }

        let mut tables = Vec::new();
        for (index, plan) in plans.iter().enumerate() {
            let table_started = Instant::now();
            let counts = if plan.problems.is_empty() {
                export_table(
                    &mut tx,
                    db,
                    plan,
                    index,
                    request.dry_run,
                    progress,
                    &mut problems,
                    log,
                )?
            } else {
                Counts {
                    source_rows: plan.source_rows,
                    skipped: plan.source_rows,
                    problems: plan.problems.len() as u64,
                    ..Counts::default()
                }
            };
            tables.push(TableSummary {
                table: plan.name.clone(),
                remote_table: format!("{}.{}", options.schema, plan.name),
                key: plan.key().map(|c| c.name.clone()).collect(),
                created: plan.create && plan.problems.is_empty(),
                mode: Some(plan.mode()),
                changes: Some(plan.changes),
                propagate_deletes: Some(plan.propagate_deletes),
                counts: counts.table_counts(plan.window.is_some()),
                columns: Some(
                    plan.columns
                        .iter()
                        .map(|c| ColumnSummary {
                            name: c.name.clone(),
                            sqlite_type: c.sqlite_type.clone(),
                            postgres_type: c.ty.sql().to_string(),
                        })
                        .collect(),
                ),
                ms: elapsed_ms(table_started),
            });
        }

        if request.dry_run {
            tx.rollback()
                .map_err(|e| remote_error("rollback failed", &e))?;
            log.info(None, "dry run: rolled back, nothing was written");
        } else {
            tx.commit().map_err(|e| remote_error("commit failed", &e))?;
            log.info(None, "committed");
        }
        let total_ms = elapsed_ms(started);
        let totals = Summary::total(&tables);
        let summary = Summary {
            kind: Kind::Export,
            dry_run: request.dry_run,
            strategy: None,
            target: request.info.display(),
            schema: options.schema.clone(),
            mode: options.mode,
            propagate_deletes: options.propagate_deletes,
            watermark: Some(through),
            watermark_saved: None,
            tables,
            totals,
            local_only_tables: None,
            remote_only_tables: None,
            problems: problems.listed,
            problems_total: problems.total,
            timings: Timings {
                connect_ms,
                total_ms,
            },
            rows_per_s: Summary::rate(totals.source_rows, total_ms),
            confirmed_dry_run: None,
            differences_from_dry_run: None,
        };
        let exported_tracked: Vec<i64> = plans.iter().filter_map(|p| p.tracking_id).collect();
        Ok((summary, exported_tracked, through))
    })?;
    if !request.dry_run && !exported_tracked.is_empty() {
        let advance = Advance {
            connection_id: request.connection_id,
            target: &request.info.display(),
            schema: &options.schema,
            job_id: request.job_id,
            through,
        };
        // The remote has committed: a watermark that cannot be saved only means the next export
        // sends these changes again, which its upserts and deletes make harmless.
        if let Err(e) = advance.save(db, &exported_tracked) {
            log.push(
                super::Level::Warn,
                None,
                format!("the watermark could not be saved ({e}): the next export sends these changes again"),
            );
            summary.watermark_saved = Some(false);
        }
    }
    Ok(summary)
}

/// The tracked tables this export covers, each checked to be still the table that was tracked.
/// Without a `tables` option, a tracked table that no longer exists is an error too.
fn tracked_in(db: &Db, names: &[String], options: &ExportOptions) -> Result<Vec<Tracked>> {
    let mut covered = Vec::new();
    for tracked in tracking::all(db)? {
        if names.contains(&tracked.table) {
            tracking::integrity(db, &tracked)?;
            covered.push(tracked);
        } else if options.tables.is_none() && !options.exclude.contains(&tracked.table) {
            // Not among the local tables: renamed or dropped. The check says so, and the fix.
            tracking::integrity(db, &tracked)?;
        }
    }
    Ok(covered)
}

/// Every `column_types` entry must name a column of a selected table and a supported type.
fn check_column_types(locals: &[LocalTable], options: &ExportOptions) -> Result<()> {
    for (column, spelling) in &options.column_types {
        let (table, name) = column.split_once('.').unwrap_or_default();
        let known = locals
            .iter()
            .find(|t| t.name == table)
            .is_some_and(|t| t.columns.iter().any(|c| c.name == name));
        if !known {
            return Err(Error::invalid(format!(
                "option column_types names {column}, which is not a column of an exported table"
            )));
        }
        if PgType::parse(spelling).is_none() {
            return Err(Error::invalid(format!(
                "option column_types gives {column} the type \"{spelling}\", which cloud_sync \
                 cannot write; supported: {}",
                mapping::SUPPORTED_TYPES
            )));
        }
    }
    Ok(())
}

/// One lock per remote database and schema, whatever host or pooler leads there. Held until
/// the transaction ends, so it works behind transaction-mode poolers.
fn take_lock(tx: &mut Transaction, schema: &str) -> Result<()> {
    let row = tx
        .query_typed_one(
            "SELECT pg_try_advisory_xact_lock(hashtextextended('cloud_sync:' || current_database() || '.' || $1, 0)), current_database()::text",
            &[(&schema, Type::TEXT)],
        )
        .map_err(|e| remote_error("cannot take the sync lock", &e))?;
    if row.get::<_, bool>(0) {
        Ok(())
    } else {
        Err(Error::Busy(format!(
            "another sync holds the lock on {}.{schema}: try again when it has finished",
            row.get::<_, String>(1)
        )))
    }
}

fn plan_table(
    tx: &mut Transaction,
    db: &Db,
    local: &LocalTable,
    options: &ExportOptions,
    tracking: Option<&Tracking>,
) -> Result<TablePlan> {
    let name = &local.name;
    let remote = format!("{}.{}", quote(&options.schema), quote(name));
    let mut problems = Vec::new();
    for identifier in std::iter::once(name).chain(local.columns.iter().map(|c| &c.name)) {
        if identifier.len() > MAX_IDENTIFIER_BYTES {
            problems.push(format!(
                "the name \"{identifier}\" is longer than Postgres's {MAX_IDENTIFIER_BYTES} bytes; rename it"
            ));
        }
    }

    let mut columns: Vec<ColumnPlan> = local
        .columns
        .iter()
        .map(|c| ColumnPlan {
            name: c.name.clone(),
            sqlite_type: c.decl_type.clone(),
            ty: PgType::Text,
            local_expr: quote(&c.name),
            is_key: c.pk_position > 0,
        })
        .collect();
    if local.key().is_empty() {
        if options.use_rowid.contains(name) {
            columns.insert(
                0,
                ColumnPlan {
                    name: "rowid".into(),
                    sqlite_type: "INTEGER".into(),
                    ty: PgType::BigInt,
                    local_expr: "_rowid_".into(),
                    is_key: true,
                },
            );
        } else {
            problems.push(
                "has no primary key, so rows cannot be matched with the remote ones: add one, or \
                 opt in with the use_rowid option (its rowid becomes the remote key)"
                    .into(),
            );
        }
    }

    let create = match catalog::columns(tx, &remote)? {
        None if !options.create_tables => {
            problems.push(format!(
                "the remote table {}.{name} does not exist, and create_tables is false",
                options.schema
            ));
            false
        }
        None => {
            let profiles = profiles(db, local)?;
            // The synthetic rowid key already has its type; every other column reads a local one.
            for column in columns.iter_mut().filter(|c| c.local_expr != "_rowid_") {
                let explicit = options.column_types.get(&format!("{name}.{}", column.name));
                let profile = profiles
                    .iter()
                    .find(|(n, _)| n == &column.name)
                    .map(|(_, p)| p);
                let chosen = match explicit {
                    Some(spelling) => PgType::parse(spelling).ok_or_else(|| spelling.clone()),
                    None => mapping::type_for_new_column(&column.sqlite_type, profile),
                };
                match chosen {
                    Ok(ty) => column.ty = ty,
                    Err(why) => problems.push(format!("column {} {why}", column.name)),
                }
            }
            true
        }
        Some(remote_columns) => {
            for column in columns.iter_mut() {
                match remote_columns.iter().find(|r| r.name == column.name) {
                    None => problems.push(format!(
                        "the remote table has no column \"{}\": add it (ALTER TABLE {remote} ADD \
                         COLUMN {} ...)",
                        column.name,
                        quote(&column.name)
                    )),
                    Some(r) => match PgType::parse(&r.spelling) {
                        Some(ty) => column.ty = ty,
                        None => problems.push(format!(
                            "remote column \"{}\" has type {}, which cloud_sync cannot write \
                             (supported: {})",
                            column.name,
                            r.spelling,
                            mapping::SUPPORTED_TYPES
                        )),
                    },
                }
            }
            for r in &remote_columns {
                if r.not_null && !r.has_default && !columns.iter().any(|c| c.name == r.name) {
                    problems.push(format!(
                        "remote column \"{}\" is NOT NULL without a default and has no local \
                         counterpart",
                        r.name
                    ));
                }
            }
            let key: Vec<&str> = columns
                .iter()
                .filter(|c| c.is_key)
                .map(|c| c.name.as_str())
                .collect();
            if !key.is_empty() && !catalog::has_unique_key(tx, &remote, &key)? {
                problems.push(format!(
                    "the remote table has no unique constraint on its key ({}): add one (ALTER \
                     TABLE {remote} ADD UNIQUE ({}))",
                    key.join(", "),
                    key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ")
                ));
            }
            false
        }
    };
    let window = incremental_window(name, options, tracking, create)?;
    let (source_rows, changes) = match &window {
        Some(window) => {
            let (changes, keys) = window.counts(db)?;
            (keys, changes)
        }
        None => {
            let rows = db
                .query_row(&format!("SELECT count(*) FROM {}", quote(name)), &[], |r| {
                    Ok(r.int(0))
                })?
                .unwrap_or(0) as u64;
            (rows, 0)
        }
    };
    Ok(TablePlan {
        name: name.clone(),
        remote,
        columns,
        key_order: local.key().iter().map(|c| c.name.clone()).collect(),
        create,
        propagate_deletes: options.propagate_deletes.unwrap_or(window.is_some()),
        window,
        tracking_id: tracking.map(|t| t.tracking_id),
        source_rows,
        changes,
        problems,
    })
}

/// The changes an incremental export of `local` ships, or `None` for a full export. Without a
/// `mode` option a table goes incrementally when it is tracked, was exported to this
/// connection and schema since, and its remote table still exists; `"incremental"` insists.
fn incremental_window(
    table: &str,
    options: &ExportOptions,
    tracking: Option<&Tracking>,
    remote_missing: bool,
) -> Result<Option<Window>> {
    let why_not = match (options.mode, tracking) {
        (Some(Mode::Full), _) => return Ok(None),
        (_, None) => format!(
            "table {table} is not tracked: track it (SELECT cloud_sync_track({})) and export \
             it once in full",
            sql_literal(table)
        ),
        (
            _,
            Some(Tracking {
                watermark: None, ..
            }),
        ) => format!(
            "table {table} has not been exported to this connection and schema since it was \
             tracked: export it once without mode incremental"
        ),
        (_, Some(_)) if remote_missing => format!(
            "the remote table {}.{table} does not exist: export it without mode incremental to \
             create it with every row",
            options.schema
        ),
        (_, Some(t)) => {
            return Ok(Some(Window {
                tracking_id: t.tracking_id,
                after: t.watermark.unwrap_or_default(),
                through: t.through,
            }))
        }
    };
    match options.mode {
        Some(Mode::Incremental) => Err(Error::invalid(format!(
            "mode incremental cannot be used: {why_not}"
        ))),
        _ => Ok(None),
    }
}

/// One aggregate query gives the value profile of every column whose type depends on its values.
fn profiles(db: &Db, local: &LocalTable) -> Result<Vec<(String, Profile)>> {
    let needing: Vec<&str> = local
        .columns
        .iter()
        .filter(|c| mapping::needs_profile(&c.decl_type))
        .map(|c| c.name.as_str())
        .collect();
    if needing.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {} FROM {}",
        needing
            .iter()
            .map(|c| Profile::sql(&quote(c)))
            .collect::<Vec<_>>()
            .join(", "),
        quote(&local.name)
    );
    let row = db.query_row(&sql, &[], |r| {
        Ok((0..needing.len())
            .map(|i| {
                let at = |k: usize| r.int((i * Profile::COLUMNS + k) as i32) != 0;
                Profile {
                    integer: at(0),
                    real: at(1),
                    text: at(2),
                    blob: at(3),
                    zero_one: at(4),
                    canonical_dates: at(5),
                    canonical_datetimes: at(6),
                }
            })
            .collect::<Vec<_>>())
    })?;
    Ok(needing
        .iter()
        .map(|c| c.to_string())
        .zip(row.unwrap_or_default())
        .collect())
}

#[allow(clippy::too_many_arguments)]
fn export_table(
    tx: &mut Transaction,
    db: &Db,
    plan: &TablePlan,
    index: usize,
    dry_run: bool,
    progress: &Progress,
    problems: &mut Problems,
    log: &mut JobLog,
) -> Result<Counts> {
    let table = plan.name.as_str();
    progress.check_cancel(table)?;
    let fail = |what: &str, e: postgres::Error| remote_error(&format!("table {table}: {what}"), &e);
    if plan.create {
        // The primary key comes after the rows: one index build instead of an insert per row.
        let sql = format!(
            "CREATE TABLE {} ({})",
            plan.remote,
            listed(&plan.columns, |c| format!(
                "{} {}",
                quote(&c.name),
                c.ty.sql()
            ))
        );
        tx.batch_execute(&sql)
            .map_err(|e| fail("CREATE TABLE failed", e))?;
        log.info(Some(table), format!("created {}", plan.remote));
    }
    // A table created in this transaction takes the rows directly when every column travels in
    // its own binary form; existing tables (and the rest) get them in a staging table first.
    let direct = plan.create && plan.columns.iter().all(|c| !c.ty.staged_as_text());
    let stage = format!("cloud_sync_stage_{index}");
    if !direct {
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE {stage} ({}) ON COMMIT DROP",
            listed(&plan.columns, |c| format!(
                "{} {}",
                quote(&c.name),
                c.ty.stage_sql()
            ))
        ))
        .map_err(|e| fail("cannot create the staging table", e))?;
    }
    let copy_into = if direct {
        plan.remote.as_str()
    } else {
        stage.as_str()
    };

    // Stream the local rows with binary COPY: every row, or the rows whose keys changed.
    let copy_started = Instant::now();
    let mut copy = RowCopy {
        writer: tx
            .copy_in(&format!("COPY {copy_into} FROM STDIN (FORMAT binary)"))
            .map_err(|e| fail("COPY failed to start", e))?,
        buffer: Vec::with_capacity(COPY_CHUNK + (64 << 10)),
        counts: Counts::default(),
        unreported: 0,
        plan,
        key_positions: (0..plan.columns.len())
            .filter(|&i| plan.columns[i].is_key)
            .collect(),
        dry_run,
        progress,
    };
    copy.buffer.extend_from_slice(mapping::COPY_HEADER);
    let columns = listed(&plan.columns, |c| c.local_expr.clone());
    // Keys of changed rows that are gone locally, as binary COPY rows of the key columns.
    let mut gone = Vec::new();
    match &plan.window {
        None => {
            let mut stmt = db.prepare(&format!("SELECT {columns} FROM {}", quote(table)))?;
            while stmt.step()? {
                copy.row(&stmt, problems)?;
            }
        }
        Some(window) => {
            let mut lookup = db.prepare(&format!(
                "SELECT {columns} FROM {} WHERE {}",
                quote(table),
                plan.key_order
                    .iter()
                    .enumerate()
                    .map(|(i, k)| format!("{} IS ?{}", quote(k), i + 1))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            ))?;
            let key_types: Vec<PgType> = plan
                .key_order
                .iter()
                .map(|k| plan.columns.iter().find(|c| &c.name == k).map(|c| c.ty))
                .collect::<Option<_>>()
                .ok_or_else(|| Error::local(format!("table {table}: key columns not planned")))?;
            window.for_each_key(db, plan.key_order.len(), |key| {
                lookup.reset();
                for (i, value) in key.iter().enumerate() {
                    lookup.bind_value(i as i32 + 1, value.as_sql())?;
                }
                if lookup.step()? {
                    return copy.row(&lookup, problems);
                }
                copy.key_gone();
                if plan.propagate_deletes {
                    let row_start = gone.len();
                    mapping::begin_row(&mut gone, key.len());
                    for (value, ty) in key.iter().zip(&key_types) {
                        // A key the remote type cannot hold cannot be there to delete.
                        if mapping::encode(*ty, value.as_sql(), &mut gone).is_err() {
                            gone.truncate(row_start);
                            break;
                        }
                    }
                }
                Ok(())
            })?;
        }
    }
    let mut counts = copy.finish(table)?;
    let copied = counts.source_rows - counts.skipped - counts.gone;
    log.info(
        Some(table),
        format!(
            "copied {copied} rows {} in {:.0} ms",
            if direct {
                "into the new table"
            } else {
                "to staging"
            },
            elapsed_ms(copy_started)
        ),
    );

    let staged = |c: &ColumnPlan| {
        if c.ty.staged_as_text() {
            format!("s.{}::{}", quote(&c.name), c.ty.sql())
        } else {
            format!("s.{}", quote(&c.name))
        }
    };
    let all = listed(&plan.columns, name_of);
    let values = listed(&plan.columns, staged);
    if plan.create {
        if !direct {
            tx.batch_execute(&format!(
                "INSERT INTO {} ({all}) SELECT {values} FROM {stage} s",
                plan.remote
            ))
            .map_err(|e| fail("INSERT failed", e))?;
        }
        tx.batch_execute(&format!(
            "ALTER TABLE {} ADD PRIMARY KEY ({})",
            plan.remote,
            listed(plan.key(), name_of)
        ))
        .map_err(|e| fail("adding the primary key failed", e))?;
        counts.inserts = copied as i64;
    } else {
        let join = plan
            .key()
            .map(|c| format!("t.{} = {}", quote(&c.name), staged(c)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let non_key: Vec<&ColumnPlan> = plan.non_key().collect();
        // json has no equality operator: compare its text.
        let comparable = |expr: String, c: &ColumnPlan| match c.ty {
            PgType::Json => format!("{expr}::text"),
            _ => expr,
        };
        // Whether a remote row differs from `other` (the staged or the excluded values).
        let differs_from = |other: &dyn Fn(&ColumnPlan) -> String| {
            if non_key.is_empty() {
                return "false".to_string();
            }
            format!(
                "ROW({}) IS DISTINCT FROM ROW({})",
                listed(non_key.iter().copied(), |c| comparable(
                    format!("t.{}", quote(&c.name)),
                    c
                )),
                listed(non_key.iter().copied(), |c| comparable(other(c), c))
            )
        };
        let differs = differs_from(&staged);
        tx.batch_execute(&format!("ANALYZE {stage}"))
            .map_err(|e| fail("ANALYZE of the staging table failed", e))?;
        // An incremental export does not read the whole remote table.
        let remote_rows: Option<i64> = match plan.window {
            Some(_) => None,
            None => Some(
                tx.query_typed_one(&format!("SELECT count(*) FROM {}", plan.remote), &[])
                    .map_err(|e| fail("counting the remote rows failed", e))?
                    .get(0),
            ),
        };
        let first_key = quote(&plan.key().next().expect("planned tables have a key").name);
        if dry_run {
            let row = tx
                .query_typed_one(
                    &format!(
                        "SELECT count(*) FILTER (WHERE t.{first_key} IS NULL),
                                count(*) FILTER (WHERE t.{first_key} IS NOT NULL AND {differs})
                         FROM {stage} s LEFT JOIN {} t ON {join}",
                        plan.remote
                    ),
                    &[],
                )
                .map_err(|e| fail("counting changes failed", e))?;
            counts.inserts = row.get(0);
            counts.updates = row.get(1);
        } else {
            // One join sorts every staged row: new, changed, or unchanged. Only the new and the
            // changed ones are kept, so an unchanged re-export writes nothing remote at all.
            let diff = format!("{stage}_diff");
            tx.batch_execute(&format!(
                "CREATE TEMP TABLE {diff} ON COMMIT DROP AS
                 SELECT s.*, t.{first_key} IS NULL AS cloud_sync_is_new
                 FROM {stage} s LEFT JOIN {} t ON {join}
                 WHERE t.{first_key} IS NULL OR {differs}",
                plan.remote
            ))
            .map_err(|e| fail("comparing with the remote rows failed", e))?;
            if !non_key.is_empty() {
                counts.updates = tx
                    .execute_typed(
                        &format!(
                            "UPDATE {} AS t SET {} FROM {diff} s
                             WHERE {join} AND NOT s.cloud_sync_is_new",
                            plan.remote,
                            listed(non_key.iter().copied(), |c| format!(
                                "{} = {}",
                                quote(&c.name),
                                staged(c)
                            ))
                        ),
                        &[],
                    )
                    .map_err(|e| fail("UPDATE failed", e))? as i64;
            }
            // ON CONFLICT covers a row another writer added since the comparison.
            let on_conflict = if non_key.is_empty() {
                format!("ON CONFLICT ({}) DO NOTHING", listed(plan.key(), name_of))
            } else {
                format!(
                    "ON CONFLICT ({}) DO UPDATE SET {} WHERE {}",
                    listed(plan.key(), name_of),
                    listed(non_key.iter().copied(), |c| format!(
                        "{0} = EXCLUDED.{0}",
                        quote(&c.name)
                    )),
                    differs_from(&|c| format!("EXCLUDED.{}", quote(&c.name)))
                )
            };
            counts.inserts = tx
                .execute_typed(
                    &format!(
                        "INSERT INTO {} AS t ({all}) OVERRIDING SYSTEM VALUE
                         SELECT {values} FROM {diff} s WHERE s.cloud_sync_is_new {on_conflict}",
                        plan.remote
                    ),
                    &[],
                )
                .map_err(|e| fail("INSERT failed", e))? as i64;
        }
        counts.unchanged = copied as i64 - counts.inserts - counts.updates;
        if let Some(remote_rows) = remote_rows {
            counts.remote_only = remote_rows - (copied as i64 - counts.inserts);
        }
        if plan.propagate_deletes {
            counts.deletes = match plan.window {
                Some(_) => delete_gone(tx, plan, &stage, &gone, &join, dry_run)?,
                // Full: the staging table holds every local row; the rest goes.
                None if dry_run => counts.remote_only,
                None => tx
                    .execute_typed(
                        &format!(
                            "DELETE FROM {} t WHERE NOT EXISTS (SELECT 1 FROM {stage} s WHERE {join})",
                            plan.remote
                        ),
                        &[],
                    )
                    .map_err(|e| fail("DELETE of the rows gone locally failed", e))?
                    as i64,
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
            if plan.window.is_some() {
                String::new()
            } else {
                format!(", {} only on the remote", counts.remote_only)
            }
        ),
    );
    if !dry_run {
        advance_sequences(tx, plan)?;
    }
    Ok(counts)
}

/// Deletes remotely the keys that changed and are gone locally (`gone`: binary COPY rows of the
/// key columns, in key order); a dry run counts the rows it would delete. Returns that count.
fn delete_gone(
    tx: &mut Transaction,
    plan: &TablePlan,
    stage: &str,
    gone: &[u8],
    join: &str,
    dry_run: bool,
) -> Result<i64> {
    if gone.is_empty() {
        return Ok(0);
    }
    let table = &plan.name;
    let fail = |what: &str, e: postgres::Error| remote_error(&format!("table {table}: {what}"), &e);
    let keys: Vec<&ColumnPlan> = plan
        .key_order
        .iter()
        .filter_map(|k| plan.columns.iter().find(|c| &c.name == k))
        .collect();
    let deleted = format!("{stage}_gone");
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE {deleted} ({}) ON COMMIT DROP",
        listed(keys.iter().copied(), |c| format!(
            "{} {}",
            quote(&c.name),
            c.ty.stage_sql()
        ))
    ))
    .map_err(|e| fail("cannot create the table of deleted keys", e))?;
    let mut writer = tx
        .copy_in(&format!("COPY {deleted} FROM STDIN (FORMAT binary)"))
        .map_err(|e| fail("COPY of deleted keys failed to start", e))?;
    let copy_failed =
        |e: std::io::Error| Error::Interrupted(format!("table {table}: COPY failed: {e}"));
    writer
        .write_all(mapping::COPY_HEADER)
        .map_err(copy_failed)?;
    writer.write_all(gone).map_err(copy_failed)?;
    writer
        .write_all(mapping::COPY_TRAILER)
        .map_err(copy_failed)?;
    writer
        .finish()
        .map_err(|e| fail("COPY of deleted keys failed", e))?;
    // `join` compares t's key with s's: the deleted keys take the alias s.
    let count = if dry_run {
        tx.query_typed_one(
            &format!(
                "SELECT count(*) FROM {deleted} s JOIN {} t ON {join}",
                plan.remote
            ),
            &[],
        )
        .map_err(|e| fail("counting deletes failed", e))?
        .get(0)
    } else {
        tx.execute_typed(
            &format!(
                "DELETE FROM {} t USING {deleted} s WHERE {join}",
                plan.remote
            ),
            &[],
        )
        .map_err(|e| fail("DELETE failed", e))? as i64
    };
    Ok(count)
}

/// The binary COPY of one table's rows, buffered and counted.
struct RowCopy<'tx, 'p> {
    writer: postgres::CopyInWriter<'tx>,
    buffer: Vec<u8>,
    counts: Counts,
    /// Rows read since progress was last reported.
    unreported: u64,
    plan: &'p TablePlan,
    key_positions: Vec<usize>,
    dry_run: bool,
    progress: &'p Progress,
}

impl RowCopy<'_, '_> {
    /// Adds the row `stmt` is on. A value the remote column cannot hold fails a real run; a dry
    /// run lists it and skips the row.
    fn row(&mut self, stmt: &Stmt, problems: &mut Problems) -> Result<()> {
        let plan = self.plan;
        let table = plan.name.as_str();
        self.counts.source_rows += 1;
        // Progress counts rows read, skipped ones included, so it ends at rows_total.
        self.unreported += 1;
        let row_start = self.buffer.len();
        mapping::begin_row(&mut self.buffer, plan.columns.len());
        for (i, column) in plan.columns.iter().enumerate() {
            if let Err(problem) = mapping::encode(column.ty, stmt.value(i as i32), &mut self.buffer)
            {
                self.buffer.truncate(row_start);
                let key = row_key(stmt, plan, &self.key_positions);
                if !self.dry_run {
                    return Err(Error::invalid(format!(
                        "table {table}, key {key}, column {}: {problem}; nothing was written",
                        column.name
                    )));
                }
                problems.add(table, key, Some(&column.name), &problem);
                self.counts.problems += 1;
                self.counts.skipped += 1;
                return Ok(());
            }
        }
        if self.buffer.len() >= COPY_CHUNK {
            self.flush()?;
            self.progress.add_done(self.unreported);
            self.unreported = 0;
            self.progress.check_cancel(table)?;
        }
        Ok(())
    }

    /// Counts a changed key that is no longer in the local table.
    fn key_gone(&mut self) {
        self.counts.source_rows += 1;
        self.counts.gone += 1;
        self.unreported += 1;
    }

    fn flush(&mut self) -> Result<()> {
        self.writer.write_all(&self.buffer).map_err(|e| {
            Error::Interrupted(format!("table {}: COPY failed: {e}", self.plan.name))
        })?;
        self.buffer.clear();
        Ok(())
    }

    /// Ends the COPY; returns the counts of the rows read.
    fn finish(mut self, table: &str) -> Result<Counts> {
        self.buffer.extend_from_slice(mapping::COPY_TRAILER);
        self.flush()?;
        self.writer
            .finish()
            .map_err(|e| remote_error(&format!("table {table}: COPY failed"), &e))?;
        self.progress.add_done(self.unreported);
        Ok(self.counts)
    }
}

/// `render` applied to each column, comma-separated: the column lists of generated SQL.
fn listed<'a>(
    columns: impl IntoIterator<Item = &'a ColumnPlan>,
    render: impl Fn(&ColumnPlan) -> String,
) -> String {
    columns
        .into_iter()
        .map(render)
        .collect::<Vec<_>>()
        .join(", ")
}

fn name_of(c: &ColumnPlan) -> String {
    quote(&c.name)
}

/// Moves serial and identity sequences past the exported keys, so the remote's own inserts do
/// not collide with them. Never moves a sequence backwards.
fn advance_sequences(tx: &mut Transaction, plan: &TablePlan) -> Result<()> {
    for column in plan.key() {
        let sequence: Option<String> = tx
            .query_typed_one(
                "SELECT pg_get_serial_sequence($1, $2)",
                &[(&plan.remote, Type::TEXT), (&column.name, Type::TEXT)],
            )
            .map_err(|e| remote_error(&format!("table {}: sequence lookup failed", plan.name), &e))?
            .get(0);
        if let Some(sequence) = sequence {
            tx.query_typed(
                &format!(
                    "SELECT setval(s, GREATEST(m, COALESCE(pg_sequence_last_value(s), m)))
                     FROM (SELECT $1::regclass AS s, (SELECT max({}) FROM {})::bigint AS m) x
                     WHERE m IS NOT NULL",
                    quote(&column.name),
                    plan.remote
                ),
                &[(&sequence, Type::TEXT)],
            )
            .map_err(|e| {
                remote_error(
                    &format!("table {}: moving sequence {sequence} failed", plan.name),
                    &e,
                )
            })?;
        }
    }
    Ok(())
}

/// The key of the current row as a JSON object, for problem reports.
fn row_key(stmt: &Stmt, plan: &TablePlan, positions: &[usize]) -> Value {
    let mut key = Map::new();
    for &i in positions {
        let mut text = Vec::new();
        mapping::describe_key_value(stmt.value(i as i32), &mut text);
        let value = serde_json::from_slice(&text).unwrap_or(Value::Null);
        key.insert(plan.columns[i].name.clone(), value);
    }
    Value::Object(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(
        mode: Option<Mode>,
        watermark: Option<Option<i64>>,
        remote_missing: bool,
    ) -> Result<Option<(i64, i64)>> {
        let options = ExportOptions {
            mode,
            ..ExportOptions::default()
        };
        let tracking = watermark.map(|watermark| Tracking {
            tracking_id: 7,
            watermark,
            through: 40,
        });
        incremental_window("items", &options, tracking.as_ref(), remote_missing)
            .map(|w| w.map(|w| (w.after, w.through)))
    }

    #[test]
    fn a_table_goes_incrementally_only_when_it_can() {
        // Tracked, exported before, remote table there: incremental, by default or on request.
        assert_eq!(window(None, Some(Some(12)), false).unwrap(), Some((12, 40)));
        assert_eq!(
            window(Some(Mode::Incremental), Some(Some(12)), false).unwrap(),
            Some((12, 40))
        );
        assert_eq!(
            window(Some(Mode::Full), Some(Some(12)), false).unwrap(),
            None
        );
        // Otherwise full by default, and an error naming why when incremental is asked for.
        for (watermark, missing, why) in [
            (None, false, "is not tracked"),
            (
                Some(None),
                false,
                "has not been exported to this connection",
            ),
            (Some(Some(12)), true, "does not exist"),
        ] {
            assert_eq!(window(None, watermark, missing).unwrap(), None);
            let error = window(Some(Mode::Incremental), watermark, missing)
                .unwrap_err()
                .to_string();
            assert!(error.contains(why), "{error}");
        }
    }
}
