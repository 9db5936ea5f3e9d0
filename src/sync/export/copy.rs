//! Sending local rows to the remote: every row of a full export, or the rows whose keys changed
//! for an incremental one, encoded for the remote types (binary COPY format), with progress
//! and cancel checks between chunks. A small table's rows go with the other small tables
//! (`pack`); a larger one is streamed by binary COPY from the moment it
//! outgrows that. The changed keys that are gone locally, which the deletes join against, go
//! in the pack too.

use std::io::Write;

use postgres::error::SqlState;
use postgres::Transaction;

use super::pack::Pack;
use super::plan::{self, TablePlan};
use super::sql;
use super::transaction::failed;
use crate::error::{Error, Result};
use crate::mapping::{self, PgType};
use crate::sqlite::api::Stmt;
use crate::sqlite::{Db, Value};
use crate::sync::summary::TableCounts;
use crate::sync::tracking::KeyValue;
use crate::sync::{Problems, Progress};

/// Bytes of COPY data buffered before a write to the server.
const COPY_CHUNK: usize = 1 << 20;

/// What the COPY of one table's rows read and sent.
pub struct Copied {
    /// The rows read, skipped and with problems; the rest as `TablePlan::zero_counts`.
    pub counts: TableCounts,
    /// Rows sent.
    pub rows: u64,

    /// Changed keys gone locally whose remote rows are to be deleted (incremental, with deletes
    /// propagated): binary COPY rows of the key columns, in key order.
    pub gone: Vec<u8>,
}

/// Sends the local rows of `plan` to `into` (the remote table or the staging table): into
/// `pack` when it takes them, by COPY otherwise.
#[allow(clippy::too_many_arguments)]
pub fn copy_rows(
    tx: &mut Transaction,
    db: &Db,
    plan: &TablePlan,
    into: &str,
    dry_run: bool,
    progress: &Progress,
    problems: &mut Problems,
    pack: &mut Pack,
) -> Result<Copied> {
    let table = plan.name.as_str();
    let mut copy = RowCopy {
        tx: Some(tx),
        writer: None,
        into,
        buffer: Vec::new(),
        counts: plan.zero_counts(),
        keys_gone: 0,
        gone: Vec::new(),
        unreported: 0,
        plan,
        dry_run,
        progress,
    };
    let select = local_select(plan);
    match &plan.window {
        None => {
            let mut stmt = db.prepare(&sql::local_rows(table, &select))?;
            while stmt.step()? {
                copy.row(&stmt, problems)?;
            }
        }
        Some(window) => {
            let mut lookup = db.prepare(&sql::local_row_by_key(table, &select, &plan.key_order))?;
            let key_types: Vec<PgType> = plan.key_in_order()?.iter().map(|c| c.ty).collect();
            window.for_each_key(db, plan.key_order.len(), |key| {
                lookup.reset();
                for (i, value) in key.iter().enumerate() {
                    lookup.bind_value(i as i32 + 1, value.as_sql())?;
                }
                if lookup.step()? {
                    return copy.row(&lookup, problems);
                }
                copy.key_gone(key, &key_types);
                Ok(())
            })?;
        }
    }
    let (copied, pending) = copy.finish()?;
    if let Some((tx, rows)) = pending {
        pack.add(tx, table, into, &rows)?;
    }
    Ok(copied)
}

/// A dry run's check of the values of a table that is not exported (`checks_values_only`):
/// each value the remote column could not take unchanged is listed, its row named by rowid.
/// Returns how many were found.
pub fn check_values(db: &Db, plan: &TablePlan, problems: &mut Problems) -> Result<u64> {
    let mut stmt = db.prepare(&sql::local_rows(&plan.name, &local_select(plan)))?;
    let mut scratch = Vec::new();
    let mut found = 0;
    while stmt.step()? {
        scratch.clear();
        if let Some((column, problem)) = first_problem(plan, &stmt, &mut scratch) {
            problems.add(&plan.name, row_key(plan, &stmt), Some(column), &problem);
            found += 1;
        }
    }
    Ok(found)
}

/// The local expressions a row is read with: the columns, then the rowid when the plan reads it.
fn local_select(plan: &TablePlan) -> Vec<&str> {
    let columns = plan.columns.iter().map(|c| c.local_expr.as_str());
    columns
        .chain(plan.reads_rowid.then_some(plan::ROWID_EXPR))
        .collect()
}

