//! What the remote already has: per tracked table, connection and remote schema, a watermark
//! (the last change exported there). An incremental export reads the window of changes between
//! its watermark and the snapshot's high water, and after its remote COMMIT moves the
//! watermarks up and prunes the changes every watermark has passed. A connection deleted or
//! saved again with another target loses its watermarks.

use super::keys::{decode_key, KeyValue};
use crate::error::{Error, Result};
use crate::sqlite::{Db, Param};

/// The highest change sequence this snapshot holds: every change up to it is visible, because
/// SQLite has one writer at a time and the sequence only grows.
pub fn high_water(db: &Db) -> Result<i64> {
    Ok(db
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'cloud_sync_changes'",
            &[],
            |r| Ok(r.int(0)),
        )?
        .unwrap_or(0))
}

/// The last change of `tracking_id` exported to this connection and remote schema.
pub fn watermark(
    db: &Db,
    tracking_id: i64,
    connection_id: i64,
    schema: &str,
) -> Result<Option<i64>> {
    db.query_row(
        "SELECT seq FROM cloud_sync_watermarks
         WHERE tracking_id = ?1 AND connection_id = ?2 AND schema = ?3",
        &[
            Param::Int(tracking_id),
            Param::Int(connection_id),
            Param::Text(schema),
        ],
        |r| Ok(r.int(0)),
    )
}

/// The changes of one tracked table after one watermark, up to the snapshot's high water.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub tracking_id: i64,
    pub after: i64,
    pub through: i64,
}

impl Window {
    const WHERE: &'static str = "tracking_id = ?1 AND seq > ?2 AND seq <= ?3";

    fn params(&self) -> [Param<'static>; 3] {
        [
            Param::Int(self.tracking_id),
            Param::Int(self.after),
            Param::Int(self.through),
        ]
    }

    /// (change records, distinct keys) in the window.
    pub fn counts(&self, db: &Db) -> Result<(u64, u64)> {
        let sql = format!(
            "SELECT count(*), count(DISTINCT key) FROM cloud_sync_changes WHERE {}",
            Self::WHERE
        );
        Ok(db
            .query_row(&sql, &self.params(), |r| {
                Ok((r.int(0) as u64, r.int(1) as u64))
            })?
            .unwrap_or((0, 0)))
    }

    /// Calls `each` with the decoded key of every row changed in the window, once per key.
    pub fn for_each_key(
        &self,
        db: &Db,
        width: usize,
        mut each: impl FnMut(&[KeyValue]) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = db.prepare(&format!(
            "SELECT DISTINCT key FROM cloud_sync_changes WHERE {}",
            Self::WHERE
        ))?;
        stmt.bind_all(&self.params())?;
        while stmt.step()? {
            let text = stmt.text(0).unwrap_or_default();
            let key = decode_key(&text, width).ok_or_else(|| {
                Error::local(format!(
                    "cloud_sync_changes holds a key that is not in the format its triggers \
                     write ({}): untrack and track the table again",
                    text.chars().take(80).collect::<String>()
                ))
            })?;
            each(&key)?;
        }
        Ok(())
    }
}

/// After the remote COMMIT of an export: the watermarks of the tables it exported move to the
/// snapshot's high water, unless their tracking or the connection's target changed meanwhile;
/// then changes every watermark has passed are pruned.
pub struct Advance<'a> {
    pub connection_id: i64,
    /// The redacted target the export went to: a connection re-saved elsewhere meanwhile
    /// keeps no watermark from it.
    pub target: &'a str,
    pub schema: &'a str,
    pub job_id: i64,
    pub through: i64,
}

impl Advance<'_> {
    pub fn save(&self, db: &Db, tracking_ids: &[i64]) -> Result<()> {
        db.atomically(|| {
            for &id in tracking_ids {
                db.execute(
                    "INSERT INTO cloud_sync_watermarks (tracking_id, connection_id, schema, seq, job_id)
                     SELECT ?1, ?2, ?3, ?4, ?5
                     WHERE EXISTS (SELECT 1 FROM cloud_sync_tracked_tables WHERE id = ?1)
                       AND EXISTS (SELECT 1 FROM cloud_sync_connections WHERE id = ?2 AND display = ?6)
                     ON CONFLICT (tracking_id, connection_id, schema) DO UPDATE SET
                       seq = max(seq, excluded.seq), job_id = excluded.job_id,
                       exported_at = excluded.exported_at",
                    &[
                        Param::Int(id),
                        Param::Int(self.connection_id),
                        Param::Text(self.schema),
                        Param::Int(self.through),
                        Param::Int(self.job_id),
                        Param::Text(self.target),
                    ],
                )?;
                db.execute(
                    "DELETE FROM cloud_sync_changes WHERE tracking_id = ?1
                       AND seq <= (SELECT min(seq) FROM cloud_sync_watermarks WHERE tracking_id = ?1)",
                    &[Param::Int(id)],
                )?;
            }
            Ok(())
        })
    }
}

/// A connection deleted or re-saved with another target: its watermarks no longer describe
/// what its remote holds.
pub fn forget_connection(db: &Db, connection_id: i64) -> Result<()> {
    db.execute(
        "DELETE FROM cloud_sync_watermarks WHERE connection_id = ?1",
        &[Param::Int(connection_id)],
    )?;
    Ok(())
}
