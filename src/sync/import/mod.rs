//! Import: remote tables -> local ones, in one local transaction.
//!
//! The remote side is read in one REPEATABLE READ, READ ONLY transaction, each table streamed
//! with binary `COPY (SELECT ...) TO STDOUT`. The local side changes in one transaction (a
//! rehearsal rolled back at the end for a dry run, so its counts meet every constraint and
//! trigger the real import would): each remote row is matched to a local row by the primary key
//! and inserted, left alone, or updated per the strategy. Local rows the remote lacks are never
//! deleted. Writes go through ordinary INSERT and UPDATE statements, so constraints, foreign keys
//! and triggers apply as for any other write.

use std::io::{BufReader, Read};
use std::time::Instant;

use postgres::{IsolationLevel, Transaction};

use super::options::{ImportOptions, Strategy};
use super::summary::{Kind, Summary, TableCounts, TableSummary, Timings};
use super::{elapsed_ms, JobLog, Level, Problems, Progress};
use crate::error::{Error, Result};
use crate::local::tables;
use crate::mapping::{self, Affinity, Incoming};
use crate::remote::catalog;
use crate::remote::session::remote_error;
use crate::remote::ConnInfo;
use crate::sql_text::quote;
use crate::sqlite::api::Stmt;
use crate::sqlite::{Db, Value};

/// Rows between two progress updates.
const PROGRESS_EVERY: u64 = 10_000;

pub struct ImportRequest<'a> {
    pub info: &'a ConnInfo,
    pub dry_run: bool,
    pub options: &'a ImportOptions,
}

/// The local tables an import with `options` covers before looking at the remote. A name in
/// `tables` that is not a local table is accepted only with `create_tables` (the import then
/// creates it from the remote definition); any other unknown name is an error.
pub fn select_tables(db: &Db, options: &ImportOptions) -> Result<Vec<String>> {
    let (known, to_create) = split_named(db, options)?;
    if let Some(missing) = to_create.first().filter(|_| !options.create_tables) {
        return Err(Error::invalid(format!(
            "unknown table \"{missing}\" in option tables: it is not a local table; set \
             \"create_tables\": true to create it from the remote definition"
        )));
    }
    let tables_filter = options.tables.as_ref().map(|_| known);
    tables::select(db, tables_filter.as_deref(), &options.exclude, &[])
}

/// The names in the `tables` option that are local tables, and those that are not.
fn split_named(db: &Db, options: &ImportOptions) -> Result<(Vec<String>, Vec<String>)> {
    let local = tables::eligible(db)?;
    Ok(options
        .tables
        .iter()
        .flatten()
        .cloned()
        .partition(|t| local.contains(t)))
}

struct ColumnPlan {
    name: String,
    incoming: Incoming,
    /// Selected as `::text`.
    cast: bool,
    affinity: Affinity,
    is_key: bool,
}

struct TablePlan {
    name: String,
    remote: String,
    columns: Vec<ColumnPlan>,
    /// `CREATE TABLE` for a table that exists only remotely.
    create: Option<String>,
    remote_rows: u64,
    problems: Vec<String>,
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
    let (_, named_remote_only) = split_named(db, options)?;
    let local_tables = tables::eligible(db)?;

