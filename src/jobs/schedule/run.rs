//! The worker's side of schedules. At each poll, every schedule whose time has come runs once,
//! in one local transaction (so two workers of two processes never both run it): a skip while
//! the last job it queued is still queued or running, never a second job beside it; for an
//! export that finds no local change, a note in the schedule and nothing else (no job, no
//! connection); otherwise a job queued like any other, which the worker then runs as it runs
//! every job.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::due::{self, Observation};
use super::store::{self, Ran, Schedule};
use super::{prepare, Prepared};
use crate::error::Result;
use crate::jobs::{control, status_of};
use crate::sqlite::Db;
use crate::sync::{iso_after, now_iso};

/// Runs a database's schedules from its worker, and keeps what the worker has seen of the
/// local changes of each on_change schedule (see `due`).
#[derive(Debug, Default)]
pub struct Scheduler {
    /// By schedule name and definition time: a replaced schedule is watched afresh.
    observed: HashMap<(String, String), Observation>,
}

fn key(schedule: &Schedule) -> (String, String) {
    (schedule.name.clone(), schedule.updated_at.clone())
}

impl Scheduler {
    /// Runs every schedule whose time has come. One whose checks fail records why, and the
    /// others still run.
    pub fn poll(&mut self, db: &Db) -> Result<()> {
        let schedules = store::all(db)?;
        self.observed
            .retain(|seen, _| schedules.iter().any(|s| *seen == key(s)));
        for schedule in &schedules {
            // Watched at every poll, due or not, so that quiet is timed from the changes.
            let quiet = !schedule.definition.on_change || self.quiet(db, schedule);
            let now = now_iso();
            let latest = iso_after(due::gap(schedule.definition.every_s));
            if !quiet || !due::period_elapsed(&schedule.next_run_at, &now, &latest) {
                continue;
            }
            if run(db, &schedule.name)? {
                // What it saw is on its way: watch the changes that come next.
                self.observed.remove(&key(schedule));
            }
        }
        Ok(())
    }

    /// Whether an on_change schedule's pending changes are ready to go. A schedule whose checks
    /// fail is ready: its run records why.
    fn quiet(&mut self, db: &Db, schedule: &Schedule) -> bool {
        let Ok(Prepared {
            pending: Some(pending),
            ..
        }) = prepare(db, &schedule.definition)
        else {
            return true;
        };
        let definition = &schedule.definition;
        let debounce = Duration::from_millis(definition.debounce_ms.unwrap_or(0).max(0) as u64);
        let period = definition
            .every_s
            .map(|s| Duration::from_secs(s.max(0) as u64));
        self.observed.entry(key(schedule)).or_default().ready(
            pending,
            Instant::now(),
            debounce,
            period,
        )
    }
}

/// Runs the schedule `name` if its time has still come (another worker may have run it
/// meanwhile). Returns whether it queued a job.
fn run(db: &Db, name: &str) -> Result<bool> {
    db.atomically(|| {
        let Some(schedule) = store::get(db, name)? else {
            return Ok(false);
        };
        let now = now_iso();
        let next = iso_after(due::gap(schedule.definition.every_s));
        if !due::period_elapsed(&schedule.next_run_at, &now, &next) {
            return Ok(false);
        }
        if still_busy(db, schedule.last_job_id)? {
            store::record_skip(db, name, &now, &next)?;
            return Ok(false);
        }
        let ran = match prepare(db, &schedule.definition) {
            Err(e) => Ran::Refused(e.to_string()),
            Ok(prepared) if prepared.pending.as_ref().is_some_and(|p| p.records() == 0) => {
                Ran::NothingToSend
            }
            Ok(prepared) => {
                let id = prepared.job.queue(db, false)?;
                control::log(db, id, &format!("queued by schedule '{name}'"))?;
                Ran::Job(id)
            }
        };
        store::record_run(db, name, &now, &next, &ran)?;
        Ok(matches!(ran, Ran::Job(_)))
    })
}

/// Whether job `id` is still queued (to run, or for a retry) or running.
fn still_busy(db: &Db, id: Option<i64>) -> Result<bool> {
    let Some(id) = id else {
        return Ok(false);
    };
    Ok(matches!(
        status_of(db, id)?.as_deref(),
        Some("queued" | "running")
    ))
}
