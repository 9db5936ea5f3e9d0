//! The one remote transaction an export runs in: begun in UTC with the job's deadlines, under the
//! schema's advisory lock, with the catalog of the tables it will write read in the same round
//! trip, the target schema there (created in it when missing), ended with COMMIT, or ROLLBACK
//! for a dry run.

use postgres::Transaction;

use super::sql;
use crate::error::{Error, Result};
use crate::remote::batch::{self, Answer, Step};
use crate::remote::catalog::Catalog;
use crate::remote::session::remote_error;
use crate::remote::{schema as remote_schema, Session};
use crate::sql_text::quote;
use crate::sync::JobLog;

/// What the transaction's first batch found.
pub struct Begun {
    pub schema_exists: bool,
    /// The catalog of the tables the export writes.
    pub catalog: Catalog,
}

/// Begins the transaction, then in one batch sets UTC and the session's deadlines, takes the
/// lock on `schema` and reads the catalog of `remotes` (quoted `"schema"."table"` names; none:
/// no catalog is read).
pub fn begin<'s>(
    session: &'s mut Session,
    schema: &str,
    remotes: &[String],
    log: &mut JobLog,
) -> Result<(Transaction<'s>, Begun)> {
    let deadlines = session.transaction_settings();
    let mut tx = session
        .client
        .transaction()
        .map_err(|e| remote_error("cannot begin a remote transaction", &e))?;
    let mut steps = vec![Step::plain(
        "cannot set the time zone",
        sql::SET_UTC.to_string(),
    )];
    steps.extend(
        deadlines
            .into_iter()
            .map(|setting| Step::plain("cannot set the job's deadlines", setting)),
    );
    let lock_step = steps.len();
    steps.push(Step::plain(
        "cannot take the sync lock",
        sql::take_lock(schema),
    ));
    if !remotes.is_empty() {
        steps.extend(Catalog::steps(remotes, schema));
    }
    let answers = batch::run(&mut tx, &steps)?;
    let lock = &answers[lock_step];
    check_lock(lock, schema)?;
    log.info(None, format!("lock taken on schema {schema}"));
    let catalog = match answers.get(lock_step + 1..) {
        Some(read) if !read.is_empty() => Catalog::read(read)?,
        _ => Catalog::default(),
    };
    Ok((
        tx,
        Begun {
            schema_exists: lock.flag(2),
            catalog,
        },
    ))
}

/// Makes sure the target schema exists (`exists`: whether it does): one that is missing is created in the transaction when
/// `create_tables` allows (a dry run creates it too, so that its tables can be rehearsed, and
/// rolls it back with them), and refused otherwise. Returns whether the export creates it.
pub fn ensure_schema(
    tx: &mut Transaction,
    schema: &str,
    exists: bool,
    create_tables: bool,
    dry_run: bool,
    log: &mut JobLog,
) -> Result<bool> {
    if exists {
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
fn check_lock(lock: &Answer, schema: &str) -> Result<()> {
    match lock.text(0) {
        Some("t") => Ok(()),
        Some(_) => Err(Error::Busy(format!(
            "another sync holds the lock on {}.{schema}: try again when it has finished",
            lock.text(1).unwrap_or_default()
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
