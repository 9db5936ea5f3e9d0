//! The one remote transaction an export runs in: begun in UTC under the schema's advisory lock,
//! with the catalog of the tables it will write read in the same round trip, the target schema
//! there (created in it when missing), ended with COMMIT, or ROLLBACK for a dry run.

use postgres::Transaction;

use super::sql;
use crate::error::{Error, Result};
use crate::remote::batch::{self, Step};
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

/// Begins the transaction, then in one batch sets UTC, takes the lock on `schema` and reads the
/// catalog of `remotes` (quoted `"schema"."table"` names; none: no catalog is read).
pub fn begin<'s>(
    session: &'s mut Session,
    schema: &str,
    remotes: &[String],
    log: &mut JobLog,
) -> Result<(Transaction<'s>, Begun)> {
    let mut tx = session
        .client
        .transaction()
        .map_err(|e| remote_error("cannot begin a remote transaction", &e))?;
    let mut steps = vec![
        Step::plain("cannot set the time zone", sql::SET_UTC.to_string()),
        Step::plain("cannot take the sync lock", sql::take_lock(schema)),
    ];
    if !remotes.is_empty() {
        steps.extend(Catalog::steps(remotes, schema));
    }
    let answers = batch::run(&mut tx, &steps)?;
    let lock = &answers[1];
    if !lock.flag(0) {
        return Err(Error::Busy(format!(
            "another sync holds the lock on {}.{schema}: try again when it has finished",
            lock.text(1).unwrap_or_default()
        )));
    }
    log.info(None, format!("lock taken on schema {schema}"));
    let catalog = match answers.get(2..) {
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
