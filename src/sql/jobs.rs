//! cloud_sync_run_jobs([max]), cloud_sync_run(job_id), and the read-only views
//! cloud_sync_jobs_vtab, cloud_sync_job_tables(job_id), cloud_sync_job_log(job_id).

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::jobs::{self, views, Outcome};
use crate::sqlite::argument::{exact_integer, shown};
use crate::sqlite::vtab::{Cell, Column, Row, TableFunction};
use crate::sqlite::{Call, Db, Output};
use crate::sync::summary::JOB_TABLE_COLUMNS;

fn run_jobs(call: &Call, max: Option<i64>) -> Result<Output> {
    refuse_in_transaction(call)?;
    let outcomes = jobs::run_due(&call.db, max)?;
    Ok(Output::Text(run_jobs_result(&outcomes).to_string()))
}

/// What `cloud_sync_run_jobs` returns: how many jobs ran and how each ended. A job queued again
/// for a retry is `retrying`, not failed: it will run again.
fn run_jobs_result(outcomes: &[Outcome]) -> Value {
    let count = |status: &str| outcomes.iter().filter(|o| o.status == status).count();
    json!({
        "ran": outcomes.len(),
        "succeeded": count("succeeded"),
        "failed": count("failed"),
        "retrying": count("queued"),
        "cancelled": count("cancelled"),
        "jobs": outcomes
            .iter()
            .map(|o| json!({
                "id": o.id,
                "status": o.status,
                "error": o.error,
                "next_attempt_at": o.next_attempt_at,
            }))
            .collect::<Vec<_>>(),
    })
}

/// `cloud_sync_run_jobs()`: every due job.
pub fn run_jobs_all(call: &Call) -> Result<Output> {
    run_jobs(call, None)
}

/// `cloud_sync_run_jobs(max)`: at most `max` due jobs.
pub fn run_jobs_max(call: &Call) -> Result<Output> {
    let max = call.int(0, "max")?;
    if max < 0 {
        return Err(Error::invalid("argument 1 (max) must be 0 or more"));
    }
    run_jobs(call, Some(max))
}

/// `cloud_sync_run(job_id)`.
pub fn run(call: &Call) -> Result<Output> {
    let id = call.int(0, "job id")?;
    refuse_in_transaction(call)?;
    let outcome = jobs::run_one(&call.db, id)?;
    Ok(Output::Text(outcome.to_json().to_string()))
}

/// Jobs commit on the remote server, which a ROLLBACK of the caller's transaction could not
/// undo; and an export inside one could ship rows that are then rolled back. The message
/// does not name the function: the SQL boundary puts its name in front.
fn refuse_in_transaction(call: &Call) -> Result<()> {
    if call.db.in_transaction() {
        return Err(Error::invalid(
            "cannot run inside an open transaction: its jobs commit on the remote server, which \
             a ROLLBACK here could not undo; COMMIT (or ROLLBACK) first",
        ));
    }
    Ok(())
}

/// The job id argument of a table function: any value that stands for one integer exactly
/// (`4`, `4.0`, `'4'`), as for the scalar functions' job ids.
fn job_id(args: &[Cell]) -> Result<i64> {
    match args.first() {
        Some(Cell::Null) | None => Err(Error::invalid("the job id is NULL")),
        Some(cell) => exact_integer(cell.as_value()).ok_or_else(|| {
            Error::invalid(format!(
                "the job id must be an integer, not {}",
                shown(cell.as_value())
            ))
        }),
    }
}

/// The job id argument of the table functions.
const JOB_ID: &[Column] = &[Column::integer("job_id")];

/// `cloud_sync_job_tables`' columns: the table's name, then its counts.
const JOB_TABLE_TYPED_COLUMNS: [Column; JOB_TABLE_COLUMNS.len()] = {
    let mut columns = [Column::text(JOB_TABLE_COLUMNS[0]); JOB_TABLE_COLUMNS.len()];
    let mut i = 1;
    while i < columns.len() {
        columns[i] = Column::integer(JOB_TABLE_COLUMNS[i]);
        i += 1;
    }
    columns
};

/// `SELECT * FROM cloud_sync_jobs_vtab`: every job, with live progress for running ones.
pub struct JobsView;

