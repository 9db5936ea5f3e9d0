//! The one remote transaction an export runs in: begun in UTC with the job's deadlines, under the
//! schema's advisory lock, with the target schema there (created in it when missing), ended with
//! COMMIT, or ROLLBACK for a dry run. And the running of a table's statements in it, whose
//! errors name the table and the step.

use postgres::types::Type;
use postgres::Transaction;

use super::sql;
use crate::error::{Error, Result};
use crate::remote::session::remote_error;
use crate::remote::{schema as remote_schema, Session};
use crate::sql_text::quote;
use crate::sync::JobLog;

/// Begins the transaction (in UTC, with the session's deadlines) and takes the lock on `schema`.
pub fn begin<'s>(
    session: &'s mut Session,
    schema: &str,
    log: &mut JobLog,
) -> Result<Transaction<'s>> {
    let deadlines = session.transaction_settings();
    let mut tx = session
        .client
        .transaction()
        .map_err(|e| remote_error("cannot begin a remote transaction", &e))?;
    tx.batch_execute(&format!("{}; {deadlines}", sql::SET_UTC))
        .map_err(|e| remote_error("cannot set the time zone and deadlines", &e))?;
    take_lock(&mut tx, schema)?;
    log.info(None, format!("lock taken on schema {schema}"));
    Ok(tx)
}

/// Makes sure the target schema exists: one that is missing is created in the transaction when
/// `create_tables` allows (a dry run creates it too, so that its tables can be rehearsed, and
/// rolls it back with them), and refused otherwise. Returns whether the export creates it.
pub fn ensure_schema(
    tx: &mut Transaction,
    schema: &str,
    create_tables: bool,
    dry_run: bool,
    log: &mut JobLog,
) -> Result<bool> {
    if remote_schema::exists(tx, schema)? {
        return Ok(false);
    }
    if !create_tables {
        return Err(Error::invalid(format!(
            "the remote schema {schema} does not exist, and create_tables is false, so no table \
             can be exported there: create the schema (CREATE SCHEMA {}), or leave create_tables \
             out to let the export create it",
            quote(schema)
        )));
    }
    remote_schema::create(tx, schema)?;
    log.info(
        None,
        if dry_run {
            format!("would create schema {schema}")
        } else {
            format!("created schema {schema}")
        },
    );
    Ok(true)
}

/// One lock per remote database and schema, whatever host or pooler leads there. Held until
/// the transaction ends, so it works behind transaction-mode poolers. A read replica is refused
/// for good: retrying cannot make it writable.
fn take_lock(tx: &mut Transaction, schema: &str) -> Result<()> {
    let row = tx
        .query_typed_one(sql::TAKE_LOCK, &[(&schema, Type::TEXT)])
        .map_err(|e| remote_error("cannot take the sync lock", &e))?;
    match row.get::<_, Option<bool>>(0) {
        Some(true) => Ok(()),
        Some(false) => Err(Error::Busy(format!(
            "another sync holds the lock on {}.{schema}: try again when it has finished",
            row.get::<_, String>(1)
        ))),
        None => Err(Error::invalid(
            "the remote server is a read replica (a hot standby: pg_is_in_recovery() is true), \
             which takes no writes: export to the primary server; imports from a replica work",
        )),
    }
}

/// Commits, or for a dry run rolls back.
pub fn end(tx: Transaction, dry_run: bool, log: &mut JobLog) -> Result<()> {
    if dry_run {
        tx.rollback()
            .map_err(|e| remote_error("rollback failed", &e))?;
        log.info(None, "dry run: rolled back, nothing was written");
    } else {
        tx.commit().map_err(|e| remote_error("commit failed", &e))?;
        log.info(None, "committed");
    }
    Ok(())
}

/// A remote error in step `what` of `table`.
pub fn failed(table: &str, what: &str, error: &postgres::Error) -> Error {
    remote_error(&format!("table {table}: {what}"), error)
}

/// Runs `sql` (simple query protocol, no result) as step `what` of `table`.
pub fn batch(tx: &mut Transaction, table: &str, what: &str, sql: &str) -> Result<()> {
    tx.batch_execute(sql).map_err(|e| failed(table, what, &e))
}

/// Runs `sql` as step `what` of `table`; returns the rows it changed.
pub fn execute(tx: &mut Transaction, table: &str, what: &str, sql: &str) -> Result<u64> {
    tx.execute_typed(sql, &[])
        .map_err(|e| failed(table, what, &e))
}

/// Runs `sql`, a query of `N` counts in one row, as step `what` of `table`.
pub fn query_counts<const N: usize>(
    tx: &mut Transaction,
    table: &str,
    what: &str,
    sql: &str,
) -> Result<[u64; N]> {
    let row = tx
        .query_typed_one(sql, &[])
        .map_err(|e| failed(table, what, &e))?;
    // A count is never negative.
    Ok(std::array::from_fn(|i| {
        u64::try_from(row.get::<_, i64>(i)).unwrap_or(0)
    }))
}