    let (mut session, connect_ms) = super::connect(request.info, started, log)?;
    let mut tx = session
        .client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| remote_error("cannot begin a remote transaction", &e))?;
    // Canonical text for the types read as text: UTC, ISO dates, ISO 8601 intervals.
    tx.batch_execute(
        "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD';
         SET LOCAL IntervalStyle = 'iso_8601'; SET LOCAL extra_float_digits = 3",
    )
    .map_err(|e| remote_error("cannot set up the remote session", &e))?;
    let remote_tables = catalog::tables(&mut tx, &options.schema)?;
    log.info(
        None,
        format!("reading schema {} in one snapshot", options.schema),
    );

    let mut plans = Vec::new();
    let mut local_only = Vec::new();
    for name in &selected {
        if remote_tables.contains(name) {
            plans.push(plan_existing(&mut tx, db, name, &options.schema)?);
        } else {
            local_only.push(name.clone());
        }
    }
    let remote_only: Vec<String> = remote_tables
        .iter()
        .filter(|t| !local_tables.contains(t) && !options.exclude.contains(t))
        .filter(|t| {
            options
                .tables
                .as_ref()
                .is_none_or(|named| named.contains(t))
        })
        .cloned()
        .collect();
    if let Some(missing) = named_remote_only
        .iter()
        .find(|t| !remote_tables.contains(t))
    {
        return Err(Error::invalid(format!(
            "table \"{missing}\" is neither a local table nor a table of remote schema {}",
            options.schema
        )));
    }
    if options.create_tables {
        for name in &remote_only {
            plans.push(plan_new(&mut tx, name, &options.schema)?);
        }
    }
    for plan in &mut plans {
        plan.remote_rows = tx
            .query_typed_one(&format!("SELECT count(*) FROM {}", plan.remote), &[])
            .map_err(|e| remote_error(&format!("table {}: counting rows failed", plan.name), &e))?
            .get::<_, i64>(0) as u64;
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
            log.push(Level::Warn, Some(&plan.name), problem.clone());
        }
    }
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

    let strategy = options.strategy;
    let dry_run = request.dry_run;
    let apply = || -> Result<Vec<TableSummary>> {
        let mut reports = Vec::new();
        for plan in &plans {
            let table_started = Instant::now();
            let counts = if plan.problems.is_empty() {
                import_table(
                    &mut tx,
                    db,
                    plan,
                    strategy,
                    dry_run,
                    progress,
                    &mut problems,
                    log,
                )?
            } else {
                TableCounts {
                    source_rows: plan.remote_rows,
                    skipped: plan.remote_rows,
                    problems: plan.problems.len() as u64,
                    ..TableCounts::zero()
                }
            };
            reports.push(TableSummary {
                table: plan.name.clone(),
                remote_table: format!("{}.{}", options.schema, plan.name),
                key: plan
                    .columns
                    .iter()
                    .filter(|c| c.is_key)
                    .map(|c| c.name.clone())
                    .collect(),
                created: plan.create.is_some() && plan.problems.is_empty(),
                mode: None,
                changes: None,
                propagate_deletes: None,
                counts,
                columns: None,
                ms: elapsed_ms(table_started),
            });
        }
        Ok(reports)
    };
    let reports = if dry_run {
        let reports = db.rehearse(apply)?;
        log.info(None, "dry run: rolled back, nothing changed locally");
        reports
    } else {
        let reports = db.atomically(apply)?;
        log.info(None, "committed");
        reports
    };
    let total_ms = elapsed_ms(started);
    let totals = Summary::total(&reports);
    Ok(Summary {
        kind: Kind::Import,
        dry_run,
        strategy: Some(strategy.as_str().to_string()),
        target: request.info.display(),
        schema: options.schema.clone(),
        mode: None,
        propagate_deletes: None,
        watermark: None,
        watermark_saved: None,
        tables: reports,
        totals,
        local_only_tables: Some(local_only),
        remote_only_tables: Some(if options.create_tables {
            Vec::new()
        } else {
            remote_only
        }),
        problems: problems.listed,
        problems_total: problems.total,
        timings: Timings {
            connect_ms,
            total_ms,
        },
        rows_per_s: Summary::rate(totals.source_rows, total_ms),
        confirmed_dry_run: None,
        differences_from_dry_run: None,
    })
}

