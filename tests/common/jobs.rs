//! Jobs as a test drives and reads them: queueing and running exports, a job's stored row, log
//! and attempts, and checks of what a refused, failed or succeeded job leaves behind. What its
//! summary says is read in `summary`.

use rusqlite::Connection;
use serde_json::{json, Value};

use super::local::{column_of, error_of, int_of, json_of, rows_of, value_of};
use super::sql_str;
use super::summary::{job_tables, summary_of};

/// A JSON value as a SQL string literal.
pub fn quoted(v: &Value) -> String {
    sql_str(&v.to_string())
}

/// `SELECT cloud_sync_run(<sql>)`, parsed: `sql` is a job id or a call that queues one.
pub fn run_job(conn: &Connection, sql: &str) -> Value {
    json_of(conn, &format!("SELECT cloud_sync_run({sql})"))
}

/// `cloud_sync_import` to `prod`, run now; its JSON, whatever its status.
pub fn import(conn: &Connection, dry_run: i64, strategy: &str, options: &Value) -> Value {
    run_job(
        conn,
        &format!(
            "cloud_sync_import('prod', {dry_run}, '{strategy}', {})",
            quoted(options)
        ),
    )
}

/// The call that queues an export to the saved connection `connection`.
fn export_call(connection: &str, dry_run: i64, options: &Value) -> String {
    format!(
        "cloud_sync_export({}, {dry_run}, {})",
        sql_str(connection),
        quoted(options)
    )
}

/// `options` confirming the dry run `dry`, as a full export needs.
fn confirming(options: &Value, dry: &Value) -> Value {
    let mut confirmed = options.clone();
    confirmed["confirm"] = dry["id"].clone();
    confirmed
}

/// The id of a dry-run export to `prod` with `options`, queued and not run.
pub fn queue_dry_run(conn: &Connection, options: &Value) -> i64 {
    int_of(conn, &format!("SELECT {}", export_call("prod", 1, options)))
}

/// The id of the full export to `prod` with `options`, queued and not run, confirming a dry
/// run that this runs first.
pub fn queue_confirmed_export(conn: &Connection, options: &Value) -> i64 {
    let dry = dry_run(conn, options);
    int_of(
        conn,
        &format!(
            "SELECT {}",
            export_call("prod", 0, &confirming(options, &dry))
        ),
    )
}

/// A dry run to `prod` with `options`, run now; its JSON, whatever its status.
pub fn run_dry_run(conn: &Connection, options: &Value) -> Value {
    run_job(conn, &export_call("prod", 1, options))
}

/// A dry run through the saved connection `connection`, which must succeed; the job's JSON.
fn dry_run_on(conn: &Connection, connection: &str, options: &Value) -> Value {
    let job = run_job(conn, &export_call(connection, 1, options));
    assert_eq!(job["status"], "succeeded", "{job}");
    job
}

/// `dry_run_on` the connection `prod`.
pub fn dry_run(conn: &Connection, options: &Value) -> Value {
    dry_run_on(conn, "prod", options)
}

/// The full export to `prod` that confirms the dry run `dry`, run now; its JSON, whatever its
/// status.
pub fn confirmed_export(conn: &Connection, options: &Value, dry: &Value) -> Value {
    run_job(conn, &export_call("prod", 0, &confirming(options, dry)))
}

/// A dry run, then the full export it confirms; the export's JSON, whatever its status.
pub fn export_on(conn: &Connection, connection: &str, options: &Value) -> Value {
    let dry = dry_run_on(conn, connection, options);
    run_job(
        conn,
        &export_call(connection, 0, &confirming(options, &dry)),
    )
}

/// `export_on` the connection `prod`.
pub fn export(conn: &Connection, options: &Value) -> Value {
    export_on(conn, "prod", options)
}

/// `export_on`, which must succeed.
pub fn exported_on(conn: &Connection, connection: &str, options: &Value) -> Value {
    let job = export_on(conn, connection, options);
    assert_eq!(job["status"], "succeeded", "{job}");
    job
}

/// `exported_on` the connection `prod`.
pub fn exported(conn: &Connection, options: &Value) -> Value {
    exported_on(conn, "prod", options)
}

/// Every column of job `id` as a JSON object, its summary parsed.
pub fn job_row(conn: &Connection, id: i64) -> Value {
    json_of(
        conn,
        &format!(
            "SELECT json_object('id', id, 'connection_id', connection_id,
               'connection_name', connection_name, 'kind', kind, 'dry_run', dry_run,
               'options', options, 'status', status, 'attempts', attempts,
               'max_attempts', max_attempts, 'created_at', created_at,
               'next_attempt_at', next_attempt_at, 'started_at', started_at,
               'finished_at', finished_at, 'claimed_by', claimed_by, 'rows_total', rows_total,
               'rows_done', rows_done, 'summary', json(summary), 'error', error)
             FROM cloud_sync_jobs WHERE id = {id}"
        ),
    )
}

/// The stored status of job `id`.
pub fn job_status(conn: &Connection, id: i64) -> String {
    value_of(
        conn,
        &format!("SELECT status FROM cloud_sync_jobs WHERE id = {id}"),
    )
}

/// How many jobs are stored.
pub fn job_count(conn: &Connection) -> i64 {
    int_of(conn, "SELECT count(*) FROM cloud_sync_jobs")
}

/// Every message of job `id`'s log, in order.
pub fn log_messages(conn: &Connection, id: i64) -> Vec<String> {
    column_of(
        conn,
        &format!("SELECT message FROM cloud_sync_job_log({id})"),
    )
}

/// The warnings in job `id`'s log, in order.
pub fn warnings_of(conn: &Connection, id: i64) -> Vec<String> {
    column_of(
        conn,
        &format!("SELECT message FROM cloud_sync_job_log({id}) WHERE level = 'warn'"),
    )
}

