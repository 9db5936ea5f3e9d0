//! Import: remote tables -> local ones, in one local transaction.
//!
//! The remote side is read in one REPEATABLE READ, READ ONLY transaction, each table streamed
//! with binary `COPY (SELECT ...) TO STDOUT`. The local side changes in one transaction (a
//! rehearsal rolled back at the end for a dry run, so its counts meet every constraint and
//! trigger the real import would): each remote row is matched to a local row by the primary key
//! and inserted, left alone, or updated per the strategy. Local rows the remote lacks are never
//! deleted. Writes go through ordinary INSERT and UPDATE statements, so constraints, foreign keys
//! and triggers apply as for any other write.
//!
//! It returns the job's `Summary` (src/sync/summary.rs), stored as the job's `summary`.
//!
//! This module runs the steps in order; each step is its own module: `plan` (which tables, and
//! what to do with each; `constraints`: those of the tables it creates), `table` (one table's
//! import: `copy` reads the remote rows, `apply` writes each one), `outcome` (the summary). `sql` holds the text of every statement they run.

mod apply;
mod constraints;
mod copy;
mod outcome;
mod plan;
mod sql;
mod table;

use std::time::Instant;

use postgres::{IsolationLevel, Transaction};

use self::plan::{NotLocal, Scope, TablePlan};
use super::options::ImportOptions;
use super::summary::{Summary, TableSummary};
use super::{JobLog, Level, Problems, Progress};
use crate::error::{Error, Result};
use crate::local::tables;
use crate::remote::batch::{self, Step};
use crate::remote::catalog::{self, Catalog};
use crate::remote::session::remote_error;
use crate::remote::{ConnInfo, Session};
use crate::shown;
use crate::sql_text::quote;
use crate::sqlite::Db;

pub struct ImportRequest<'a> {
    pub info: &'a ConnInfo,
    pub dry_run: bool,
    pub options: &'a ImportOptions,
}

/// The local tables an import with `options` covers before looking at the remote. A name in
/// `tables` or `exclude` that is not a local table is accepted only with `create_tables`: the
/// import then creates remote-only tables, so such a name may be one to create or one to keep
/// out, and the run checks that the remote has it. Without `create_tables` such a name is an
/// error at once: it can only be a typo, or name a table the import would never touch.
pub fn select_tables(db: &Db, options: &ImportOptions) -> Result<Vec<String>> {
    let not_local = not_local(db, options)?;
    if !options.create_tables {
        if let Some(missing) = not_local.tables.first() {
            return Err(Error::invalid(format!(
                "unknown table {} in option tables: it is not a local table; set \
                 \"create_tables\": true to create it from the remote definition",
                shown::quoted(missing, '"')
            )));
        }
        // An unknown name in exclude: the error names it and the local tables there are.
        return tables::select(
            db,
            options.tables.as_deref(),
            &options.exclude,
            &[("use_rowid", &options.use_rowid)],
        );
    }
    let tables_filter = options
        .tables
        .as_deref()
        .map(|named| without(named, &not_local.tables));
    let exclude = without(&options.exclude, &not_local.exclude);
    let use_rowid = without(&options.use_rowid, &not_local.use_rowid);
    tables::select(
        db,
        tables_filter.as_deref(),
        &exclude,
        &[("use_rowid", &use_rowid)],
    )
}

/// The names in the `tables` and `exclude` options that are not local tables.
fn not_local(db: &Db, options: &ImportOptions) -> Result<NotLocal> {
    let local = tables::eligible(db)?;
    Ok(NotLocal {
        tables: without(options.tables.as_deref().unwrap_or_default(), &local),
        exclude: without(&options.exclude, &local),
        use_rowid: without(&options.use_rowid, &local),
    })
}

/// `names` without those in `others`.
fn without(names: &[String], others: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|t| !others.contains(t))
        .cloned()
        .collect()
}

/// Runs one import. On any error nothing changes locally; a dry run never changes anything.
pub fn run(
    db: &Db,
    request: &ImportRequest,
    progress: &Progress,
    log: &mut JobLog,
) -> Result<Summary> {
    let started = Instant::now();
    let options = request.options;
    let selected = select_tables(db, options)?;
    let not_local = not_local(db, options)?;
    let local_tables = tables::eligible(db)?;

    let (mut session, connect_ms) = super::connect(request.info, started, log)?;
    let remotes: Vec<String> = selected
        .iter()
        .map(|name| plan::remote_name(&options.schema, name))
        .collect();
    let (mut tx, schema_exists, catalog) = begin_snapshot(&mut session, &options.schema, &remotes)?;
    // A schema that is not there has no tables: without this, a misspelt schema would pass
    // as an import with nothing to do.
    if !schema_exists {
        return Err(Error::invalid(format!(
            "the remote schema {} does not exist: check the schema option (schema names are \
             case-sensitive)",
            options.schema
        )));
    }
    let remote_tables = &catalog.tables;
    log.info(
        None,
        format!("reading schema {} in one snapshot", options.schema),
    );
    let scope = plan::scope(&selected, &local_tables, remote_tables, &not_local, options);
    let mut plans = plan_tables(&mut tx, &catalog, db, options, &scope, log)?;
    progress.set_total(plans.iter().map(|p| p.remote_rows).sum());

    let mut problems = Problems::of_plans(plans.iter().map(|p| (p.name.as_str(), &p.problems[..])));
    if !request.dry_run {
        problems.refuse_full_run("import")?;
    }

    // Parents before children, so foreign keys hold row by row.
    let order = tables::parents_first(
        db,
        &plans.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
    )?;
    plans.sort_by_key(|p| order.iter().position(|name| name == &p.name));

    let import = || import_tables(&mut tx, db, request, &plans, progress, &mut problems, log);
    let tables = if request.dry_run {
        let tables = db.rehearse(import)?;
        log.info(None, "dry run: rolled back, nothing changed locally");
        tables
    } else {
        let tables = db.atomically(import)?;
        log.info(None, "committed");
        tables
    };
    Ok(outcome::summary(
        request, tables, problems, scope, connect_ms, started,
    ))
}

