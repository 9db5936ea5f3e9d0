//! Running jobs on the caller's thread: claim, run, finish.
//!
//! This module picks the jobs to run and claims each (one atomic step moves a queued job to
//! `running` and opens its attempt, so two runners never take the same job), then takes it
//! through the later steps, one module a step: `execute` runs its export or import under the
//! `watch` of its deadlines and cancel requests, `finish`
//! records how the attempt ended (also when the run panics), `recover` finishes the jobs of
//! processes that died while running them.

mod execute;
mod finish;
mod recover;
mod watch;

use serde_json::Value;

use self::execute::execute;
use self::finish::{finish, FinishOnUnwind};
pub use self::recover::recover_orphans;
use self::watch::Watch;
use super::retry::Policy;
use super::{database_file, journal, status_of, Registered, RunKey};
use crate::error::{Error, Result};
use crate::local::schema;
use crate::sqlite::{Db, Param};
use crate::sync::summary::Summary;
use crate::sync::{now_iso, JobLog, Level, Progress};

/// How one run of a job ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub id: i64,
    /// `succeeded`, `failed`, `cancelled`, or `queued` when a transient failure will be retried.
    pub status: String,
    pub error: Option<String>,
    pub summary: Option<Summary>,
    /// When the retry is due, for a job queued again.
    pub next_attempt_at: Option<String>,
}

impl Outcome {
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "status": self.status,
            "error": self.error,
            "summary": self.summary,
            "next_attempt_at": self.next_attempt_at,
        })
    }
}

/// A job this process claimed.
struct Claim {
    id: i64,
    attempt: i64,
    started_at: String,
    connection_name: String,
    kind: String,
    dry_run: bool,
    options: String,
    max_attempts: i64,
}

/// Runs the queued job `id` now. A job that is not queued is an error naming its status; a job
/// that fails is not an error: the outcome says so.
pub fn run_one(db: &Db, id: i64) -> Result<Outcome> {
    schema::require_writable(db, "run a job")?;
    let not_queued = |status: String| {
        Error::invalid(format!(
            "job {id} is {status}, not queued: only a queued job can run"
        ))
    };
    match status_of(db, id)? {
        None => return Err(Error::invalid(format!("unknown job {id}"))),
        Some(status) if status != "queued" => return Err(not_queued(status)),
        Some(_) => {}
    }
    match claim(db, id)? {
        Some(claim) => run_claimed(db, claim),
        // Someone else claimed it between the two statements.
        None => Err(not_queued(
            status_of(db, id)?.unwrap_or_else(|| "gone".into()),
        )),
    }
}

/// Runs the queued jobs that are due, oldest first, at most `max` of them (`None`: all).
pub fn run_due(db: &Db, max: Option<i64>) -> Result<Vec<Outcome>> {
    schema::require_writable(db, "run jobs")?;
    recover_orphans(db)?;
    let mut outcomes = Vec::new();
    for id in due_jobs(db, max)? {
        // A job claimed by someone else meanwhile is theirs: skip it.
        if let Some(claim) = claim(db, id)? {
            outcomes.push(run_claimed(db, claim)?);
        }
    }
    Ok(outcomes)
}

/// The ids of the queued jobs that are due now, in the order `run_due` runs them, at most `max`
/// of them (`None`: all).
pub fn due_jobs(db: &Db, max: Option<i64>) -> Result<Vec<i64>> {
    let mut stmt = db.prepare(
        "SELECT id FROM cloud_sync_jobs
         WHERE status = 'queued' AND COALESCE(next_attempt_at, created_at) <= ?1
         ORDER BY COALESCE(next_attempt_at, created_at), id
         LIMIT ?2",
    )?;
    stmt.bind_all(&[Param::Text(&now_iso()), Param::Int(max.unwrap_or(-1))])?;
    let mut due = Vec::new();
    while stmt.step()? {
        due.push(stmt.int(0));
    }
    Ok(due)
}

/// Takes job `id` if it is still queued: `None` when someone else has it.
fn claim(db: &Db, id: i64) -> Result<Option<Claim>> {
    let started_at = now_iso();
    let claimed_by = format!("pid:{}", std::process::id());
    db.atomically(|| {
        let claim = db.query_row(
            "UPDATE cloud_sync_jobs
             SET status = 'running', attempts = attempts + 1, started_at = ?2,
                 finished_at = NULL, claimed_by = ?3, error = NULL, rows_done = 0
             WHERE id = ?1 AND status = 'queued'
             RETURNING attempts, connection_name, kind, dry_run, options, max_attempts",
            &[
                Param::Int(id),
                Param::Text(&started_at),
                Param::Text(&claimed_by),
            ],
            |row| {
                Ok(Claim {
                    id,
                    attempt: row.int(0),
                    started_at: started_at.clone(),
                    connection_name: row.text(1).unwrap_or_default(),
                    kind: row.text(2).unwrap_or_default(),
                    dry_run: row.int(3) != 0,
                    options: row.text(4).unwrap_or_default(),
                    max_attempts: row.int(5),
                })
            },
        )?;
        if let Some(claim) = &claim {
            db.execute(
                "INSERT INTO cloud_sync_job_attempts (job_id, attempt, started_at)
                 VALUES (?1, ?2, ?3)
                 ON CONFLICT (job_id, attempt) DO UPDATE SET
                   started_at = excluded.started_at, finished_at = NULL, outcome = NULL,
                   error = NULL",
                &[
                    Param::Int(id),
                    Param::Int(claim.attempt),
                    Param::Text(&started_at),
                ],
            )?;
        }
        Ok(claim)
    })
}

fn run_claimed(db: &Db, claim: Claim) -> Result<Outcome> {
    let mut guard = FinishOnUnwind::arm(db, claim.id, claim.attempt);
    let mut log = JobLog::default();
    log.info(
        None,
        format!(
            "claimed (attempt {} of {})",
            claim.attempt, claim.max_attempts
        ),
    );
    match journal::notice(db) {
        Ok(Some(notice)) => log.push(Level::Warn, None, notice),
        Ok(None) => {}
        Err(e) => log.push(
            Level::Warn,
            None,
            format!("cannot read the journal mode: {e}"),
        ),
    }
    let progress = Progress::default();
    let key = RunKey {
        file: database_file(db).unwrap_or_default(),
        id: claim.id,
        started_at: claim.started_at.clone(),
    };
    let registered = Registered::new(key, progress.clone());

    let result = Watch::start(db, &claim, &progress).and_then(|watch| {
        execute(db, &claim, &progress, &watch, &mut log).map_err(|e| watch.explain(e))
    });
    match &result {
        Ok(_) => log.info(None, "job succeeded"),
        Err(e) => log.push(
            Level::Error,
            None,
            format!("attempt {} failed: {e}", claim.attempt),
        ),
    }
    let policy = Policy::new(claim.max_attempts, &claim.options);
    let finished = finish(
        db,
        claim.id,
        claim.attempt,
        &policy,
        &result,
        &progress,
        &mut log,
    );
    guard.disarm();
    // Unregistered only once the outcome is visible, so the view never shows stale counters.
    drop(registered);
    let ending = finished?;
    let (error, summary) = match result {
        Ok(summary) => (None, Some(summary)),
        Err(e) => (Some(e.to_string()), None),
    };
    Ok(Outcome {
        id: claim.id,
        status: ending.status.into(),
        error,
        summary,
        next_attempt_at: ending.next_attempt_at,
    })
}
