//! Running jobs on the caller's thread: claim, run, finish.

use serde_json::Value;

use super::{database_file, opt_text, status_of, Registered, RunKey};
use crate::connections;
use crate::error::{Error, Result};
use crate::local::schema;
use crate::secret::Keyring;
use crate::sqlite::{Db, Param};
use crate::sync::export::{self, ExportRequest};
use crate::sync::import::{self, ImportRequest};
use crate::sync::options::{ExportOptions, ImportOptions};
use crate::sync::{now_iso, JobLog, Level, Progress};

/// How one run of a job ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub id: i64,
    /// `succeeded` or `failed`.
    pub status: String,
    pub error: Option<String>,
    pub summary: Option<Value>,
}

impl Outcome {
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "status": self.status,
            "error": self.error,
            "summary": self.summary,
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
    let now = now_iso();
    let mut due = Vec::new();
    {
        let mut stmt = db.prepare(
            "SELECT id FROM cloud_sync_jobs
             WHERE status = 'queued' AND COALESCE(next_attempt_at, created_at) <= ?1
             ORDER BY COALESCE(next_attempt_at, created_at), id
             LIMIT ?2",
        )?;
        stmt.bind_all(&[Param::Text(&now), Param::Int(max.unwrap_or(-1))])?;
        while stmt.step()? {
            due.push(stmt.int(0));
        }
    }
    let mut outcomes = Vec::new();
    for id in due {
        // A job claimed by someone else meanwhile is theirs: skip it.
        if let Some(claim) = claim(db, id)? {
            outcomes.push(run_claimed(db, claim)?);
        }
    }
    Ok(outcomes)
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
             RETURNING attempts, connection_name, kind, dry_run, options",
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
            let failed: Result<Value> = Err(Error::local(error));
            let _ = finish(
                self.db,
                self.id,
                self.attempt,
                &failed,
                &Progress::default(),
                &log,
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
    log.info(None, format!("claimed (attempt {})", claim.attempt));
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
        Err(e) => log.push(Level::Error, None, format!("job failed: {e}")),
    }
    let finished = finish(db, claim.id, claim.attempt, &result, &progress, &log);
    guard.armed = false;
    // Unregistered only once the outcome is visible, so the view never shows stale counters.
    drop(registered);
    finished?;
    let (status, error, summary) = match result {
        Ok(summary) => ("succeeded", None, Some(summary)),
        Err(e) => ("failed", Some(e.to_string()), None),
    };
    Ok(Outcome {
        id: claim.id,
        status: status.into(),
        error,
        summary,
    })
}

fn execute(db: &Db, claim: &Claim, progress: &Progress, log: &mut JobLog) -> Result<Value> {
    match claim.kind.as_str() {
        "export" => execute_export(db, claim, progress, log),
        "import" => execute_import(db, claim, progress, log),
        other => Err(Error::invalid(format!(
            "{other} jobs are not supported by this version of cloud_sync"
        ))),
    }
}

fn execute_export(db: &Db, claim: &Claim, progress: &Progress, log: &mut JobLog) -> Result<Value> {
    let options = ExportOptions::parse(Some(&claim.options))?;
    let info = connections::open(db, &Keyring::from_env()?, &claim.connection_name)?;
    log.info(None, format!("connecting to {}", info.display()));
    let request = ExportRequest {
        info: &info,
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
fn execute_import(db: &Db, claim: &Claim, progress: &Progress, log: &mut JobLog) -> Result<Value> {
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

/// The local data may have changed since the dry run a full export confirms: the export runs
/// anyway, and its summary lists every count that differs from the dry run's.
fn record_differences(
    db: &Db,
    confirmed: i64,
    summary: &mut Value,
    log: &mut JobLog,
) -> Result<()> {
    let previewed: Value = db
        .query_row(
            "SELECT summary FROM cloud_sync_jobs WHERE id = ?1",
            &[Param::Int(confirmed)],
            |row| Ok(row.text(0)),
        )?
        .flatten()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    let empty = Vec::new();
    let previewed_tables = previewed["tables"].as_array().unwrap_or(&empty);
    let mut differences = Vec::new();
    for actual in summary["tables"].as_array().unwrap_or(&empty) {
        let table = &actual["table"];
        let preview = previewed_tables.iter().find(|t| &t["table"] == table);
        for count in [
            "source_rows",
            "inserts",
            "updates",
            "unchanged",
            "skipped",
            "remote_only",
        ] {
            let (was, now) = (preview.map(|p| &p[count]), &actual[count]);
            if was != Some(now) {
                differences.push(serde_json::json!({
                    "table": table, "count": count, "dry_run": was, "export": now
                }));
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
    summary["confirmed_dry_run"] = confirmed.into();
    summary["differences_from_dry_run"] = differences.into();
    Ok(())
}

/// Records how the run ended, all of it or none: the job, its attempt, its log.
fn finish(
    db: &Db,
    id: i64,
    attempt: i64,
    result: &Result<Value>,
    progress: &Progress,
    log: &JobLog,
) -> Result<()> {
    let finished_at = now_iso();
    let (status, summary, error) = match result {
        Ok(summary) => ("succeeded", Some(summary.to_string()), None),
        Err(e) => ("failed", None, Some(e.to_string())),
    };
    let [has_summary, summary_text] = opt_text(summary.as_deref());
    let [has_error, error_text] = opt_text(error.as_deref());
    // Nothing counted and nothing done: the job never got to its rows.
    let total = progress.total();
    let has_total = i64::from(total > 0 || result.is_ok());
    db.atomically(|| {
        db.execute(
            "UPDATE cloud_sync_jobs
             SET status = ?2, finished_at = ?3,
                 summary = CASE WHEN ?4 THEN ?5 END, error = CASE WHEN ?6 THEN ?7 END,
                 rows_total = CASE WHEN ?8 THEN ?9 END, rows_done = ?10,
                 next_attempt_at = NULL
             WHERE id = ?1",
            &[
                Param::Int(id),
                Param::Text(status),
                Param::Text(&finished_at),
                has_summary,
                summary_text,
                has_error,
                error_text,
                Param::Int(has_total),
                Param::Int(total as i64),
                Param::Int(progress.done() as i64),
            ],
        )?;
        db.execute(
            "UPDATE cloud_sync_job_attempts
             SET finished_at = ?3, outcome = ?4, error = CASE WHEN ?5 THEN ?6 END
             WHERE job_id = ?1 AND attempt = ?2",
            &[
                Param::Int(id),
                Param::Int(attempt),
                Param::Text(&finished_at),
                Param::Text(status),
                has_error,
                error_text,
            ],
        )?;
        for entry in &log.entries {
            let [has_table, table] = opt_text(entry.table.as_deref());
            db.execute(
                "INSERT INTO cloud_sync_job_logs (job_id, attempt, at, level, table_name, message)
                 VALUES (?1, ?2, ?3, ?4, CASE WHEN ?5 THEN ?6 END, ?7)",
                &[
                    Param::Int(id),
                    Param::Int(attempt),
                    Param::Text(&entry.at),
                    Param::Text(entry.level.as_str()),
                    has_table,
                    table,
                    Param::Text(&entry.message),
                ],
            )?;
        }
        Ok(())
    })
}