/// Begins the remote transaction the whole import reads in: one snapshot, read only, in a
/// session whose settings make the text of every value read as text canonical, with the job's
/// deadlines. In the same round trip: whether `schema` exists, its tables, and the catalog of
/// `remotes` (the selected local tables' remote names).
fn begin_snapshot<'s>(
    session: &'s mut Session,
    schema: &str,
    remotes: &[String],
) -> Result<(Transaction<'s>, bool, Catalog)> {
    let deadlines = session.transaction_settings();
    let mut tx = session
        .client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| remote_error("cannot begin a remote transaction", &e))?;
    let mut steps: Vec<Step> = sql::SESSION_SETTINGS
        .iter()
        .map(|s| s.to_string())
        .chain(deadlines)
        .map(|s| Step::plain("cannot set up the remote session", s))
        .collect();
    let settings = steps.len();
    steps.push(Step::plain(
        &format!("cannot look up the remote schema {schema}"),
        sql::schema_exists(schema),
    ));
    steps.extend(Catalog::steps(remotes, schema));
    let answers = batch::run(&mut tx, &steps)?;
    let exists = answers[settings].flag(0);
    let catalog = Catalog::read(&answers[settings + 1..])?;
    Ok((tx, exists, catalog))
}

/// Plans the selected tables the remote has, then with `create_tables` the remote-only ones,
/// and counts each one's remote rows, logging each plan and its problems.
fn plan_tables(
    tx: &mut Transaction,
    catalog: &Catalog,
    db: &Db,
    options: &ImportOptions,
    scope: &Scope,
    log: &mut JobLog,
) -> Result<Vec<TablePlan>> {
    let schema = &options.schema;
    let mut plans = Vec::new();
    for name in &scope.existing {
        plans.push(plan::plan_existing(catalog, db, name, options)?);
    }
    if let Some((option, missing)) = &scope.unknown {
        return Err(Error::invalid(format!(
            "unknown table {} in option {option}: it is neither a local table nor a table of \
             remote schema {}",
            shown::quoted(missing, '"'),
            shown::quoted(schema, '"')
        )));
    }
    if options.create_tables {
        // The tables the import will create: a foreign key may reference only those (or local
        // ones). One without a primary key is a problem, so it is not created.
        let mut created = Vec::new();
        for name in &scope.remote_only {
            let remote = format!("{}.{}", quote(schema), quote(name));
            if !catalog::primary_key(tx, &remote)?.is_empty() {
                created.push(name.clone());
            }
        }
        // SQLite names tables and indexes case-insensitively, in one namespace: each index
        // created here claims its name, so two remote indexes `Idx` and `idx` do not clash.
        let mut claimed = scope.remote_only.clone();
        for name in &scope.remote_only {
            plans.push(plan::plan_new(
                tx,
                db,
                name,
                options,
                &created,
                &mut claimed,
            )?);
        }
    }
    let created: Vec<&TablePlan> = plans.iter().filter(|p| p.create.is_some()).collect();
    plan::check_column_types(options, &created)?;
    let counts: Vec<Step> = plans.iter().map(plan::count_remote_rows).collect();
    let answers = batch::run(tx, &counts)?;
    for (plan, answer) in plans.iter_mut().zip(&answers) {
        plan.remote_rows = answer.count(0);
        log.info(
            Some(&plan.name),
            format!(
                "planned: {} remote rows, {}",
                plan.remote_rows,
                if plan.create.is_some() {
                    "local table to create"
                } else {
                    "local table exists"
                }
            ),
        );
        for problem in &plan.problems {
            log.push(Level::Warn, Some(&plan.name), problem.problem.clone());
        }
        for note in &plan.not_created {
            log.info(Some(&plan.name), format!("not created: {note}"));
        }
    }
    Ok(plans)
}

/// Imports every table whose plan has no problem, and summarizes each table.
fn import_tables(
    tx: &mut Transaction,
    db: &Db,
    request: &ImportRequest,
    plans: &[TablePlan],
    progress: &Progress,
    problems: &mut Problems,
    log: &mut JobLog,
) -> Result<Vec<TableSummary>> {
    let options = request.options;
    // Every new table first: SQLite refuses to write a child whose parent table is missing.
    for plan in plans.iter().filter(|p| p.problems.is_empty()) {
        if let Some(create) = &plan.create {
            db.exec(create)?;
            log.info(
                Some(&plan.name),
                format!("created local table {}", quote(&plan.name)),
            );
        }
    }
    let mut tables = Vec::new();
    for plan in plans {
        let table_started = Instant::now();
        let counts = if plan.problems.is_empty() {
            table::import_table(
                tx,
                db,
                plan,
                options.strategy,
                request.dry_run,
                progress,
                problems,
                log,
            )?
        } else {
            outcome::skipped(plan)
        };
        tables.push(outcome::table(plan, counts, &options.schema, table_started));
    }
    Ok(tables)
}