/// The first value of the row `stmt` is on that cannot land unchanged, with its column: a NULL
/// in a key column, or a value its remote type cannot hold or would give back changed. The
/// row's values are encoded onto `buffer` (partly, when there is a problem).
fn first_problem<'p>(
    plan: &'p TablePlan,
    stmt: &Stmt,
    buffer: &mut Vec<u8>,
) -> Option<(&'p str, String)> {
    let values = || (0..plan.columns.len()).map(|i| stmt.value(i as i32));
    let null_key = plan
        .columns
        .iter()
        .zip(values())
        .find(|(c, v)| c.is_key && matches!(v, Value::Null));
    if let Some((column, _)) = null_key {
        let problem = "the key is NULL (SQLite allows it in a primary key that is not an \
                       INTEGER PRIMARY KEY), and a remote key cannot be: give the row a key";
        return Some((&column.name, problem.to_string()));
    }
    mapping::begin_row(buffer, plan.columns.len());
    for (column, value) in plan.columns.iter().zip(values()) {
        let sent = mapping::encode(column.ty, value, buffer)
            .and_then(|()| mapping::comes_back(column.ty, value, column.affinity));
        if let Err(why) = sent {
            return Some((&column.name, plan.value_problem(column, value, &why)));
        }
    }
    None
}

/// The key of the row `stmt` is on, for a problem report: its key columns, or its rowid when it
/// has no key or a NULL in it.
fn row_key(plan: &TablePlan, stmt: &Stmt) -> serde_json::Value {
    let key: Vec<(&str, Value)> = (0..plan.columns.len())
        .filter(|&i| plan.columns[i].is_key)
        .map(|i| (plan.columns[i].name.as_str(), stmt.value(i as i32)))
        .collect();
    let named = !key.is_empty() && key.iter().all(|(_, v)| !matches!(v, Value::Null));
    if named || !plan.reads_rowid {
        mapping::key_json(key)
    } else {
        mapping::rowid_key(stmt.int(plan.columns.len() as i32))
    }
}

/// A COPY write that did not reach the server.
fn interrupted(table: &str, e: std::io::Error) -> Error {
    Error::Interrupted(format!(
        "table {table}: COPY failed: {e}: {COPY_CONNECTION_ENDED}"
    ))
}

/// What a server that does not take COPY FROM STDIN does, said where a COPY ends that way.
/// PGlite's socket server (0.2) hands the COPY statement to PGlite without the data that
/// follows it: PGlite reports the end of the data (SQLSTATE 08006) to the client, which is
/// still connected and sending, ends the session and closes the connection (docs/design.md,
/// "Servers that do not take COPY").
const COPY_NOT_TAKEN: &str = "the server reported that the COPY data ended while this \
     connection was still open, so it does not take COPY FROM STDIN (PGlite's socket server \
     does not); the job is not retried";
const COPY_CONNECTION_ENDED: &str = "the connection ended inside COPY FROM STDIN (a server \
     that does not take COPY FROM STDIN ends it so at every attempt: PGlite's socket server \
     closes it, and pgcat 1.3 is reported to stop answering until the read deadline)";

/// A failed COPY step (`what`) of `table`, saying so when it failed as a server that does not
/// take COPY FROM STDIN makes it fail. The server's report that the data ended is final: such
/// a server answers every attempt the same way. A connection that ended may have been the
/// network, so it stays worth a retry.
fn copy_failed(table: &str, what: &str, error: &postgres::Error) -> Error {
    let failure = failed(table, what, error);
    match error.as_db_error() {
        Some(db) if *db.code() == SqlState::CONNECTION_FAILURE => {
            Error::remote(format!("{failure}: {COPY_NOT_TAKEN}"))
        }
        Some(_) => failure,
        None => Error::Interrupted(format!("{failure}: {COPY_CONNECTION_ENDED}")),
    }
}

/// The rows of one table, encoded, counted and sent.
struct RowCopy<'tx, 'c, 'p> {
    /// Until the rows outgrow the pack; then the COPY that streams them.
    tx: Option<&'tx mut Transaction<'c>>,
    writer: Option<postgres::CopyInWriter<'tx>>,
    into: &'p str,
    /// Rows encoded and not sent yet.
    buffer: Vec<u8>,
    counts: TableCounts,
    /// Changed keys that are no longer in the local table (incremental).
    keys_gone: u64,
    gone: Vec<u8>,
    /// Rows read since progress was last reported.
    unreported: u64,
    plan: &'p TablePlan,
    dry_run: bool,
    progress: &'p Progress,
}

