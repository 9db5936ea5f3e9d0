//! What the read-only views show: jobs with live progress, a job's per-table results, a job's
//! log. Reads only.

use super::{database_file, live_progress, opt_int, RunKey};
use crate::error::{Error, Result};
use crate::local::schema;
use crate::sqlite::{Db, Param};
use crate::sync::now_iso;
use crate::sync::summary::TableSummary;

/// One job as `cloud_sync_jobs_vtab` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    pub id: i64,
    pub connection_name: String,
    pub kind: String,
    pub dry_run: i64,
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// finished_at - started_at, or now - started_at while running; `None` if never started.
    pub duration_ms: Option<i64>,
    pub rows_total: Option<i64>,
    pub rows_done: i64,
    pub summary: Option<String>,
    pub error: Option<String>,
    /// Who asked for it; `None` when no one was named.
    pub requested_by: Option<String>,
}

/// Every job, by id. A job running in this process shows its live progress.
pub fn jobs(db: &Db) -> Result<Vec<JobView>> {
    schema::require_installed(db)?;
    let now = now_iso();
    let mut all = Vec::new();
    {
        let mut stmt = db.prepare(&format!(
            "SELECT id, connection_name, kind, dry_run, status, attempts, max_attempts,
                    created_at, started_at, finished_at,
                    CAST(round((julianday(CASE
                        WHEN finished_at IS NOT NULL THEN finished_at
                        WHEN status = 'running' THEN ?1
                      END) - julianday(started_at)) * 86400000.0) AS INTEGER),
                    rows_total, rows_done, summary, error, {}
             FROM cloud_sync_jobs ORDER BY id",
            requested_by_column(db)?
        ))?;
        stmt.bind_all(&[Param::Text(&now)])?;
        while stmt.step()? {
            all.push(JobView {
                id: stmt.int(0),
                connection_name: stmt.text(1).unwrap_or_default(),
                kind: stmt.text(2).unwrap_or_default(),
                dry_run: stmt.int(3),
                status: stmt.text(4).unwrap_or_default(),
                attempts: stmt.int(5),
                max_attempts: stmt.int(6),
                created_at: stmt.text(7).unwrap_or_default(),
                started_at: stmt.text(8),
                finished_at: stmt.text(9),
                duration_ms: opt_int(&stmt, 10),
                rows_total: opt_int(&stmt, 11),
                rows_done: stmt.int(12),
                summary: stmt.text(13),
                error: stmt.text(14),
                requested_by: stmt.text(15),
            });
        }
    }
    if all.iter().any(|job| job.status == "running") {
        let file = database_file(db)?;
        for job in all.iter_mut().filter(|job| job.status == "running") {
            let key = RunKey {
                file: file.clone(),
                id: job.id,
                started_at: job.started_at.clone().unwrap_or_default(),
            };
            if let Some(progress) = live_progress(&key) {
                job.rows_done = progress.done() as i64;
                if progress.total() > 0 {
                    job.rows_total = Some(progress.total() as i64);
                }
            }
        }
    }
    Ok(all)
}

/// How to read `cloud_sync_jobs.requested_by`: NULL in a database of an earlier version that
/// was only opened read-only since (it has no such column yet).
pub fn requested_by_column(db: &Db) -> Result<&'static str> {
    Ok(if schema::is_current(db)? {
        "requested_by"
    } else {
        "NULL"
    })
}

fn summary_of(db: &Db, id: i64) -> Result<Option<String>> {
    schema::require_installed(db)?;
    db.query_row(
        "SELECT summary FROM cloud_sync_jobs WHERE id = ?1",
        &[Param::Int(id)],
        |row| Ok(row.text(0)),
    )?
    .ok_or_else(|| Error::invalid(format!("unknown job {id}")))
}

/// The tables of job `id`'s summary (none while it has no summary).
pub fn job_tables(db: &Db, id: i64) -> Result<Vec<TableSummary>> {
    let Some(text) = summary_of(db, id)? else {
        return Ok(Vec::new());
    };
    Ok(super::read_summary(id, &text)?.tables)
}

/// One line of a job's log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub id: i64,
    pub at: String,
    pub level: String,
    pub table_name: Option<String>,
    pub message: String,
    pub attempt: i64,
}

/// Job `id`'s log, in the order it was written.
pub fn job_log(db: &Db, id: i64) -> Result<Vec<LogLine>> {
    summary_of(db, id)?;
    let mut stmt = db.prepare(
        "SELECT id, at, level, table_name, message, attempt FROM cloud_sync_job_logs
         WHERE job_id = ?1 ORDER BY id",
    )?;
    stmt.bind_all(&[Param::Int(id)])?;
    let mut lines = Vec::new();
    while stmt.step()? {
        lines.push(LogLine {
            id: stmt.int(0),
            at: stmt.text(1).unwrap_or_default(),
            level: stmt.text(2).unwrap_or_default(),
            table_name: stmt.text(3),
            message: stmt.text(4).unwrap_or_default(),
            attempt: stmt.int(5),
        });
    }
    Ok(lines)
}
