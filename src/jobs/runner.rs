//! Running jobs on the caller's thread: claim, run, finish.

use serde_json::Value;

use super::retry::{self, Next, Policy};
use super::{database_file, status_of, Registered, RunKey};
use crate::connections;
use crate::error::{Error, Result};
use crate::local::schema;
use crate::secret::Keyring;
use crate::sqlite::{Db, Param};
use crate::sync::export::{self, ExportRequest};
use crate::sync::import::{self, ImportRequest};
use crate::sync::options::{ExportOptions, ImportOptions};
use crate::sync::summary::{Difference, Summary, TableSummary};
use crate::sync::{iso_after, now_iso, JobLog, Level, Progress};

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

/// Marks a claimed job failed if its run unwinds (a panic) before it is finished; the panic
/// itself goes on to the SQL boundary, which reports it.
struct FinishOnUnwind<'a> {
    db: &'a Db,
    id: i64,
    attempt: i64,
    armed: bool,
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

fn run_claimed(db: &Db, claim: Claim) -> Result<Outcome> {
    let mut guard = FinishOnUnwind {
        db,
        id: claim.id,
        attempt: claim.attempt,
        armed: true,
    };
    let mut log = JobLog::default();
    log.info(
        None,
        format!(
            "claimed (attempt {} of {})",
            claim.attempt, claim.max_attempts
        ),
    );
    let progress = Progress::default();
    let key = RunKey {
        file: database_file(db).unwrap_or_default(),
        id: claim.id,
        started_at: claim.started_at.clone(),
    };
    let registered = Registered::new(key, progress.clone());

    let result = execute(db, &claim, &progress, &mut log);
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
    guard.armed = false;
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

fn execute(db: &Db, claim: &Claim, progress: &Progress, log: &mut JobLog) -> Result<Summary> {
    match claim.kind.as_str() {
        "export" => execute_export(db, claim, progress, log),
        "import" => execute_import(db, claim, progress, log),
        other => Err(Error::invalid(format!(
            "{other} jobs are not supported by this version of cloud_sync"
        ))),
    }
}

fn execute_export(
    db: &Db,
    claim: &Claim,
    progress: &Progress,
    log: &mut JobLog,
) -> Result<Summary> {
    let options = ExportOptions::parse(Some(&claim.options))?;
    let info = connections::open(db, &Keyring::from_env()?, &claim.connection_name)?;
    log.info(None, format!("connecting to {}", info.display()));
    let request = ExportRequest {
        info: &info,
        connection_id: connections::id(db, &claim.connection_name)?,
        job_id: claim.id,
        dry_run: claim.dry_run,
        options: &options,
    };
    let mut summary = export::run(db, &request, progress, log)?;
    // Only a full export confirms a dry run.
    if let Some(confirmed) = options.confirm {
        record_differences(db, confirmed, &mut summary, log)?;
    }
    Ok(summary)
}

/// An import's options hold its strategy (folded in when it was queued).
fn execute_import(
    db: &Db,
    claim: &Claim,
    progress: &Progress,
    log: &mut JobLog,
) -> Result<Summary> {
    let options = ImportOptions::parse(Some(&claim.options))?;
    let info = connections::open(db, &Keyring::from_env()?, &claim.connection_name)?;
    log.info(None, format!("connecting to {}", info.display()));
    let request = ImportRequest {
        info: &info,
        dry_run: claim.dry_run,
        options: &options,
    };
    import::run(db, &request, progress, log)
}

/// The counts a confirmed export compares with its dry run's (problems need no comparison: an
/// export with any refuses to start).
const COMPARED_WITH_DRY_RUN: [&str; 6] = [
    "source_rows",
    "inserts",
    "updates",
    "unchanged",
    "skipped",
    "remote_only",
];

/// The local data may have changed since the dry run a full export confirms: the export runs
/// anyway, and its summary lists every count that differs from the dry run's.
fn record_differences(
    db: &Db,
    confirmed: i64,
    summary: &mut Summary,
    log: &mut JobLog,
) -> Result<()> {
    let previewed: Vec<TableSummary> = db
        .query_row(
            "SELECT summary FROM cloud_sync_jobs WHERE id = ?1",
            &[Param::Int(confirmed)],
            |row| Ok(row.text(0)),
        )?
        .flatten()
        .and_then(|text| Summary::parse(&text))
        .map(|previewed| previewed.tables)
        .unwrap_or_default();
    let mut differences = Vec::new();
    for actual in &summary.tables {
        let preview = previewed.iter().find(|t| t.table == actual.table);
        for count in COMPARED_WITH_DRY_RUN {
            let was = preview.and_then(|p| p.counts.get(count));
            let now = actual.counts.get(count);
            if preview.is_none() || was != now {
                differences.push(Difference {
                    table: actual.table.clone(),
                    count: count.to_string(),
                    dry_run: was,
                    export: now,
                });
            }
        }
    }
    if !differences.is_empty() {
        log.push(
            Level::Warn,
            None,
            format!(
                "the data changed since dry run {confirmed}: {} counts differ (see the summary)",
                differences.len()
            ),
        );
    }
    summary.confirmed_dry_run = Some(confirmed);
    summary.differences_from_dry_run = Some(differences);
    Ok(())
}

/// Where an attempt leaves its job.
struct Ending {
    /// The job's status: `succeeded`, `failed`, `cancelled`, or `queued` for a retry.
    status: &'static str,
    next_attempt_at: Option<String>,
}

/// Records how an attempt ended, all of it or none: the job (with the retry policy's decision),
/// its attempt, its log.
fn finish(
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

/// Whether the process that claimed a job (`claimed_by` = `pid:N`) still runs it: in this
/// process, only if it is in the registry of running jobs; elsewhere, if process N is alive.
fn claim_is_alive(db: &Db, id: i64, claimed_by: &str, started_at: &str) -> bool {
    let Some(pid) = claimed_by
        .strip_prefix("pid:")
        .and_then(|p| p.parse::<i32>().ok())
    else {
        return false;
    };
    if pid == std::process::id() as i32 {
        let key = RunKey {
            file: database_file(db).unwrap_or_default(),
            id,
            started_at: started_at.to_string(),
        };
        return super::live_progress(&key).is_some();
    }
    // Signal 0 checks existence; EPERM means it exists under another user.
    // SAFETY: kill with signal 0 sends nothing.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Finds jobs left `running` by a process that no longer runs them (it crashed or was killed),
/// records that attempt as failed with the reason, and queues them again per the retry policy.
/// Their remote transaction died with them (Postgres rolled it back), and SQLite rolled back
/// their local one, so running them again is safe. Returns how many it recovered.
pub fn recover_orphans(db: &Db) -> Result<usize> {
    let mut stale = Vec::new();
    {
        let mut stmt = db.prepare(
            "SELECT id, attempts, max_attempts, options, coalesce(claimed_by, ''),
                    coalesce(started_at, '')
             FROM cloud_sync_jobs WHERE status = 'running'",
        )?;
        while stmt.step()? {
            let (id, claimed_by, started_at) = (
                stmt.int(0),
                stmt.text(4).unwrap_or_default(),
                stmt.text(5).unwrap_or_default(),
            );
            if !claim_is_alive(db, id, &claimed_by, &started_at) {
                let policy = Policy::new(stmt.int(2), &stmt.text(3).unwrap_or_default());
                stale.push((id, stmt.int(1), policy, claimed_by));
            }
        }
    }
    for (id, attempt, policy, claimed_by) in &stale {
        let reason = format!(
            "the process that ran attempt {attempt} ({claimed_by}) stopped before it finished; \
             its changes were rolled back"
        );
        let mut log = JobLog::default();
        log.push(Level::Error, None, reason.clone());
        let interrupted: Result<Summary> = Err(Error::Interrupted(reason));
        finish(
            db,
            *id,
            *attempt,
            policy,
            &interrupted,
            &Progress::default(),
            &mut log,
        )?;
    }
    Ok(stale.len())
}