impl<'tx, 'c> RowCopy<'tx, 'c, '_> {
    /// Adds the row `stmt` is on. A value the remote column cannot hold, or would give back in
    /// another storage class, fails a real run; a dry run lists it and skips the row.
    fn row(&mut self, stmt: &Stmt, problems: &mut Problems) -> Result<()> {
        let plan = self.plan;
        let table = plan.name.as_str();
        self.counts.source_rows += 1;
        // Progress counts rows read, skipped ones included, so it ends at rows_total.
        self.unreported += 1;
        let row_start = self.buffer.len();
        if let Some((column, problem)) = first_problem(plan, stmt, &mut self.buffer) {
            self.buffer.truncate(row_start);
            let key = row_key(plan, stmt);
            if !self.dry_run {
                return Err(Error::invalid(format!(
                    "table {table}, key {key}, column {column}: {problem}; nothing was written"
                )));
            }
            problems.add(table, key, Some(column), &problem);
            self.counts.problems += 1;
            self.counts.skipped += 1;
            return Ok(());
        }
        let due = match self.writer {
            None => self.outgrows_pack(),
            Some(_) => self.buffer.len() >= COPY_CHUNK,
        };
        if due {
            self.flush()?;
            self.progress.add_done(self.unreported);
            self.unreported = 0;
            self.progress.check_cancel(table)?;
        }
        Ok(())
    }

    /// Counts a changed key that is no longer in the local table, and keeps it for the deletes.
    fn key_gone(&mut self, key: &[KeyValue], key_types: &[PgType]) {
        self.counts.source_rows += 1;
        self.keys_gone += 1;
        self.unreported += 1;
        if self.plan.propagate_deletes {
            let row_start = self.gone.len();
            mapping::begin_row(&mut self.gone, key.len());
            for (value, ty) in key.iter().zip(key_types) {
                // A key the remote type cannot hold cannot be there to delete.
                if mapping::encode(*ty, value.as_sql(), &mut self.gone).is_err() {
                    self.gone.truncate(row_start);
                    return;
                }
            }
        }
    }

    /// Rows sent or encoded so far.
    fn rows(&self) -> u64 {
        self.counts.source_rows - self.counts.skipped - self.keys_gone
    }

    /// Whether the rows read so far are more than the pack takes.
    fn outgrows_pack(&self) -> bool {
        let values = self.rows() as usize * self.plan.columns.len();
        !Pack::takes(values, self.buffer.len())
    }

    /// Sends the rows encoded so far by COPY, starting it first if it has not started.
    fn flush(&mut self) -> Result<()> {
        let table = self.plan.name.as_str();
        if let Some(tx) = self.tx.take() {
            let mut writer = tx
                .copy_in(&sql::copy_in(self.into))
                .map_err(|e| copy_failed(table, "COPY failed to start", &e))?;
            writer
                .write_all(mapping::COPY_HEADER)
                .map_err(|e| interrupted(table, e))?;
            self.writer = Some(writer);
        }
        if let Some(writer) = &mut self.writer {
            writer
                .write_all(&self.buffer)
                .map_err(|e| interrupted(table, e))?;
            self.buffer.clear();
        }
        Ok(())
    }

    /// Ends the COPY, if one started; otherwise gives back the rows for the pack, with the
    /// transaction to send them on.
    #[allow(clippy::type_complexity)]
    fn finish(mut self) -> Result<(Copied, Option<(&'tx mut Transaction<'c>, Vec<u8>)>)> {
        self.progress.add_done(self.unreported);
        let rows = self.rows();
        let copied = Copied {
            counts: self.counts,
            rows,

            gone: std::mem::take(&mut self.gone),
        };
        match (self.tx, self.writer) {
            (Some(tx), _) => Ok((copied, Some((tx, self.buffer)))),
            (None, Some(mut writer)) => {
                self.buffer.extend_from_slice(mapping::COPY_TRAILER);
                writer
                    .write_all(&self.buffer)
                    .map_err(|e| interrupted(&self.plan.name, e))?;
                writer
                    .finish()
                    .map_err(|e| copy_failed(&self.plan.name, "COPY failed", &e))?;
                Ok((copied, None))
            }
            (None, None) => unreachable!("a COPY starts when the transaction is handed to it"),
        }
    }
}