impl TableFunction for JobsView {
    const NAME: &'static str = "cloud_sync_jobs_vtab";
    const COLUMNS: &'static [Column] = &[
        Column::integer("id"),
        Column::text("connection_name"),
        Column::text("kind"),
        Column::integer("dry_run"),
        Column::text("status"),
        Column::integer("attempts"),
        Column::integer("max_attempts"),
        Column::text("created_at"),
        Column::text("started_at"),
        Column::text("finished_at"),
        Column::integer("duration_ms"),
        Column::integer("rows_total"),
        Column::integer("rows_done"),
        Column::text("summary"),
        Column::text("error"),
        // Last, after the columns of earlier versions, for readers that go by position.
        Column::text("requested_by"),
    ];
    const PARAMS: &'static [Column] = &[];
    const USAGE: &'static str = "SELECT * FROM cloud_sync_jobs_vtab";

    fn rows(db: &Db, _: &[Cell]) -> Result<Vec<Row>> {
        Ok(views::jobs(db)?
            .into_iter()
            .map(|job| Row {
                rowid: job.id,
                cells: vec![
                    job.id.into(),
                    job.connection_name.into(),
                    job.kind.into(),
                    job.dry_run.into(),
                    job.status.into(),
                    job.attempts.into(),
                    job.max_attempts.into(),
                    job.created_at.into(),
                    job.started_at.into(),
                    job.finished_at.into(),
                    job.duration_ms.into(),
                    job.rows_total.into(),
                    job.rows_done.into(),
                    job.summary.into(),
                    job.error.into(),
                    job.requested_by.into(),
                ],
            })
            .collect())
    }
}

/// `SELECT * FROM cloud_sync_job_tables(job_id)`: one row per table of the job's summary.
pub struct JobTables;

impl TableFunction for JobTables {
    const NAME: &'static str = "cloud_sync_job_tables";
    const COLUMNS: &'static [Column] = &JOB_TABLE_TYPED_COLUMNS;
    const PARAMS: &'static [Column] = JOB_ID;
    const USAGE: &'static str = "SELECT * FROM cloud_sync_job_tables(<job id>)";

    fn rows(db: &Db, args: &[Cell]) -> Result<Vec<Row>> {
        let id = job_id(args)?;
        Ok(views::job_tables(db, id)?
            .iter()
            .enumerate()
            .map(|(i, table)| Row {
                rowid: i as i64 + 1,
                cells: std::iter::once(Cell::from(table.table.clone()))
                    .chain(
                        table
                            .counts
                            .values()
                            .map(|count| count.map(|n| n as i64).into()),
                    )
                    .collect(),
            })
            .collect())
    }
}

/// `SELECT * FROM cloud_sync_job_log(job_id)`: the job's log, in order.
pub struct JobLog;

impl TableFunction for JobLog {
    const NAME: &'static str = "cloud_sync_job_log";
    const COLUMNS: &'static [Column] = &[
        Column::text("time"),
        Column::text("level"),
        Column::text("table_name"),
        Column::text("message"),
        Column::integer("attempt"),
    ];
    const PARAMS: &'static [Column] = JOB_ID;
    const USAGE: &'static str = "SELECT * FROM cloud_sync_job_log(<job id>)";

    fn rows(db: &Db, args: &[Cell]) -> Result<Vec<Row>> {
        let id = job_id(args)?;
        Ok(views::job_log(db, id)?
            .into_iter()
            .map(|line| Row {
                rowid: line.id,
                cells: vec![
                    line.at.into(),
                    line.level.into(),
                    line.table_name.into(),
                    line.message.into(),
                    line.attempt.into(),
                ],
            })
            .collect())
    }
}

pub fn cancel(call: &Call) -> Result<Output> {
    let id = call.int(0, "job id")?;
    Ok(Output::Text(
        jobs::control::cancel(&call.db, id, call.actor().as_deref())?.to_string(),
    ))
}

pub fn retry(call: &Call) -> Result<Output> {
    let id = call.int(0, "job id")?;
    Ok(Output::Text(
        jobs::control::retry(&call.db, id, call.actor().as_deref())?.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(id: i64, status: &str) -> Outcome {
        Outcome {
            id,
            status: status.into(),
            error: (status != "succeeded").then(|| "refused".into()),
            summary: None,
            next_attempt_at: (status == "queued").then(|| "2030-01-01T00:00:00.000Z".into()),
        }
    }

    #[test]
    fn a_job_queued_again_is_retrying_not_failed() {
        let result = run_jobs_result(&[
            outcome(1, "succeeded"),
            outcome(2, "queued"),
            outcome(3, "failed"),
            outcome(4, "cancelled"),
            outcome(5, "queued"),
        ]);
        let counts: Vec<&Value> = ["ran", "succeeded", "failed", "retrying", "cancelled"]
            .iter()
            .map(|key| &result[key])
            .collect();
        assert_eq!(
            counts,
            [&json!(5), &json!(1), &json!(1), &json!(2), &json!(1)]
        );
        assert_eq!(
            result["jobs"][1],
            json!({"id": 2, "status": "queued", "error": "refused",
                   "next_attempt_at": "2030-01-01T00:00:00.000Z"})
        );
        assert_eq!(
            run_jobs_result(&[]),
            json!({"ran": 0, "succeeded": 0, "failed": 0, "retrying": 0, "cancelled": 0,
                   "jobs": []})
        );
    }
}
