//! Reads one job's report from the database, in one snapshot: the job with its connection's
//! display form and its summary, its attempts, and its log.

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::jobs::read_summary;
use crate::jobs::views::{self, LogLine};
use crate::local::schema;
use crate::sqlite::{Db, Param};
use crate::sync::summary::{Problem, Summary, TableSummary};

/// The job row, with its connection's display form (`None` once the connection is deleted).
pub(super) struct Job {
    pub(super) id: i64,
    pub(super) kind: String,
    pub(super) dry_run: bool,
    pub(super) status: String,
    /// Who asked for the job; `None` when no one was named.
    pub(super) requested_by: Option<String>,
    pub(super) connection_name: String,
    pub(super) connection_display: Option<String>,
    pub(super) created_at: String,
    pub(super) started_at: Option<String>,
    pub(super) finished_at: Option<String>,
    /// When a job queued again for a retry is due.
    pub(super) next_attempt_at: Option<String>,
    pub(super) attempts: i64,
    pub(super) max_attempts: i64,
    /// The stored options, parsed (kept as text should they not parse).
    pub(super) options: Value,
    pub(super) error: Option<String>,
    /// `None` while the job has no summary (it has not finished, or failed before one).
    pub(super) summary: Option<Summary>,
}

/// Serialized as is into the JSON report.
#[derive(Serialize)]
pub(super) struct Attempt {
    pub(super) attempt: i64,
    pub(super) started_at: String,
    pub(super) finished_at: Option<String>,
    pub(super) outcome: Option<String>,
    pub(super) error: Option<String>,
}

pub(super) struct Report {
    pub(super) job: Job,
    pub(super) attempts: Vec<Attempt>,
    pub(super) log: Vec<LogLine>,
}

impl Report {
    /// Reads everything in one snapshot, so a job finishing meanwhile is seen before or after,
    /// never half-way.
    pub(super) fn load(db: &Db, id: i64) -> Result<Report> {
        schema::require_installed(db)?;
        db.snapshot(|| {
            let job =
                load_job(db, id)?.ok_or_else(|| Error::invalid(format!("unknown job {id}")))?;
            Ok(Report {
                job,
                attempts: load_attempts(db, id)?,
                log: views::job_log(db, id)?,
            })
        })
    }

    /// The tables of the job's summary (none without a summary).
    pub(super) fn tables(&self) -> &[TableSummary] {
        self.job.summary.as_ref().map_or(&[], |s| &s.tables)
    }

    /// The problems the summary lists (none without a summary).
    pub(super) fn problems(&self) -> &[Problem] {
        self.job.summary.as_ref().map_or(&[], |s| &s.problems)
    }

    /// Every problem found, listed or not (0 without a summary).
    pub(super) fn problems_total(&self) -> u64 {
        self.job.summary.as_ref().map_or(0, |s| s.problems_total)
    }
}

fn load_job(db: &Db, id: i64) -> Result<Option<Job>> {
    // The job keeps the connection's id and name; a connection deleted since (its id set to
    // NULL, left dangling, or reused by another name) has no display form any more.
    // requested_by is the job's: cloud_sync_connections has no column of that name.
    db.query_row(
        &format!(
            "SELECT j.id, j.kind, j.dry_run, j.status, j.connection_name, c.display, j.created_at,
                    j.started_at, j.finished_at, j.next_attempt_at, j.attempts, j.max_attempts,
                    j.options, j.error, j.summary, {}
             FROM cloud_sync_jobs j
             LEFT JOIN cloud_sync_connections c
               ON c.id = j.connection_id AND c.name = j.connection_name
             WHERE j.id = ?1",
            views::requested_by_column(db)?
        ),
        &[Param::Int(id)],
        |row| {
            let options = row.text(12).unwrap_or_default();
            let summary = row
                .text(14)
                .map(|text| read_summary(id, &text))
                .transpose()?;
            Ok(Job {
                id: row.int(0),
                kind: row.text(1).unwrap_or_default(),
                dry_run: row.int(2) != 0,
                status: row.text(3).unwrap_or_default(),
                requested_by: row.text(15),
                connection_name: row.text(4).unwrap_or_default(),
                connection_display: row.text(5),
                created_at: row.text(6).unwrap_or_default(),
                started_at: row.text(7),
                finished_at: row.text(8),
                next_attempt_at: row.text(9),
                attempts: row.int(10),
                max_attempts: row.int(11),
                options: serde_json::from_str(&options).unwrap_or(Value::String(options)),
                error: row.text(13),
                summary,
            })
        },
    )
}

fn load_attempts(db: &Db, id: i64) -> Result<Vec<Attempt>> {
    let mut stmt = db.prepare(
        "SELECT attempt, started_at, finished_at, outcome, error FROM cloud_sync_job_attempts
         WHERE job_id = ?1 ORDER BY attempt",
    )?;
    stmt.bind_all(&[Param::Int(id)])?;
    let mut attempts = Vec::new();
    while stmt.step()? {
        attempts.push(Attempt {
            attempt: stmt.int(0),
            started_at: stmt.text(1).unwrap_or_default(),
            finished_at: stmt.text(2),
            outcome: stmt.text(3),
            error: stmt.text(4),
        });
    }
    Ok(attempts)
}