/// The outcome of each attempt of job `id`, in order.
pub fn attempt_outcomes(conn: &Connection, id: i64) -> Vec<String> {
    column_of(
        conn,
        &format!(
            "SELECT outcome FROM cloud_sync_job_attempts WHERE job_id = {id} ORDER BY attempt"
        ),
    )
}

/// Runs job `id`, queued against the closed `port` with one attempt allowed, through
/// cloud_sync_run: it fails, the connection refused. Returns what cloud_sync_run said, and why.
pub fn run_refused(conn: &Connection, id: i64, port: u16) -> (Value, String) {
    let outcome = run_job(conn, &id.to_string());
    assert_eq!(outcome["id"], id);
    assert_eq!(outcome["status"], "failed", "{outcome}");
    assert_eq!(summary_of(&outcome), &Value::Null);
    let reason = outcome["error"].as_str().unwrap().to_string();
    assert!(
        reason.contains(&format!("connection refused by 127.0.0.1:{port}")),
        "{reason}"
    );
    (outcome, reason)
}

/// Checks job `id`, which failed its one and only attempt with `reason` because nothing listens
/// on `port`: its row, its attempt and its log say so, it never got to its rows, and it cannot
/// run again.
pub fn assert_failed_at_closed_port(conn: &Connection, id: i64, port: u16, reason: &str) {
    let row = job_row(conn, id);
    assert_eq!(
        (&row["status"], &row["attempts"], &row["error"]),
        (&json!("failed"), &json!(1), &json!(reason)),
        "{row}"
    );
    let (started, finished) = (
        row["started_at"].as_str().unwrap(),
        row["finished_at"].as_str().unwrap(),
    );
    assert!(started <= finished, "{row}");
    assert_eq!(row["next_attempt_at"], Value::Null, "{row}");
    assert_eq!(row["claimed_by"], format!("pid:{}", std::process::id()));
    assert_eq!(row["rows_done"], 0, "{row}");
    assert_eq!(row["rows_total"], Value::Null, "it never got to its rows");
    assert_eq!(summary_of(&row), &Value::Null, "{row}");
    assert_eq!(
        job_tables(conn, id),
        [],
        "a job without a summary has no tables"
    );

    let attempts: Vec<(i64, String, String, Option<String>)> = rows_of(
        conn,
        &format!(
            "SELECT attempt, outcome, error, finished_at FROM cloud_sync_job_attempts
             WHERE job_id = {id}"
        ),
    );
    assert_eq!(
        attempts,
        [(1, "failed".into(), reason.into(), Some(finished.into()))]
    );

    // The log, in order, through the view.
    let log: Vec<(String, String, Option<String>, String, i64)> = rows_of(
        conn,
        &format!("SELECT time, level, table_name, message, attempt FROM cloud_sync_job_log({id})"),
    );
    let messages: Vec<&str> = log.iter().map(|l| l.3.as_str()).collect();
    assert_eq!(
        messages.first(),
        Some(&"claimed (attempt 1 of 1)"),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("connecting to postgresql://")
                && m.contains(&format!(":***@127.0.0.1:{port}/"))),
        "{messages:?}"
    );
    assert_eq!(
        messages.last().copied(),
        Some(format!("attempt 1 failed: {reason}").as_str())
    );
    assert_eq!(log.last().unwrap().1, "error");
    assert!(log.iter().all(|l| l.4 == 1), "{log:?}");
    assert!(log.windows(2).all(|w| w[0].0 <= w[1].0), "{log:?}");

    // A job that is not queued cannot run again.
    let message = error_of(conn, &format!("SELECT cloud_sync_run({id})"));
    assert!(
        message.contains(&format!("cloud_sync_run: job {id} is failed, not queued")),
        "{message}"
    );
}

/// Checks job `id`'s log: claimed for its first attempt (of 5), connected with the password
/// hidden, succeeded.
pub fn assert_logged_success(conn: &Connection, id: i64) {
    let log = log_messages(conn, id);
    assert_eq!(
        log.first().map(String::as_str),
        Some("claimed (attempt 1 of 5)"),
        "{log:?}"
    );
    assert_eq!(
        log.last().map(String::as_str),
        Some("job succeeded"),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|m| m.starts_with("connecting to postgresql://") && m.contains(":***@")),
        "{log:?}"
    );
}

/// Checks that `function` refuses each call in `cases` (the SQL, what its error must say) with
/// an error that names it, and that none of them queues a job.
pub fn assert_each_refused(conn: &Connection, function: &str, cases: &[(&str, &str)]) {
    let before = job_count(conn);
    for (sql, expected) in cases {
        let message = error_of(conn, sql);
        assert!(message.contains(expected), "{sql}: {message}");
        assert!(
            message.starts_with(&format!("{function}: ")),
            "{sql}: {message}"
        );
        assert_eq!(job_count(conn), before, "{sql} queued a job");
    }
}

/// Checks the stored row of a job just queued: status queued, no attempt yet, due at once
/// (next_attempt_at = created_at, an ISO 8601 UTC time), nothing run: no start, end, claim,
/// summary or error.
pub fn assert_freshly_queued(row: &Value) {
    assert_eq!(
        (&row["status"], &row["attempts"]),
        (&json!("queued"), &json!(0)),
        "{row}"
    );
    let created = row["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");
    assert_eq!(
        row["next_attempt_at"], created,
        "next_attempt_at = created_at"
    );
    for column in [
        "started_at",
        "finished_at",
        "claimed_by",
        "summary",
        "error",
    ] {
        assert_eq!(row[column], Value::Null, "{column}: {row}");
    }
}
