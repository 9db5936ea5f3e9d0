//! Importing one planned table inside the local transaction: create the local table if the plan
//! says so, then stream the remote rows and write each one, counting what each row did. A value
//! the local column cannot take, or a write SQLite refuses, fails a real run; a dry run lists it
//! as a problem and skips the row.

use postgres::Transaction;

use super::apply::{Applied, RowWriter};
use super::copy::{self, RemoteRows};
use super::plan::TablePlan;
use crate::error::{Error, Result};
use crate::mapping;
use crate::sqlite::{Db, Value};
use crate::sync::options::Strategy;
use crate::sync::summary::TableCounts;
use crate::sync::{JobLog, Problems, Progress};

/// Rows between two progress updates.
const PROGRESS_EVERY: u64 = 10_000;

/// Imports the table of `plan`; returns its counts.
#[allow(clippy::too_many_arguments)]
pub fn import_table(
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
    let mut writer = RowWriter::prepare(db, plan, strategy)?;
    let mut rows = copy::open(tx, plan)?;
    // An import deletes nothing and does not look for local-only rows.
    let mut counts = TableCounts::zero();
    while rows.next()? {
        counts.source_rows += 1;
        if counts.source_rows.is_multiple_of(PROGRESS_EVERY) {
            progress.add_done(PROGRESS_EVERY);
            progress.check_cancel(table)?;
        }
        let (values, bad) = decode(rows.as_ref(), plan);
        let outcome = match bad {
            Some((column, problem)) => Err((Some(column), problem)),
            None => writer.write(&values).map_err(|problem| (None, problem)),
        };
        match outcome {
            Ok(Applied::Inserted) => counts.inserts += 1,
            Ok(Applied::Updated) => counts.updates += 1,
            Ok(Applied::Unchanged) => counts.unchanged += 1,
            Ok(Applied::Skipped) => counts.skipped += 1,
            Err((column, problem)) => {
                let key = row_key(plan, &values);
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
    // Built once the rows are in: one sort per index instead of an index update per row.
    for index in &plan.indexes {
        db.exec(index)?;
    }
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

/// The current row's values for the local columns, NULL where a value does not fit, and the
/// first column whose value does not fit with the reason.
fn decode<'r>(
    rows: &'r dyn RemoteRows,
    plan: &'r TablePlan,
) -> (Vec<Value<'r>>, Option<(&'r str, String)>) {
    let mut values = Vec::with_capacity(plan.columns.len());
    let mut bad = None;
    for (i, column) in plan.columns.iter().enumerate() {
        match rows
            .field(i)
            .map(|bytes| column.incoming.decode(bytes, column.affinity))
        {
            None => values.push(Value::Null),
            Some(Ok(value)) => values.push(value),
            Some(Err(why)) => {
                values.push(Value::Null);
                bad.get_or_insert_with(|| (column.name.as_str(), plan.value_problem(column, &why)));
            }
        }
    }
    (values, bad)
}

/// The key of a row, as problems and errors name it.
fn row_key(plan: &TablePlan, values: &[Value]) -> serde_json::Value {
    mapping::key_json(
        plan.columns
            .iter()
            .zip(values)
            .filter(|(c, _)| c.is_key)
            .map(|(c, v)| (c.name.as_str(), *v)),
    )
}
