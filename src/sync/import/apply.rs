//! Writing one remote row into its local table per the strategy: a row with a new key is
//! inserted; a local row that already holds what the update would write is left unchanged;
//! otherwise `skip` leaves it as it is, and `overwrite` and `merge` update it (merge keeps the
//! local value where the remote one is NULL). Into an empty table every row is inserted without
//! a lookup.

use super::plan::TablePlan;
use super::sql;
use crate::error::{Error, Result};
use crate::sqlite::api::Stmt;
use crate::sqlite::{Db, Value};
use crate::sync::options::Strategy;

/// What writing one row did.
pub enum Applied {
    Inserted,
    Updated,
    Unchanged,
    Skipped,
}

/// The prepared statements that write the rows of one local table, each row's values bound as
/// `?1..?n` in the order of the plan's columns.
pub struct RowWriter<'db> {
    lookup: Stmt<'db>,
    insert: Stmt<'db>,
    /// `None` when every column is a key column.
    update: Option<Stmt<'db>>,
    strategy: Strategy,
    /// The table had no row when the import reached it: every row is new.
    empty: bool,
}

impl<'db> RowWriter<'db> {
    pub fn prepare(db: &'db Db, plan: &TablePlan, strategy: Strategy) -> Result<Self> {
        let sql = sql::statements(&plan.name, &plan.sql_columns(), strategy);
        let lookup = db.prepare(&sql.lookup)?;
        let insert = db.prepare(&sql.insert)?;
        let update = if sql.update.is_empty() {
            None
        } else {
            Some(db.prepare(&sql.update)?)
        };
        let empty = db
            .query_row(&sql::is_empty(&plan.name), &[], |r| Ok(r.int(0) != 0))?
            .unwrap_or(false);
        Ok(RowWriter {
            lookup,
            insert,
            update,
            strategy,
            empty,
        })
    }

    /// Writes one row; an error is the local write's reason in SQLite's own words.
    pub fn write(&mut self, values: &[Value]) -> std::result::Result<Applied, String> {
        let applied = if self.empty {
            write_row(&mut self.insert, values).map(|()| Applied::Inserted)
        } else {
            self.apply(values)
        };
        applied.map_err(|e| local_reason(&e))
    }

    fn apply(&mut self, values: &[Value]) -> Result<Applied> {
        bind_row(&mut self.lookup, values)?;
        let found = self.lookup.step()?.then(|| self.lookup.int(0));
        self.lookup.reset();
        let Some(identical) = found else {
            write_row(&mut self.insert, values)?;
            return Ok(Applied::Inserted);
        };
        if identical != 0 {
            return Ok(Applied::Unchanged);
        }
        match (self.strategy, self.update.as_mut()) {
            (Strategy::Skip, _) | (_, None) => Ok(Applied::Skipped),
            (_, Some(update)) => {
                write_row(update, values)?;
                Ok(Applied::Updated)
            }
        }
    }
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

/// A local write's error in SQLite's own words (constraint and all), without our context.
fn local_reason(error: &Error) -> String {
    match error {
        Error::Local { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}