/// A local table that the remote schema also has.
fn plan_existing(tx: &mut Transaction, db: &Db, name: &str, schema: &str) -> Result<TablePlan> {
    let local = tables::describe(db, name)?;
    let remote = format!("{}.{}", quote(schema), quote(name));
    let remote_columns = catalog::columns(tx, &remote)?.unwrap_or_default();
    let mut problems = Vec::new();
    let key: Vec<&str> = local.key().iter().map(|c| c.name.as_str()).collect();
    if key.is_empty() {
        problems
            .push("has no primary key, so remote rows cannot be matched with local ones".into());
    } else if !key
        .iter()
        .all(|k| remote_columns.iter().any(|r| r.name == *k))
        || !catalog::has_unique_key(tx, &remote, &key)?
    {
        problems.push(format!(
            "the remote table's key differs from the local key ({}): rows cannot be matched",
            key.join(", ")
        ));
    }
    let single_integer_key =
        key.len() == 1 && local.key()[0].decl_type.eq_ignore_ascii_case("INTEGER");
    let mut columns = Vec::new();
    for column in &local.columns {
        match remote_columns.iter().find(|r| r.name == column.name) {
            Some(r) => {
                let (incoming, cast) = Incoming::of(&r.spelling);
                columns.push(ColumnPlan {
                    name: column.name.clone(),
                    incoming,
                    cast,
                    affinity: mapping::affinity(&column.decl_type),
                    is_key: column.pk_position > 0,
                });
            }
            // An INTEGER PRIMARY KEY can be filled by SQLite itself.
            None if column.not_null
                && !column.has_default
                && !(column.pk_position > 0 && single_integer_key) =>
            {
                problems.push(format!(
                    "local column \"{}\" is NOT NULL without a default, and the remote table has \
                     no such column",
                    column.name
                ))
            }
            None => {}
        }
    }
    Ok(TablePlan {
        name: name.to_string(),
        remote,
        columns,
        create: None,
        remote_rows: 0,
        problems,
    })
}

/// A remote table with no local counterpart, to create locally (`create_tables`).
fn plan_new(tx: &mut Transaction, name: &str, schema: &str) -> Result<TablePlan> {
    let remote = format!("{}.{}", quote(schema), quote(name));
    let remote_columns = catalog::columns(tx, &remote)?.unwrap_or_default();
    let key = catalog::primary_key(tx, &remote)?;
    let mut problems = Vec::new();
    if key.is_empty() {
        problems.push(
            "the remote table has no primary key, so a local table cannot match its rows: add one \
             remotely"
                .into(),
        );
    }
    let definitions: Vec<String> = remote_columns
        .iter()
        .map(|r| {
            let not_null = if r.not_null { " NOT NULL" } else { "" };
            format!(
                "{} {}{not_null}",
                quote(&r.name),
                mapping::sqlite_type_for(&r.spelling)
            )
        })
        .collect();
    let create = format!(
        "CREATE TABLE {} ({}, PRIMARY KEY ({}))",
        quote(name),
        definitions.join(", "),
        key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ")
    );
    let columns = remote_columns
        .iter()
        .map(|r| {
            let (incoming, cast) = Incoming::of(&r.spelling);
            ColumnPlan {
                name: r.name.clone(),
                incoming,
                cast,
                affinity: mapping::affinity(mapping::sqlite_type_for(&r.spelling)),
                is_key: key.contains(&r.name),
            }
        })
        .collect();
    Ok(TablePlan {
        name: name.to_string(),
        remote,
        columns,
        create: Some(create),
        remote_rows: 0,
        problems,
    })
}

/// The statements that write one table, with numbered parameters `?1..?n` in column order.
struct Statements {
    lookup: String,
    insert: String,
    update: String,
}

