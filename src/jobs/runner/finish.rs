//! Recording how an attempt ended: the retry policy decides where the job goes (finished, or
//! queued again), and the job, its attempt and its log are written in one transaction. A run
//! that panics is recorded as failed on its way out.

use crate::error::{Error, Result};
use crate::jobs::retry::{self, Next, Policy};
use crate::sqlite::{Db, Param};
use crate::sync::summary::Summary;
use crate::sync::{iso_after, now_iso, JobLog, Level, Progress};

/// Marks a claimed job failed if its run unwinds (a panic) before it is finished; the panic
/// itself goes on to the SQL boundary, which reports it.
pub(super) struct FinishOnUnwind<'a> {
    db: &'a Db,
    id: i64,
    attempt: i64,
    armed: bool,
}

impl<'a> FinishOnUnwind<'a> {
    pub(super) fn arm(db: &'a Db, id: i64, attempt: i64) -> Self {
        FinishOnUnwind {
            db,
            id,
            attempt,
            armed: true,
        }
    }

    /// The run was finished (or failed to be): nothing left to do on unwind.
    pub(super) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for FinishOnUnwind<'_> {
    fn drop(&mut self) {
        // Only a panic gets here armed; a failure to record the outcome is reported as such.
        if self.armed && std::thread::panicking() {
            let error = "cloud_sync: internal error while running the job (a panic); the SQL call \
                         that ran it reported it";
            let mut log = JobLog::default();
            log.push(Level::Error, None, format!("job failed: {error}"));
            let failed: Result<Summary> = Err(Error::local(error));
            // An internal error is permanent: the policy fails the job at once.
            let policy = Policy::new(self.attempt, "{}");
            let _ = finish(
                self.db,
                self.id,
                self.attempt,
                &policy,
                &failed,
                &Progress::default(),
                &mut log,
            );
        }
    }
}

/// Where an attempt leaves its job.
pub(super) struct Ending {
    /// The job's status: `succeeded`, `failed`, `cancelled`, or `queued` for a retry.
    pub(super) status: &'static str,
    pub(super) next_attempt_at: Option<String>,
}

/// Records how an attempt ended, all of it or none: the job (with the retry policy's decision),
/// its attempt, its log.
pub(super) fn finish(
    db: &Db,
    id: i64,
    attempt: i64,
    policy: &Policy,
    result: &Result<Summary>,
    progress: &Progress,
    log: &mut JobLog,
) -> Result<Ending> {
    db.atomically(|| {
        // Read inside the write transaction: a cancel requested meanwhile, from anywhere, counts.
        let cancel_requested = db
            .query_row(
                "SELECT cancel_requested FROM cloud_sync_jobs WHERE id = ?1",
                &[Param::Int(id)],
                |row| Ok(row.int(0) != 0),
            )?
            .unwrap_or(false);
        let next = retry::decide(result.as_ref().err(), attempt, policy, cancel_requested);
        let (ending, attempt_outcome) = match next {
            Next::Succeeded => (ending("succeeded", None), "succeeded"),
            Next::Failed => (ending("failed", None), "failed"),
            Next::Cancelled => {
                log.info(
                    None,
                    "cancelled: everything the attempt did was rolled back",
                );
                (ending("cancelled", None), "cancelled")
            }
            Next::Retry(delay) => {
                let due = iso_after(delay);
                log.push(
                    Level::Warn,
                    None,
                    format!(
                        "transient failure: attempt {} of {} at {due} (in {:.1} s)",
                        attempt + 1,
                        policy.max_attempts,
                        delay.as_secs_f64()
                    ),
                );
                (ending("queued", Some(due)), "failed")
            }
        };
        record(
            db,
            id,
            attempt,
            &ending,
            attempt_outcome,
            result,
            progress,
            log,
        )?;
        Ok(ending)
    })
}

fn ending(status: &'static str, next_attempt_at: Option<String>) -> Ending {
    Ending {
        status,
        next_attempt_at,
    }
}

/// Writes an attempt's end: the job row, the attempt row, the attempt's log.
#[allow(clippy::too_many_arguments)]
fn record(
    db: &Db,
    id: i64,
    attempt: i64,
    ending: &Ending,
    attempt_outcome: &str,
    result: &Result<Summary>,
    progress: &Progress,
    log: &JobLog,
) -> Result<()> {
    let now = now_iso();
    let summary = result.as_ref().ok().map(|s| s.to_json().to_string());
    let error = result.as_ref().err().map(Error::to_string);
    // A job queued for a retry has not finished.
    let finished = (ending.status != "queued").then_some(now.as_str());
    // Nothing counted and nothing done: the job never got to its rows.
    let total = progress.total();
    let rows_total = if total > 0 || result.is_ok() {
        Param::Int(total as i64)
    } else {
        Param::Null
    };
    db.execute(
        "UPDATE cloud_sync_jobs
         SET status = ?2, finished_at = ?3, summary = ?4, error = ?5, rows_total = ?6,
             rows_done = ?7, next_attempt_at = ?8
         WHERE id = ?1 AND status = 'running'",
        &[
            Param::Int(id),
            Param::Text(ending.status),
            Param::text_or_null(finished),
            Param::text_or_null(summary.as_deref()),
            Param::text_or_null(error.as_deref()),
            rows_total,
            Param::Int(progress.done() as i64),
            Param::text_or_null(ending.next_attempt_at.as_deref()),
        ],
    )?;
    db.execute(
        "UPDATE cloud_sync_job_attempts SET finished_at = ?3, outcome = ?4, error = ?5
         WHERE job_id = ?1 AND attempt = ?2",
        &[
            Param::Int(id),
            Param::Int(attempt),
            Param::Text(&now),
            Param::Text(attempt_outcome),
            Param::text_or_null(error.as_deref()),
        ],
    )?;
    for entry in &log.entries {
        db.execute(
            "INSERT INTO cloud_sync_job_logs (job_id, attempt, at, level, table_name, message)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[
                Param::Int(id),
                Param::Int(attempt),
                Param::Text(&entry.at),
                Param::Text(entry.level.as_str()),
                Param::text_or_null(entry.table.as_deref()),
                Param::Text(&entry.message),
            ],
        )?;
    }
    Ok(())
}
