//! Cancelling and retrying jobs, and the job log lines these and the queue write.

use serde_json::{json, Value};

use super::{database_file, journal, status_of};
use crate::error::{Error, Result};
use crate::local::schema;
use crate::sqlite::{Db, Param};
use crate::sync::now_iso;

/// Cancels job `id`. A queued job is cancelled at once. A running job is asked to stop and rolls
/// back, remote and local: at its next safe point (between tables, between chunks of rows), or,
/// while it waits on the network, at once, its guard closing its connection
/// (`jobs::runner::watch`). The request reaches a job of this process through its live
/// progress, and one of another process through the job's row, which that process reads in WAL
/// mode; in a rollback journal mode such a job finishes its current attempt, which then counts
/// as cancelled (it is not retried). The log names the connection's `actor`, if one is set.
pub fn cancel(db: &Db, id: i64, actor: Option<&str>) -> Result<Value> {
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
                log_requester(db, id, "cancel", actor)?;
                log(db, id, "cancelled while queued")
            })?;
            Ok(json!({"id": id, "status": "cancelled"}))
        }
        "running" => {
            let file = database_file(db)?;
            let here = super::live_progress_of_job(&file, id);
            // First, as it needs no write: an import holds the write lock until it ends.
            if let Some(progress) = &here {
                progress.request_cancel();
            }
            db.atomically(|| {
                db.execute(
                    "UPDATE cloud_sync_jobs SET cancel_requested = 1 WHERE id = ?1",
                    &[Param::Int(id)],
                )?;
                log_requester(db, id, "cancel", actor)?;
                log(db, id, "cancel requested while running")
            })?;
            let stops = if here.is_some() {
                "at its next safe point, or at once while it waits on the network"
            } else if journal::mode(db)?.eq_ignore_ascii_case("wal") {
                "within a second: the process running it reads the request from the job's row"
            } else {
                "when its current attempt ends (it runs in another process, and the database \
                 is not in WAL mode)"
            };
            Ok(json!({
                "id": id,
                "status": "running",
                "cancel_requested": true,
                "stops": stops,
            }))
        }
        done => Err(Error::invalid(format!(
            "job {id} is already {done}: there is nothing to cancel"
        ))),
    }
}

/// Queues a failed or cancelled job again. Its attempts and history are kept; it gets at least
/// one more attempt. The log names the connection's `actor`, if one is set.
pub fn retry(db: &Db, id: i64, actor: Option<&str>) -> Result<Value> {
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
        log_requester(db, id, "retry", actor)?;
        log(
            db,
            id,
            &format!("queued again by cloud_sync_retry (after {status})"),
        )
    })?;
    Ok(json!({"id": id, "status": "queued", "next_attempt_at": now}))
}

/// Adds "`what` requested by `actor`" to job `id`'s log; nothing when no actor is set.
fn log_requester(db: &Db, id: i64, what: &str, actor: Option<&str>) -> Result<()> {
    match actor {
        Some(actor) => log(db, id, &format!("{what} requested by {actor}")),
        None => Ok(()),
    }
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
