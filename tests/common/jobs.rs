//! Jobs as a test drives and reads them: queueing and running exports, a job's stored row, log
//! and attempts, and the counts its summary reports per table.
//!
//! A job's summary is read as JSON only here (`summary_of`, `table_of`, `Counts::of`), so a
//! typed summary would change this file alone.

use rusqlite::Connection;
use serde_json::{json, Value};

use super::local::{column_of, error_of, int_of, json_of, rows_of, value_of};
use super::sql_str;

/// A JSON value as a SQL string literal.
pub fn quoted(v: &Value) -> String {
    sql_str(&v.to_string())
}

/// `SELECT cloud_sync_run(<sql>)`, parsed: `sql` is a job id or a call that queues one.
pub fn run_job(conn: &Connection, sql: &str) -> Value {
    json_of(conn, &format!("SELECT cloud_sync_run({sql})"))
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
pub fn confirming(options: &Value, dry: &Value) -> Value {
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
pub fn dry_run_on(conn: &Connection, connection: &str, options: &Value) -> Value {
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

/// The outcome of each attempt of job `id`, in order.
pub fn attempt_outcomes(conn: &Connection, id: i64) -> Vec<String> {
    column_of(
        conn,
        &format!(
            "SELECT outcome FROM cloud_sync_job_attempts WHERE job_id = {id} ORDER BY attempt"
        ),
    )
}

/// The summary of a job: what cloud_sync_run returned, or its stored row (`job_row`).
pub fn summary_of(job: &Value) -> &Value {
    &job["summary"]
}

/// The summary's entry for table `name`.
pub fn table_of<'a>(job: &'a Value, name: &str) -> &'a Value {
    summary_of(job)["tables"]
        .as_array()
        .unwrap_or_else(|| panic!("no tables in {job}"))
        .iter()
        .find(|t| t["table"] == name)
        .unwrap_or_else(|| panic!("no table {name} in {job}"))
}

/// The counts the summary reports for table `name`.
pub fn counts_of(job: &Value, name: &str) -> Counts {
    Counts::of(table_of(job, name))
}

/// `Counts` with the named counts and every other one zero (remote_only `Some(0)`):
/// `counts!(source_rows: 3, inserts: 2, updates: 1)`. One line where a struct literal would
/// take one a field.
#[allow(unused_macros)] // each test binary builds this module; not all of them use it
macro_rules! counts {
    ($($field:ident: $n:expr),* $(,)?) => {
        $crate::common::jobs::Counts { $($field: $n,)* ..$crate::common::jobs::Counts::default() }
    };
}
#[allow(unused_imports)]
pub(crate) use counts;

/// What a job did to one table, as its summary, its report and cloud_sync_job_tables count it.
/// `Counts::default()` is all zero, so an expectation names only the counts that are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub source_rows: i64,
    pub inserts: i64,
    pub updates: i64,
    pub unchanged: i64,
    pub skipped: i64,
    pub deletes: i64,
    /// `None` where nothing counted them: an incremental export reads no whole remote table.
    pub remote_only: Option<i64>,
    pub problems: i64,
}

impl Default for Counts {
    fn default() -> Counts {
        Counts {
            source_rows: 0,
            inserts: 0,
            updates: 0,
            unchanged: 0,
            skipped: 0,
            deletes: 0,
            remote_only: Some(0),
            problems: 0,
        }
    }
}

impl Counts {
    /// The counts of one table entry of a summary or a report (every count must be there).
    pub fn of(entry: &Value) -> Counts {
        let count = |field: &str| {
            entry[field]
                .as_i64()
                .unwrap_or_else(|| panic!("no count {field} in {entry}"))
        };
        assert!(
            entry.get("remote_only").is_some(),
            "no count remote_only in {entry}"
        );
        Counts {
            source_rows: count("source_rows"),
            inserts: count("inserts"),
            updates: count("updates"),
            unchanged: count("unchanged"),
            skipped: count("skipped"),
            deletes: count("deletes"),
            remote_only: entry["remote_only"].as_i64(),
            problems: count("problems"),
        }
    }

    /// As a JSON table entry, the way summaries and reports write it.
    pub fn to_json(self, table: &str) -> Value {
        json!({
            "table": table, "source_rows": self.source_rows, "inserts": self.inserts,
            "updates": self.updates, "unchanged": self.unchanged, "skipped": self.skipped,
            "deletes": self.deletes, "remote_only": self.remote_only, "problems": self.problems,
        })
    }

    /// The counts as text, in cloud_sync_job_tables's column order (as CSV and Markdown
    /// reports write them; an uncounted remote_only is empty).
    pub fn cells(self) -> Vec<String> {
        [
            Some(self.source_rows),
            Some(self.inserts),
            Some(self.updates),
            Some(self.unchanged),
            Some(self.skipped),
            Some(self.deletes),
            self.remote_only,
            Some(self.problems),
        ]
        .iter()
        .map(|n| n.map_or_else(String::new, |n| n.to_string()))
        .collect()
    }
}

/// What an export did to one table: its mode, how many recorded changes it covered, and its
/// counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipped {
    pub mode: String,
    pub changes: i64,
    pub counts: Counts,
}

/// What the export `job` did to table `name`.
pub fn shipped(job: &Value, name: &str) -> Shipped {
    let entry = table_of(job, name);
    Shipped {
        mode: entry["mode"]
            .as_str()
            .unwrap_or_else(|| panic!("no mode in {entry}"))
            .to_string(),
        changes: entry["changes"]
            .as_i64()
            .unwrap_or_else(|| panic!("no changes in {entry}")),
        counts: Counts::of(entry),
    }
}

/// Checks what the export `job` did to table `name`.
pub fn assert_shipped(job: &Value, name: &str, expected: Shipped) {
    assert_eq!(shipped(job, name), expected, "{name}: {job}");
}

/// An incremental export that covered `changes` recorded changes, with `counts`: it reads no
/// whole remote table, so it counts no remote_only.
pub fn incremental(changes: i64, counts: Counts) -> Shipped {
    Shipped {
        mode: "incremental".into(),
        changes,
        counts: Counts {
            remote_only: None,
            ..counts
        },
    }
}

/// A full export (every local row compared, no recorded change used), with `counts`.
pub fn full(counts: Counts) -> Shipped {
    Shipped {
        mode: "full".into(),
        changes: 0,
        counts,
    }
}

/// The rows of cloud_sync_job_tables(`id`): each table's name and counts.
pub fn job_tables(conn: &Connection, id: i64) -> Vec<(String, Counts)> {
    rows_of::<(String, i64, i64, i64, i64, i64, i64, Option<i64>, i64)>(
        conn,
        &format!(
            "SELECT table_name, source_rows, inserts, updates, unchanged, skipped, deletes,
                    remote_only, problems FROM cloud_sync_job_tables({id})"
        ),
    )
    .into_iter()
    .map(|r| {
        let counts = Counts {
            source_rows: r.1,
            inserts: r.2,
            updates: r.3,
            unchanged: r.4,
            skipped: r.5,
            deletes: r.6,
            remote_only: r.7,
            problems: r.8,
        };
        (r.0, counts)
    })
    .collect()
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
