//! Which tables of an export go incrementally: a tracked table exported to this connection and
//! schema before ships only the changes since (its window). And which tables are idle: a table
//! that would go incrementally and whose window holds no change has nothing to send, so the
//! export does not look at its remote table at all (no catalog query, no staging, no
//! statement): its watermark just moves with the others'.

use crate::error::{Error, Result};
use crate::local::tables::LocalTable;
use crate::sql_text::sql_literal;
use crate::sqlite::Db;
use crate::sync::options::{ExportOptions, Mode};
use crate::sync::tracking::{self, Tracked, Window};

use super::ExportRequest;

/// A tracked table's state in the export's snapshot.
pub struct Tracking {
    pub tracking_id: i64,
    /// The last change already exported to this connection and schema.
    pub watermark: Option<i64>,
    /// The snapshot's high water.
    pub through: i64,
}

/// The tracked tables this export covers, each checked to be still the table that was tracked.
/// Without a `tables` option, a tracked table that no longer exists is an error too.
pub fn tracked_in(db: &Db, names: &[String], options: &ExportOptions) -> Result<Vec<Tracked>> {
    let mut covered = Vec::new();
    for tracked in tracking::all(db)? {
        if names.contains(&tracked.table) {
            tracking::integrity(db, &tracked)?;
            covered.push(tracked);
        } else if options.tables.is_none() && !options.exclude.contains(&tracked.table) {
            // Not among the local tables: renamed or dropped. The check says so, and the fix.
            tracking::integrity(db, &tracked)?;
        }
    }
    Ok(covered)
}

/// The tracking state of each of `locals` (`None`: not tracked), in the snapshot whose high
/// water is `through`.
pub fn trackings(
    db: &Db,
    request: &ExportRequest,
    locals: &[LocalTable],
    tracked: &[Tracked],
    through: i64,
) -> Result<Vec<Option<Tracking>>> {
    locals
        .iter()
        .map(
            |local| match tracked.iter().find(|t| t.table == local.name) {
                Some(t) => Ok(Some(Tracking {
                    tracking_id: t.id,
                    watermark: tracking::watermark(
                        db,
                        t.id,
                        request.connection_id,
                        &request.options.schema,
                    )?,
                    through,
                })),
                None => Ok(None),
            },
        )
        .collect()
}

/// Whether a table with `tracking` is idle: it would go incrementally (unless its remote table
/// is gone, which the export does not look for) and no change is waiting.
pub fn is_idle(db: &Db, options: &ExportOptions, tracking: Option<&Tracking>) -> Result<bool> {
    let Some(Tracking {
        tracking_id,
        watermark: Some(after),
        through,
    }) = tracking
    else {
        return Ok(false);
    };
    if options.mode == Some(Mode::Full) {
        return Ok(false);
    }
    let window = Window {
        tracking_id: *tracking_id,
        after: *after,
        through: *through,
    };
    Ok(window.counts(db)?.0 == 0)
}

/// The changes an incremental export of `local` ships, or `None` for a full export. Without a
/// `mode` option a table goes incrementally when it is tracked, was exported to this
/// connection and schema since, and its remote table still exists; `"incremental"` insists.
pub fn incremental_window(
    table: &str,
    options: &ExportOptions,
    tracking: Option<&Tracking>,
    remote_missing: bool,
) -> Result<Option<Window>> {
    let why_not = match (options.mode, tracking) {
        (Some(Mode::Full), _) => return Ok(None),
        (_, None) => format!(
            "table {table} is not tracked: track it (SELECT cloud_sync_track({})) and export \
             it once in full",
            sql_literal(table)
        ),
        (
            _,
            Some(Tracking {
                watermark: None, ..
            }),
        ) => format!(
            "table {table} has not been exported to this connection and schema since it was \
             tracked: export it once without mode incremental"
        ),
        (_, Some(_)) if remote_missing => format!(
            "the remote table {}.{table} does not exist: export it without mode incremental to \
             create it with every row",
            options.schema
        ),
        (_, Some(t)) => {
            return Ok(Some(Window {
                tracking_id: t.tracking_id,
                after: t.watermark.unwrap_or_default(),
                through: t.through,
            }))
        }
    };
    match options.mode {
        Some(Mode::Incremental) => Err(Error::invalid(format!(
            "mode incremental cannot be used: {why_not}"
        ))),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(
        mode: Option<Mode>,
        watermark: Option<Option<i64>>,
        remote_missing: bool,
    ) -> Result<Option<(i64, i64)>> {
        let options = ExportOptions {
            mode,
            ..ExportOptions::default()
        };
        let tracking = watermark.map(|watermark| Tracking {
            tracking_id: 7,
            watermark,
            through: 40,
        });
        incremental_window("items", &options, tracking.as_ref(), remote_missing)
            .map(|w| w.map(|w| (w.after, w.through)))
    }

    #[test]
    fn a_table_goes_incrementally_only_when_it_can() {
        // Tracked, exported before, remote table there: incremental, by default or on request.
        assert_eq!(window(None, Some(Some(12)), false).unwrap(), Some((12, 40)));
        assert_eq!(
            window(Some(Mode::Incremental), Some(Some(12)), false).unwrap(),
            Some((12, 40))
        );
        assert_eq!(
            window(Some(Mode::Full), Some(Some(12)), false).unwrap(),
            None
        );
        // Otherwise full by default, and an error naming why when incremental is asked for.
        for (watermark, missing, why) in [
            (None, false, "is not tracked"),
            (
                Some(None),
                false,
                "has not been exported to this connection",
            ),
            (Some(Some(12)), true, "does not exist"),
        ] {
            assert_eq!(window(None, watermark, missing).unwrap(), None);
            let error = window(Some(Mode::Incremental), watermark, missing)
                .unwrap_err()
                .to_string();
            assert!(error.contains(why), "{error}");
        }
    }
}