fn statements(plan: &TablePlan, strategy: Strategy) -> Statements {
    let table = quote(&plan.name);
    let param = |i: usize| format!("?{}", i + 1);
    type Indexed<'a> = Vec<(usize, &'a ColumnPlan)>;
    let (key, non_key): (Indexed, Indexed) =
        plan.columns.iter().enumerate().partition(|(_, c)| c.is_key);
    let key_match = key
        .iter()
        .map(|(i, c)| format!("{} = {}", quote(&c.name), param(*i)))
        .collect::<Vec<_>>()
        .join(" AND ");
    // The value a column would have after the update: the remote one, or for merge the remote
    // one unless it is NULL.
    let incoming = |i: usize, c: &ColumnPlan| match strategy {
        Strategy::Merge => format!("coalesce({}, {})", param(i), quote(&c.name)),
        _ => param(i),
    };
    // `IS` compares as SQLite stores: the column's affinity applies to the bound value.
    let identical = if non_key.is_empty() {
        "1".to_string()
    } else {
        non_key
            .iter()
            .map(|(i, c)| format!("{} IS {}", quote(&c.name), incoming(*i, c)))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let update = if non_key.is_empty() {
        String::new()
    } else {
        format!(
            "UPDATE {table} SET {} WHERE {key_match}",
            non_key
                .iter()
                .map(|(i, c)| format!("{} = {}", quote(&c.name), incoming(*i, c)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Statements {
        lookup: format!("SELECT {identical} FROM {table} WHERE {key_match}"),
        insert: format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            plan.columns
                .iter()
                .map(|c| quote(&c.name))
                .collect::<Vec<_>>()
                .join(", "),
            (0..plan.columns.len())
                .map(param)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        update,
    }
}

#[allow(clippy::too_many_arguments)]
fn import_table(
    tx: &mut Transaction,
    db: &Db,
    plan: &TablePlan,
    strategy: Strategy,
    dry_run: bool,
    progress: &Progress,
    problems: &mut Problems,
    log: &mut JobLog,
) -> Result<TableCounts> {
    let table = plan.name.as_str();
    progress.check_cancel(table)?;
    if let Some(create) = &plan.create {
        db.exec(create)?;
        log.info(Some(table), format!("created local table {}", quote(table)));
    }
    let sql = statements(plan, strategy);
    let mut lookup = db.prepare(&sql.lookup)?;
    let mut insert = db.prepare(&sql.insert)?;
    let mut update = if sql.update.is_empty() {
        None
    } else {
        Some(db.prepare(&sql.update)?)
    };

    let select = plan
        .columns
        .iter()
        .map(|c| {
            if c.cast {
                format!("{}::text", quote(&c.name))
            } else {
                quote(&c.name)
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let copy = tx
        .copy_out(&format!(
            "COPY (SELECT {select} FROM {}) TO STDOUT (FORMAT binary)",
            plan.remote
        ))
        .map_err(|e| {
            remote_error(
                &format!("table {table}: reading the remote rows failed"),
                &e,
            )
        })?;
    let mut rows = CopyRows::new(copy, plan.columns.len(), table)?;
    // An import deletes nothing and does not look for local-only rows.
    let mut counts = TableCounts::zero();
    // Into an empty table every row is new: no lookup needed.
    let empty = db
        .query_row(
            &format!("SELECT NOT EXISTS (SELECT 1 FROM {})", quote(table)),
            &[],
            |r| Ok(r.int(0) != 0),
        )?
        .unwrap_or(false);
    while rows.next()? {
        counts.source_rows += 1;
        if counts.source_rows % PROGRESS_EVERY == 0 {
            progress.add_done(PROGRESS_EVERY);
            progress.check_cancel(table)?;
        }
        let mut values: Vec<Value> = Vec::with_capacity(plan.columns.len());
        let mut bad = None;
        for (i, column) in plan.columns.iter().enumerate() {
            match rows
                .field(i)
                .map(|bytes| column.incoming.decode(bytes, column.affinity))
            {
                None => values.push(Value::Null),
                Some(Ok(value)) => values.push(value),
                Some(Err(problem)) => {
                    values.push(Value::Null);
                    bad.get_or_insert((column.name.as_str(), problem));
                }
            }
        }
        let outcome = match bad {
            Some((column, problem)) => Err((Some(column), problem)),
            None if empty => write_row(&mut insert, &values)
                .map(|()| Applied::Inserted)
                .map_err(|e| (None, local_reason(&e))),
            None => apply_row(&mut lookup, &mut insert, update.as_mut(), &values, strategy)
                .map_err(|e| (None, local_reason(&e))),
        };
        match outcome {
            Ok(Applied::Inserted) => counts.inserts += 1,
            Ok(Applied::Updated) => counts.updates += 1,
            Ok(Applied::Unchanged) => counts.unchanged += 1,
            Ok(Applied::Skipped) => counts.skipped += 1,
            Err((column, problem)) => {
                let key = mapping::key_json(
                    plan.columns
                        .iter()
                        .zip(&values)
                        .filter(|(c, _)| c.is_key)
                        .map(|(c, v)| (c.name.as_str(), *v)),
                );
                if !dry_run {
                    return Err(Error::invalid(format!(
                        "table {table}, key {key}{}: {problem}; nothing was imported",
                        column.map(|c| format!(", column {c}")).unwrap_or_default()
                    )));
                }
                problems.add(table, key, column, &problem);
                counts.problems += 1;
                counts.skipped += 1;
            }
        }
    }
    progress.add_done(counts.source_rows % PROGRESS_EVERY);
    log.info(
        Some(table),
        format!(
            "{} remote rows: {} inserts, {} updates, {} unchanged, {} skipped ({})",
            counts.source_rows,
            counts.inserts,
            counts.updates,
            counts.unchanged,
            counts.skipped,
            strategy.as_str()
        ),
    );
    Ok(counts)
}

/// Makes `stmt` ready to run with the row's values as ?1..?n.
fn bind_row(stmt: &mut Stmt, values: &[Value]) -> Result<()> {
    stmt.reset();
    for (i, value) in values.iter().enumerate() {
        stmt.bind_value(i as i32 + 1, *value)?;
    }
    Ok(())
}

/// Runs a statement that returns no row (an INSERT or UPDATE) with the row's values.
fn write_row(stmt: &mut Stmt, values: &[Value]) -> Result<()> {
    bind_row(stmt, values)?;
    let stepped = stmt.step();
    stmt.reset();
    stepped.map(|_| ())
}

enum Applied {
    Inserted,
    Updated,
    Unchanged,
    Skipped,
}

fn apply_row(
    lookup: &mut Stmt,
    insert: &mut Stmt,
    update: Option<&mut Stmt>,
    values: &[Value],
    strategy: Strategy,
) -> Result<Applied> {
    // Binds the row's values as ?1..?n and runs `stmt`; `Some(first column)` if it returned a row.
    bind_row(lookup, values)?;
    let found = lookup.step()?.then(|| lookup.int(0));
    lookup.reset();
    let Some(identical) = found else {
        write_row(insert, values)?;
        return Ok(Applied::Inserted);
    };
    if identical != 0 {
        return Ok(Applied::Unchanged);
    }
    match (strategy, update) {
        (Strategy::Skip, _) | (_, None) => Ok(Applied::Skipped),
        (_, Some(update)) => {
            write_row(update, values)?;
            Ok(Applied::Updated)
        }
    }
}

/// A local write's error in SQLite's own words (constraint and all), without our context.
fn local_reason(error: &Error) -> String {
    match error {
        Error::Local { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// Rows of a binary COPY stream, one at a time, in one reused buffer.
struct CopyRows<R: Read> {
    reader: BufReader<R>,
    fields: usize,
    table: String,
    buffer: Vec<u8>,
    /// Each field's (start, length) in `buffer`; `None` for NULL.
    spans: Vec<Option<(usize, usize)>>,
}

impl<R: Read> CopyRows<R> {
    fn new(reader: R, fields: usize, table: &str) -> Result<Self> {
        let mut rows = CopyRows {
            reader: BufReader::with_capacity(1 << 16, reader),
            fields,
            table: table.to_string(),
            buffer: Vec::new(),
            spans: Vec::with_capacity(fields),
        };
        let mut header = [0u8; 19];
        rows.read(&mut header)?;
        if &header[..11] != b"PGCOPY\n\xff\r\n\0" {
            return Err(rows.broken("no binary COPY header"));
        }
        let extension = u32::from_be_bytes(header[15..19].try_into().expect("4 bytes")) as usize;
        let mut skip = vec![0u8; extension];
        rows.read(&mut skip)?;
        Ok(rows)
    }

    fn broken(&self, what: &str) -> Error {
        Error::remote(format!(
            "table {}: the remote rows could not be read: {what}",
            self.table
        ))
    }

    fn read(&mut self, into: &mut [u8]) -> Result<()> {
        self.reader.read_exact(into).map_err(|e| {
            Error::Interrupted(format!(
                "table {}: reading the remote rows failed: {e}",
                self.table
            ))
        })
    }

    /// Reads the next row; `false` at the end of the stream.
    fn next(&mut self) -> Result<bool> {
        let mut count = [0u8; 2];
        self.read(&mut count)?;
        let count = i16::from_be_bytes(count);
        if count == -1 {
            // Drain the end of the COPY so the connection is ready for the next statement.
            let mut rest = Vec::new();
            self.reader.read_to_end(&mut rest).map_err(|e| {
                Error::Interrupted(format!(
                    "table {}: finishing the read failed: {e}",
                    self.table
                ))
            })?;
            return Ok(false);
        }
        if count as usize != self.fields {
            return Err(self.broken("a row with an unexpected number of fields"));
        }
        self.buffer.clear();
        self.spans.clear();
        for _ in 0..self.fields {
            let mut len = [0u8; 4];
            self.read(&mut len)?;
            let len = i32::from_be_bytes(len);
            if len < 0 {
                self.spans.push(None);
                continue;
            }
            let start = self.buffer.len();
            self.buffer.resize(start + len as usize, 0);
            let (reader, buffer) = (&mut self.reader, &mut self.buffer);
            reader.read_exact(&mut buffer[start..]).map_err(|e| {
                Error::Interrupted(format!(
                    "table {}: reading the remote rows failed: {e}",
                    self.table
                ))
            })?;
            self.spans.push(Some((start, len as usize)));
        }
        Ok(true)
    }

    /// Field `i` of the current row, `None` for NULL.
    fn field(&self, i: usize) -> Option<&[u8]> {
        self.spans[i].map(|(start, len)| &self.buffer[start..start + len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_copy_rows_are_read_field_by_field() {
        let mut stream = b"PGCOPY\n\xff\r\n\0".to_vec();
        stream.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        stream.extend_from_slice(&2i16.to_be_bytes());
        stream.extend_from_slice(&8i32.to_be_bytes());
        stream.extend_from_slice(&7i64.to_be_bytes());
        stream.extend_from_slice(&(-1i32).to_be_bytes());
        stream.extend_from_slice(&(-1i16).to_be_bytes());
        let mut rows = CopyRows::new(&stream[..], 2, "t").unwrap();
        assert!(rows.next().unwrap());
        assert_eq!(rows.field(0), Some(&7i64.to_be_bytes()[..]));
        assert_eq!(rows.field(1), None);
        assert!(!rows.next().unwrap());
        let truncated = &stream[..stream.len() - 5];
        let mut rows = CopyRows::new(truncated, 2, "t").unwrap();
        assert!(rows.next().is_err());
    }

    #[test]
    fn statements_per_strategy() {
        let column = |name: &str, is_key| ColumnPlan {
            name: name.into(),
            incoming: Incoming::Text,
            cast: false,
            affinity: Affinity::Text,
            is_key,
        };
        let plan = TablePlan {
            name: "t".into(),
            remote: "\"public\".\"t\"".into(),
            columns: vec![column("id", true), column("v", false)],
            create: None,
            remote_rows: 0,
            problems: vec![],
        };
        let merge = statements(&plan, Strategy::Merge);
        assert_eq!(
            merge.lookup,
            "SELECT \"v\" IS coalesce(?2, \"v\") FROM \"t\" WHERE \"id\" = ?1"
        );
        assert_eq!(
            merge.update,
            "UPDATE \"t\" SET \"v\" = coalesce(?2, \"v\") WHERE \"id\" = ?1"
        );
        let overwrite = statements(&plan, Strategy::Overwrite);
        assert_eq!(
            overwrite.update,
            "UPDATE \"t\" SET \"v\" = ?2 WHERE \"id\" = ?1"
        );
        assert_eq!(
            overwrite.insert,
            "INSERT INTO \"t\" (\"id\", \"v\") VALUES (?1, ?2)"
        );
    }
}
