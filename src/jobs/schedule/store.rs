//! The `cloud_sync_schedule_entries` table: each schedule's definition, when it may run next,
//! and what its runs did. The `cloud_sync_schedules` view (sql/schema.sql) shows it with the
//! status of the last job a run queued.

use serde_json::{Map, Value};

use super::options::{Definition, Kind};
use crate::error::{Error, Result};
use crate::jobs::opt_int;
use crate::sqlite::api::Stmt;
use crate::sqlite::{Db, Param};

/// A stored schedule, as a poll reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub name: String,
    pub definition: Definition,
    /// When it was last created or replaced: a replaced schedule is watched afresh.
    pub updated_at: String,
    pub next_run_at: String,
    pub last_job_id: Option<i64>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ran {
    /// It queued this job.
    Job(i64),
    /// An export that found no local change: nothing queued, no connection made.
    NothingToSend,
    /// A check failed, for this reason: nothing queued.
    Refused(String),
}

const COLUMNS: &str = "name, connection_name, kind, options, every_s, on_change, debounce_ms, \
                       updated_at, next_run_at, last_job_id, created_by";

fn read(row: &Stmt) -> Result<Schedule> {
    let name = row.text(0).unwrap_or_default();
    let damaged = |what: &str| {
        Error::local(format!(
            "schedule '{name}' is damaged ({what}): replace it with cloud_sync_schedule or \
             remove it with cloud_sync_unschedule"
        ))
    };
    let kind =
        Kind::parse(&row.text(2).unwrap_or_default()).ok_or_else(|| damaged("unknown kind"))?;
    let job_options: Map<String, Value> = serde_json::from_str(&row.text(3).unwrap_or_default())
        .map_err(|_| damaged("its options are not a JSON object"))?;
    Ok(Schedule {
        definition: Definition {
            connection: row.text(1).unwrap_or_default(),
            kind,
            job_options,
            every_s: opt_int(row, 4),
            on_change: row.int(5) == 1,
            debounce_ms: opt_int(row, 6),
            requested_by: row.text(10),
        },
        updated_at: row.text(7).unwrap_or_default(),
        next_run_at: row.text(8).unwrap_or_default(),
        last_job_id: opt_int(row, 9),
        name,
    })
}

/// Every schedule, by name.
pub fn all(db: &Db) -> Result<Vec<Schedule>> {
    let mut stmt = db.prepare(&format!(
        "SELECT {COLUMNS} FROM cloud_sync_schedule_entries ORDER BY name"
    ))?;
    let mut found = Vec::new();
    while stmt.step()? {
        found.push(read(&stmt)?);
    }
    Ok(found)
}

/// The schedule `name`, if there is one.
pub fn get(db: &Db, name: &str) -> Result<Option<Schedule>> {
    let mut stmt = db.prepare(&format!(
        "SELECT {COLUMNS} FROM cloud_sync_schedule_entries WHERE name = ?1"
    ))?;
    stmt.bind_all(&[Param::Text(name)])?;
    if stmt.step()? {
        read(&stmt).map(Some)
    } else {
        Ok(None)
    }
}

/// Every schedule's name.
pub fn names(db: &Db) -> Result<Vec<String>> {
    Ok(all(db)?.into_iter().map(|s| s.name).collect())
}

/// Creates the schedule `name`, or replaces its definition (its run history stays, so a job
/// it queued is not stacked upon); either way it may run at `now`, and its `created_by` is the
/// definition's `requested_by`. Returns whether it replaced one.
pub fn save(db: &Db, name: &str, definition: &Definition, now: &str) -> Result<bool> {
    db.atomically(|| {
        let replaced = get(db, name)?.is_some();
        db.execute(
            "INSERT INTO cloud_sync_schedule_entries
               (name, connection_name, kind, options, every_s, on_change, debounce_ms,
                created_at, updated_at, next_run_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?8, ?9)
             ON CONFLICT (name) DO UPDATE SET
               connection_name = excluded.connection_name, kind = excluded.kind,
               options = excluded.options, every_s = excluded.every_s,
               on_change = excluded.on_change, debounce_ms = excluded.debounce_ms,
               updated_at = excluded.updated_at, next_run_at = excluded.next_run_at,
               created_by = excluded.created_by",
            &[
                Param::Text(name),
                Param::Text(&definition.connection),
                Param::Text(definition.kind.as_str()),
                Param::Text(&definition.job_options_json()),
                optional(definition.every_s),
                Param::Int(i64::from(definition.on_change)),
                optional(definition.debounce_ms),
                Param::Text(now),
                Param::text_or_null(definition.requested_by.as_deref()),
            ],
        )?;
        Ok(replaced)
    })
}

fn optional(value: Option<i64>) -> Param<'static> {
    value.map_or(Param::Null, Param::Int)
}

/// Removes the schedule `name`; whether there was one.
pub fn remove(db: &Db, name: &str) -> Result<bool> {
    Ok(db.execute(
        "DELETE FROM cloud_sync_schedule_entries WHERE name = ?1",
        &[Param::Text(name)],
    )? > 0)
}

/// Records a run of `name` at `at` and when the next may start.
pub fn record_run(db: &Db, name: &str, at: &str, next: &str, ran: &Ran) -> Result<()> {
    let (outcome, error, job) = match ran {
        Ran::Job(id) => ("job", None, Some(*id)),
        Ran::NothingToSend => ("nothing to send", None, None),
        Ran::Refused(why) => ("refused", Some(why.as_str()), None),
    };
    db.execute(
        "UPDATE cloud_sync_schedule_entries
         SET last_run_at = ?2, next_run_at = ?3, last_outcome = ?4, last_error = ?5,
             last_job_id = coalesce(?6, last_job_id), runs = runs + 1
         WHERE name = ?1",
        &[
            Param::Text(name),
            Param::Text(at),
            Param::Text(next),
            Param::Text(outcome),
            Param::text_or_null(error),
            optional(job),
        ],
    )?;
    Ok(())
}

/// Records that a run of `name` due at `at` was skipped, and when the next may start.
pub fn record_skip(db: &Db, name: &str, at: &str, next: &str) -> Result<()> {
    db.execute(
        "UPDATE cloud_sync_schedule_entries
         SET skipped_runs = skipped_runs + 1, last_skipped_at = ?2, next_run_at = ?3
         WHERE name = ?1",
        &[Param::Text(name), Param::Text(at), Param::Text(next)],
    )?;
    Ok(())
}
