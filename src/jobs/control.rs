//! Cancelling and retrying jobs.

use serde_json::{json, Value};

use super::{database_file, status_of};
use crate::error::{Error, Result};
use crate::local::schema;
use crate::sqlite::{Db, Param};
use crate::sync::now_iso;

/// Cancels job `id`. A queued job is cancelled at once. A running job is asked to stop: in this
/// process it stops at its next safe point (between tables, between chunks of rows) and rolls
/// back, remote and local; a job running in another process finishes its current attempt, which
/// then counts as cancelled (it is not retried).
pub fn cancel(db: &Db, id: i64) -> Result<Value> {
    schema::require_writable(db, "cancel a job")?;
    let status = status_of(db, id)?.ok_or_else(|| Error::invalid(format!("unknown job {id}")))?;
    match status.as_str() {
        "queued" => {
            db.atomically(|| {
                db.execute(
                    "UPDATE cloud_sync_jobs
                     SET status = 'cancelled', cancel_requested = 1, finished_at = ?2,
                         next_attempt_at = NULL
                     WHERE id = ?1 AND status = 'queued'",
                    &[Param::Int(id), Param::Text(&now_iso())],
                )?;
                log(db, id, "cancelled while queued")
            })?;
            Ok(json!({"id": id, "status": "cancelled"}))
        }
        "running" => {
            db.atomically(|| {
                db.execute(
                    "UPDATE cloud_sync_jobs SET cancel_requested = 1 WHERE id = ?1",
                    &[Param::Int(id)],
                )?;
                log(db, id, "cancel requested while running")
            })?;
            let file = database_file(db)?;
            let here = super::live_progress_of_job(&file, id);
            if let Some(progress) = &here {
                progress.request_cancel();
            }
            Ok(json!({
                "id": id,
                "status": "running",
                "cancel_requested": true,
                "stops": if here.is_some() { "at its next safe point" } else { "when its current attempt ends (it runs in another process)" },
            }))
        }
        done => Err(Error::invalid(format!(
            "job {id} is already {done}: there is nothing to cancel"
        ))),
    }
}

/// Queues a failed or cancelled job again. Its attempts and history are kept; it gets at least
/// one more attempt.
pub fn retry(db: &Db, id: i64) -> Result<Value> {
    schema::require_writable(db, "retry a job")?;
    let status = status_of(db, id)?.ok_or_else(|| Error::invalid(format!("unknown job {id}")))?;
    if status != "failed" && status != "cancelled" {
        return Err(Error::invalid(format!(
            "job {id} is {status}: only a failed or cancelled job can be retried"
        )));
    }
    let now = now_iso();
    db.atomically(|| {
        db.execute(
            "UPDATE cloud_sync_jobs
             SET status = 'queued', cancel_requested = 0, finished_at = NULL,
                 next_attempt_at = ?2, max_attempts = max(max_attempts, attempts + 1)
             WHERE id = ?1",
            &[Param::Int(id), Param::Text(&now)],
        )?;
        log(
            db,
            id,
            &format!("queued again by cloud_sync_retry (after {status})"),
        )
    })?;
    Ok(json!({"id": id, "status": "queued", "next_attempt_at": now}))
}

/// Adds `message` to job `id`'s log, at its current attempt.
pub(super) fn log(db: &Db, id: i64, message: &str) -> Result<()> {
    db.execute(
        "INSERT INTO cloud_sync_job_logs (job_id, attempt, at, level, message)
         SELECT id, attempts, ?2, 'info', ?3 FROM cloud_sync_jobs WHERE id = ?1",
        &[
            Param::Int(id),
            Param::Text(&now_iso()),
            Param::Text(message),
        ],
    )?;
    Ok(())
}
