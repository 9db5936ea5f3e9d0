//! Jobs (exports and imports): the queue in `cloud_sync_jobs`, the state machine that runs a
//! job, and what the read-only views show.
//!
//! A job's life: `queued` (enqueued, `next_attempt_at` = `created_at`) -> `running` (claimed
//! atomically: `attempts` + 1, `started_at`, `claimed_by`, an attempt row) -> `succeeded`,
//! `failed` or `cancelled` (`finished_at`, `summary`, `error`, progress counters, the attempt's
//! outcome, the log; `next_attempt_at` = NULL), or back to `queued` with a later
//! `next_attempt_at` after a transient failure with attempts left (the policy is in `retry`).
//! `control` cancels a queued job straight to `cancelled` and queues a failed or cancelled one
//! again.
//! `schedule` keeps schedules, from which the worker queues jobs by itself.

pub mod control;
pub mod enqueue;
pub mod journal;
mod per_process;
pub mod report;
pub mod retry;
pub mod runner;
pub mod schedule;
pub mod views;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::sqlite::api::{Stmt, SQLITE_NULL};
use crate::sqlite::{Db, Param};
use crate::sync::summary::Summary;
use crate::sync::Progress;
use per_process::PerProcess;

pub use enqueue::{enqueue_export, enqueue_import};
pub use runner::{run_due, run_one, Outcome};

/// Identifies one run of one job across every database of the process: the database file
/// (`""` for an in-memory one), the job id and the run's `started_at`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunKey {
    pub file: String,
    pub id: i64,
    pub started_at: String,
}

/// Live progress of the jobs running in this process, so the views can show rows_done while a
/// job runs and a cancel reaches it. Per process: a forked child runs none of its parent's jobs.
static RUNNING: PerProcess<Mutex<HashMap<RunKey, Progress>>> = PerProcess::new();

fn running() -> MutexGuard<'static, HashMap<RunKey, Progress>> {
    // A panic while the lock was held leaves a map that is still consistent.
    RUNNING.get().lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers a running job's progress; unregisters it when dropped, also during a panic.
pub struct Registered(RunKey);

impl Registered {
    pub fn new(key: RunKey, progress: Progress) -> Registered {
        running().insert(key.clone(), progress);
        Registered(key)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        running().remove(&self.0);
    }
}

/// The live progress of job `id` of database `file`, if it is running in this process.
pub fn live_progress_of_job(file: &str, id: i64) -> Option<Progress> {
    running()
        .iter()
        .find(|(key, _)| key.file == file && key.id == id)
        .map(|(_, progress)| progress.clone())
}

/// The live progress of a run, if it is running in this process.
pub fn live_progress(key: &RunKey) -> Option<Progress> {
    running().get(key).cloned()
}

/// The file of the `main` database (`""` when in memory or temporary).
pub fn database_file(db: &Db) -> Result<String> {
    Ok(db
        .query_row(
            "SELECT file FROM pragma_database_list WHERE name = 'main'",
            &[],
            |row| Ok(row.text(0).unwrap_or_default()),
        )?
        .unwrap_or_default())
}

/// An optional integer column.
fn opt_int(row: &Stmt, i: i32) -> Option<i64> {
    (row.column_type(i) != SQLITE_NULL).then(|| row.int(i))
}

/// The `status` of job `id`, `None` when there is no such job.
pub fn status_of(db: &Db, id: i64) -> Result<Option<String>> {
    db.query_row(
        "SELECT status FROM cloud_sync_jobs WHERE id = ?1",
        &[Param::Int(id)],
        |row| Ok(row.text(0).unwrap_or_default()),
    )
}

/// Reads job `id`'s stored summary; the error says whether the text is not JSON, or JSON but
/// not a summary.
pub fn read_summary(id: i64, text: &str) -> Result<Summary> {
    serde_json::from_str(text).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "is not a job summary",
            _ => "is not valid JSON",
        };
        Error::local(format!("job {id}'s summary {what}: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::read_summary;

    #[test]
    fn a_summary_that_cannot_be_read_says_why() {
        let message = |text| read_summary(3, text).unwrap_err().to_string();
        assert!(message("{not json").starts_with("job 3's summary is not valid JSON: "));
        assert!(message("{}").starts_with("job 3's summary is not a job summary: missing field"));
    }
}
