//! What a scheduled export would send, read from the local change log only (no network): per
//! selected table, its watermark for the schedule's connection and remote schema and how many
//! changes were recorded after it. Also where a scheduled export is refused: a table that is
//! not tracked, or that has had no confirmed full export to that connection since it was
//! tracked (it then has no watermark there: only an export that committed sets one, and every
//! export that commits was confirmed).

use crate::error::{Error, Result};
use crate::sql_text::sql_literal;
use crate::sqlite::Db;
use crate::sync::tracking::{self, Window};

/// One table's changes after its watermark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePending {
    pub tracking_id: i64,
    /// The watermark.
    pub after: i64,
    /// The change records after it.
    pub records: u64,
}

/// The changes a scheduled export would send. Two readings are equal exactly when no change
/// was recorded and no watermark moved in between: changes after a watermark are only ever
/// added (pruning removes only those every watermark has passed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending(pub Vec<TablePending>);

impl Pending {
    /// The change records after the watermarks, all tables together.
    pub fn records(&self) -> u64 {
        self.0.iter().map(|t| t.records).sum()
    }
}

/// Where the export of `tables` to the saved connection `connection` (id `connection_id`) and
/// the remote `schema` stands, read in one snapshot.
pub fn of_export(
    db: &Db,
    connection: &str,
    connection_id: i64,
    schema: &str,
    tables: &[String],
) -> Result<Pending> {
    db.snapshot(|| {
        let tracked = tracking::all(db)?;
        let through = tracking::high_water(db)?;
        let mut pending = Vec::new();
        for table in tables {
            let Some(tracked) = tracked.iter().find(|t| &t.table == table) else {
                return Err(Error::invalid(format!(
                    "a scheduled export is incremental, and table {table} is not tracked: {}",
                    first_export(table, connection, true)
                )));
            };
            tracking::integrity(db, tracked)?;
            let after =
                tracking::watermark(db, tracked.id, connection_id, schema)?.ok_or_else(|| {
                    Error::invalid(format!(
                        "a scheduled export is incremental, and table {table} has had no \
                         confirmed full export to '{connection}' (remote schema {schema}) since \
                         it was tracked: {}",
                        first_export(table, connection, false)
                    ))
                })?;
            let window = Window {
                tracking_id: tracked.id,
                after,
                through,
            };
            pending.push(TablePending {
                tracking_id: tracked.id,
                after,
                records: window.counts(db)?.0,
            });
        }
        Ok(Pending(pending))
    })
}

/// What to do before `table` can be exported incrementally to `connection`.
fn first_export(table: &str, connection: &str, track: bool) -> String {
    let how = "(a dry run, then the export that confirms it, with the schedule's options)";
    if track {
        format!(
            "track it (SELECT cloud_sync_track({})), then export it once in full to \
             '{connection}' {how}",
            sql_literal(table)
        )
    } else {
        format!("export it once in full there {how}")
    }
}
