//! The jobs surface: cloud_sync_export (validation, confirmation), cloud_sync_run,
//! cloud_sync_run_jobs, and the read-only views cloud_sync_jobs_vtab, cloud_sync_job_tables and
//! cloud_sync_job_log, with the built extension loaded into a rusqlite host.

mod common;

use std::net::TcpListener;

use common::{open, percent_encode, pg, temp_db};
use rusqlite::Connection;
use serde_json::{json, Value};

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn jobs(conn: &Connection) -> i64 {
    count(conn, "SELECT count(*) FROM cloud_sync_jobs")
}

/// Runs `sql` (one value) and returns its error message; panics if it succeeds.
fn error(conn: &Connection, sql: &str) -> String {
    match conn.query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0)) {
        Ok(v) => panic!("{sql} should fail, gave {v:?}"),
        Err(e) => e.to_string(),
    }
}

/// Runs `sql` over a table function or view and returns its error message.
fn scan_error(conn: &Connection, sql: &str) -> String {
    let result = conn.prepare(sql).and_then(|mut stmt| {
        stmt.query_map([], |_| Ok(()))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<()>>>())
    });
    match result {
        Ok(rows) => panic!("{sql} should fail, gave {} rows", rows.len()),
        Err(e) => e.to_string(),
    }
}

fn json_of(conn: &Connection, sql: &str) -> Value {
    let text: String = conn
        .query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A port on which nothing listens.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Saves `name` pointing at a closed port (no server needed: saving does not connect).
fn save_dead(conn: &Connection, name: &str, password: &str) -> i64 {
    let url = format!(
        "postgresql://someone:{}@127.0.0.1:{}/db?sslmode=disable&connect_timeout=5",
        percent_encode(password),
        closed_port()
    );
    conn.query_row("SELECT cloud_sync_save(?1, ?2)", [name, &url], |r| r.get(0))
        .unwrap()
}

/// A database with a local table `items` and saved connections `prod` and `other`, both
/// pointing at closed ports.
fn setup(name: &str) -> (common::tempdir::Dir, Connection) {
    let (dir, path) = temp_db(name);
    let conn = open(&path);
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO items (name) VALUES ('a'), ('b');
         CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);",
    )
    .unwrap();
    save_dead(&conn, "prod", "pw");
    save_dead(&conn, "other", "pw");
    (dir, conn)
}

/// Every column of job `id` as a JSON object.
fn job(conn: &Connection, id: i64) -> Value {
    json_of(
        conn,
        &format!(
            "SELECT json_object('connection_id', connection_id, 'connection_name', connection_name,
               'kind', kind, 'dry_run', dry_run, 'options', options, 'status', status,
               'attempts', attempts, 'max_attempts', max_attempts, 'created_at', created_at,
               'next_attempt_at', next_attempt_at, 'started_at', started_at,
               'finished_at', finished_at, 'claimed_by', claimed_by, 'rows_total', rows_total,
               'rows_done', rows_done, 'summary', summary, 'error', error)
             FROM cloud_sync_jobs WHERE id = {id}"
        ),
    )
}

fn connection_id(conn: &Connection, name: &str) -> i64 {
    conn.query_row(
        "SELECT id FROM cloud_sync_connections WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

/// Inserts a finished job directly (to test the rules that read it) and returns its id.
#[allow(clippy::too_many_arguments)]
fn insert_job(
    conn: &Connection,
    connection: &str,
    dry_run: i64,
    status: &str,
    summary: Option<&Value>,
    finished_ago_s: i64,
) -> i64 {
    conn.query_row(
        "INSERT INTO cloud_sync_jobs
           (connection_id, connection_name, kind, dry_run, options, status, attempts,
            started_at, finished_at, summary)
         VALUES ((SELECT id FROM cloud_sync_connections WHERE name = ?1), ?1, 'export', ?2,
                 '{\"tables\":[\"items\"]}', ?3, 1,
                 strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?4),
                 strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?5), ?6)
         RETURNING id",
        rusqlite::params![
            connection,
            dry_run,
            status,
            format!("-{} seconds", finished_ago_s + 1),
            format!("-{finished_ago_s} seconds"),
            summary.map(Value::to_string),
        ],
        |r| r.get(0),
    )
    .unwrap()
}

/// A clean dry-run summary over `tables`.
fn summary(tables: &[&str], problems: i64) -> Value {
    json!({
        "kind": "export", "dry_run": true, "schema": "public",
        "tables": tables.iter().map(|t| json!({
            "table": t, "source_rows": 2, "inserts": 2, "updates": 0, "unchanged": 0,
            "skipped": 0, "deletes": 0, "remote_only": 0, "problems": problems,
        })).collect::<Vec<_>>(),
        "problems_total": problems,
    })
}

#[test]
fn every_refused_export_queues_nothing() {
    let (_dir, conn) = setup("refused");
    let cases = [
        (
            "SELECT cloud_sync_export('nope')",
            "unknown connection 'nope': saved connections: other, prod",
        ),
        (
            "SELECT cloud_sync_export('bad name!')",
            "a connection name is",
        ),
        (
            "SELECT cloud_sync_export(42)",
            "argument 1 (dry_run) must be the integer 0 (full export) or 1 (dry run)",
        ),
        (
            "SELECT cloud_sync_export('prod', 2)",
            "argument 2 (dry_run) must be the integer 0",
        ),
        (
            "SELECT cloud_sync_export('prod', 'yes')",
            "argument 2 (dry_run) must be the integer 0",
        ),
        (
            "SELECT cloud_sync_export('prod', 1.5)",
            "argument 2 (dry_run) must be the integer 0 (full export) or 1 (dry run), not 1.5",
        ),
        (
            "SELECT cloud_sync_export('prod', '0.5')",
            "argument 2 (dry_run) must be the integer 0 (full export) or 1 (dry run), not '0.5'",
        ),
        (
            "SELECT cloud_sync_export('prod', NULL)",
            "argument 2 (dry_run)",
        ),
        (
            "SELECT cloud_sync_export(NULL)",
            "argument 1 (connection name) must be text",
        ),
        (
            "SELECT cloud_sync_export('prod', 1, '{')",
            "options are not valid JSON",
        ),
        (
            "SELECT cloud_sync_export('prod', 1, '[1]')",
            "options must be a JSON object",
        ),
        (
            "SELECT cloud_sync_export('prod', 1, '{\"tabels\": []}')",
            "unknown option \"tabels\"",
        ),
        (
            "SELECT cloud_sync_export('prod', 1, 7)",
            "argument 3 (options JSON) must be text",
        ),
        (
            "SELECT cloud_sync_export('prod', 1, '{\"tables\": [\"ghost\"]}')",
            "ghost",
        ),
        (
            "SELECT cloud_sync_export('prod', 1, '{\"exclude\": [\"ghost\"]}')",
            "ghost",
        ),
        (
            "SELECT cloud_sync_export('prod', 0)",
            "a full export needs confirm",
        ),
        (
            "SELECT cloud_sync_export('prod', 0, '{\"confirm\": 12345}')",
            "job 12345 does not exist",
        ),
    ];
    for (sql, expected) in cases {
        let message = error(&conn, sql);
        assert!(message.contains(expected), "{sql}: {message}");
        assert!(
            message.starts_with("cloud_sync_export: "),
            "{sql}: {message}"
        );
        assert_eq!(jobs(&conn), 0, "{sql} queued a job");
    }
    // The confirmation message says exactly how to confirm.
    let message = error(&conn, "SELECT cloud_sync_export('prod', 0)");
    assert!(
        message.contains("SELECT cloud_sync_run(cloud_sync_export('prod'))")
            && message
                .contains("SELECT cloud_sync_export('prod', 0, '{\"confirm\": <dry-run job id>}')"),
        "{message}"
    );
}

#[test]
fn a_queued_export_stores_what_the_runner_needs() {
    let (_dir, conn) = setup("queued");
    let id: i64 = count(&conn, "SELECT cloud_sync_export('prod')");
    let id2: i64 = count(
        &conn,
        "SELECT cloud_sync_export('other', 1, ' { \"tables\" : [\"items\"], \"max_attempts\": 2 } ')",
    );
    assert!(id2 > id);
    let first = job(&conn, id);
    assert_eq!(first["connection_id"], connection_id(&conn, "prod"));
    assert_eq!(
        (&first["connection_name"], &first["kind"], &first["dry_run"]),
        (&json!("prod"), &json!("export"), &json!(1))
    );
    assert_eq!(
        (
            &first["options"],
            &first["status"],
            &first["attempts"],
            &first["max_attempts"]
        ),
        (&json!("{}"), &json!("queued"), &json!(0), &json!(5))
    );
    let created = first["created_at"].as_str().unwrap();
    assert_eq!(
        first["next_attempt_at"], created,
        "next_attempt_at = created_at"
    );
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");
    assert_eq!(first["started_at"], Value::Null);
    let second = job(&conn, id2);
    assert_eq!(second["connection_id"], connection_id(&conn, "other"));
    assert_eq!(second["connection_name"], "other");
    assert_eq!(
        second["options"],
        r#"{"max_attempts":2,"tables":["items"]}"#
    );
    assert_eq!(second["max_attempts"], 2);
}

#[test]
fn export_with_only_dry_run_needs_exactly_one_saved_connection() {
    let (_dir, path) = temp_db("only");
    let conn = open(&path);
    conn.execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY)")
        .unwrap();

    let message = error(&conn, "SELECT cloud_sync_export(1)");
    assert!(message.contains("no connection is saved yet"), "{message}");
    assert!(
        message.contains("cloud_sync_save(name, connection_string)"),
        "{message}"
    );
    assert_eq!(jobs(&conn), 0);

    save_dead(&conn, "solo", "pw");
    let id = count(&conn, "SELECT cloud_sync_export(1)");
    let (name, dry_run): (String, i64) = conn
        .query_row(
            "SELECT connection_name, dry_run FROM cloud_sync_jobs WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((name.as_str(), dry_run), ("solo", 1));
    // dry_run = 0 with a single connection still goes through the confirmation rules.
    let message = error(&conn, "SELECT cloud_sync_export(0)");
    assert!(
        message.contains("cloud_sync_export('solo', 0, '{\"confirm\""),
        "{message}"
    );

    save_dead(&conn, "second", "pw");
    let message = error(&conn, "SELECT cloud_sync_export(1)");
    assert!(
        message.contains("2 connections are saved (second, solo)"),
        "{message}"
    );
    assert!(
        message.contains("cloud_sync_export('second', 1)"),
        "{message}"
    );
    assert_eq!(jobs(&conn), 1);
}

#[test]
fn a_full_export_must_confirm_a_recent_clean_succeeded_dry_run_of_the_same_export() {
    let (_dir, conn) = setup("confirm");
    let items = summary(&["items"], 0);
    let good = insert_job(&conn, "prod", 1, "succeeded", Some(&items), 10);
    let full = |options: Value| {
        format!(
            "SELECT cloud_sync_export('prod', 0, {})",
            quoted(&options.to_string())
        )
    };
    let tables = json!(["items"]);

    let mut refused = vec![(
        json!({"tables": tables, "confirm": 999}),
        "confirm: job 999 does not exist".to_string(),
    )];
    let not_dry = insert_job(&conn, "prod", 0, "succeeded", Some(&items), 10);
    refused.push((
        json!({"tables": tables, "confirm": not_dry}),
        format!("job {not_dry} is not a dry run"),
    ));
    let import = insert_job(&conn, "prod", 1, "succeeded", Some(&items), 10);
    conn.execute(
        "UPDATE cloud_sync_jobs SET kind = 'import' WHERE id = ?1",
        [import],
    )
    .unwrap();
    refused.push((
        json!({"tables": tables, "confirm": import}),
        format!("job {import} is an import job"),
    ));
    for status in ["failed", "queued", "running", "cancelled"] {
        let job = insert_job(&conn, "prod", 1, status, Some(&items), 10);
        refused.push((
            json!({"tables": tables, "confirm": job}),
            format!("dry run {job} has not succeeded (its status is {status})"),
        ));
    }
    let other = insert_job(&conn, "other", 1, "succeeded", Some(&items), 10);
    refused.push((
        json!({"tables": tables, "confirm": other}),
        format!("dry run {other} was for connection 'other', not 'prod'"),
    ));
    let both = insert_job(
        &conn,
        "prod",
        1,
        "succeeded",
        Some(&summary(&["items", "notes"], 0)),
        10,
    );
    refused.push((
        json!({"tables": tables, "confirm": both}),
        format!(
            "dry run {both} covered different tables than this export (in the dry run only: notes)"
        ),
    ));
    refused.push((
        json!({"confirm": good}),
        format!(
            "dry run {good} covered different tables than this export (not in the dry run: notes)"
        ),
    ));
    let mut elsewhere = items.clone();
    elsewhere["schema"] = json!("staging");
    let schema = insert_job(&conn, "prod", 1, "succeeded", Some(&elsewhere), 10);
    refused.push((
        json!({"tables": tables, "confirm": schema}),
        format!("dry run {schema} was for schema 'staging', this export is for schema 'public'"),
    ));
    let stale = insert_job(&conn, "prod", 1, "succeeded", Some(&items), 7200);
    refused.push((
        json!({"tables": tables, "confirm": stale}),
        format!("dry run {stale} is stale: it finished 7200 seconds ago, more than confirm_max_age_s (3600 seconds)"),
    ));
    refused.push((
        json!({"tables": tables, "confirm": good, "confirm_max_age_s": 5}),
        format!("dry run {good} is stale"),
    ));
    let dirty = insert_job(
        &conn,
        "prod",
        1,
        "succeeded",
        Some(&summary(&["items"], 3)),
        10,
    );
    refused.push((
        json!({"tables": tables, "confirm": dirty}),
        format!("dry run {dirty} found 3 problems"),
    ));
    let no_summary = insert_job(&conn, "prod", 1, "succeeded", None, 10);
    refused.push((
        json!({"tables": tables, "confirm": no_summary}),
        format!("dry run {no_summary} has no readable summary"),
    ));

    let before = jobs(&conn);
    for (options, expected) in &refused {
        let message = error(&conn, &full(options.clone()));
        assert!(message.contains(expected.as_str()), "{options}: {message}");
        assert_eq!(jobs(&conn), before, "{options} queued a job");
    }

    // The connection deleted and saved again under the same name is another connection.
    // Every rule satisfied: the full export is queued.
    let id = count(&conn, &full(json!({"tables": tables, "confirm": good})));
    let (dry_run, options): (i64, String) = conn
        .query_row(
            "SELECT dry_run, options FROM cloud_sync_jobs WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(dry_run, 0);
    assert_eq!(
        options,
        format!(r#"{{"confirm":{good},"tables":["items"]}}"#)
    );
    // A stale dry run is fine within a larger confirm_max_age_s.
    count(
        &conn,
        &full(json!({"tables": tables, "confirm": stale, "confirm_max_age_s": 86400})),
    );

    count(&conn, "SELECT cloud_sync_delete('prod')");
    save_dead(&conn, "prod", "pw");
    let message = error(&conn, &full(json!({"tables": tables, "confirm": good})));
    assert!(
        message.contains("was for an earlier connection named 'prod'"),
        "{message}"
    );
}

#[test]
fn a_job_against_a_closed_port_fails_with_its_reason_and_leaks_no_password() {
    let pg = pg();
    let (_dir, path) = temp_db("closed");
    let conn = open(&path);
    conn.execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        .unwrap();
    let port = closed_port();
    let url = format!(
        "postgresql://{}:{}@127.0.0.1:{port}/{}?sslmode=disable&connect_timeout=5",
        pg.user,
        percent_encode(&pg.password),
        pg.db
    );
    conn.query_row("SELECT cloud_sync_save('dead', ?1)", [&url], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap();

    let id = count(
        &conn,
        "SELECT cloud_sync_export('dead', 1, '{\"max_attempts\": 1}')",
    );
    let outcome = json_of(&conn, &format!("SELECT cloud_sync_run({id})"));
    assert_eq!(outcome["id"], id);
    assert_eq!(outcome["status"], "failed", "{outcome}");
    assert_eq!(outcome["summary"], Value::Null);
    let reason = outcome["error"].as_str().unwrap();
    assert!(
        reason.contains(&format!("connection refused by 127.0.0.1:{port}")),
        "{reason}"
    );

    let row = job(&conn, id);
    assert_eq!(
        (&row["status"], &row["attempts"]),
        (&json!("failed"), &json!(1))
    );
    assert_eq!(row["error"], reason);
    let (started, finished) = (
        row["started_at"].as_str().unwrap(),
        row["finished_at"].as_str().unwrap(),
    );
    assert!(started <= finished, "{row}");
    assert_eq!(row["next_attempt_at"], Value::Null);
    assert_eq!(row["claimed_by"], format!("pid:{}", std::process::id()));
    assert_eq!(row["rows_done"], 0);
    assert_eq!(row["rows_total"], Value::Null, "it never got to its rows");

    let (attempt, outcome_text, attempt_error, attempt_finished): (i64, String, String, Option<String>) = conn
        .query_row(
            "SELECT attempt, outcome, error, finished_at FROM cloud_sync_job_attempts WHERE job_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((attempt, outcome_text.as_str()), (1, "failed"));
    assert_eq!(attempt_error, reason);
    assert_eq!(attempt_finished.as_deref(), Some(finished));

    // The log, in order, through the view.
    let log: Vec<(String, String, Option<String>, String, i64)> = conn
        .prepare(&format!(
            "SELECT time, level, table_name, message, attempt FROM cloud_sync_job_log({id})"
        ))
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
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
    assert!(log.iter().all(|l| l.4 == 1));
    assert!(log.windows(2).all(|w| w[0].0 <= w[1].0), "{log:?}");

    // No password, plain or percent-encoded, anywhere cloud_sync keeps text.
    let mut stored = common::all_stored_text(&conn);
    stored.push_str(&outcome.to_string());
    for secret in [pg.password.clone(), percent_encode(&pg.password)] {
        assert!(
            !stored.contains(&secret),
            "the password ({secret}) is stored: {stored}"
        );
    }

    // A job that is not queued cannot run again.
    let message = error(&conn, &format!("SELECT cloud_sync_run({id})"));
    assert!(
        message.contains(&format!("cloud_sync_run: job {id} is failed, not queued")),
        "{message}"
    );
}

#[test]
fn run_refuses_unknown_and_unqueued_jobs() {
    let (_dir, conn) = setup("run_refuses");
    let done = insert_job(
        &conn,
        "prod",
        1,
        "succeeded",
        Some(&summary(&["items"], 0)),
        10,
    );
    let message = error(&conn, &format!("SELECT cloud_sync_run({done})"));
    assert!(
        message.contains(&format!("job {done} is succeeded, not queued")),
        "{message}"
    );
    let running = insert_job(&conn, "prod", 1, "running", None, 10);
    let message = error(&conn, &format!("SELECT cloud_sync_run({running})"));
    assert!(message.contains("is running, not queued"), "{message}");
    let message = error(&conn, "SELECT cloud_sync_run(424242)");
    assert!(
        message.contains("cloud_sync_run: unknown job 424242"),
        "{message}"
    );
    let message = error(&conn, "SELECT cloud_sync_run('one')");
    assert!(
        message.contains("argument 1 (job id) must be an integer, not 'one'"),
        "{message}"
    );
    // Nothing changed.
    assert_eq!(
        count(&conn, "SELECT count(*) FROM cloud_sync_job_attempts"),
        0
    );
    assert_eq!(
        count(
            &conn,
            &format!("SELECT attempts FROM cloud_sync_jobs WHERE id = {done}")
        ),
        1
    );
}

#[test]
fn run_jobs_runs_due_jobs_oldest_first_up_to_max() {
    let (_dir, conn) = setup("run_jobs");
    let empty = json_of(&conn, "SELECT cloud_sync_run_jobs()");
    assert_eq!(
        empty,
        json!({"ran": 0, "succeeded": 0, "failed": 0, "jobs": []})
    );

    let first = count(&conn, "SELECT cloud_sync_export('prod')");
    let second = count(
        &conn,
        "SELECT cloud_sync_export('other', 1, '{\"max_attempts\": 1}')",
    );
    let later = count(&conn, "SELECT cloud_sync_export('prod')");
    conn.execute(
        "UPDATE cloud_sync_jobs SET next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+1 hour')
         WHERE id = ?1",
        [later],
    )
    .unwrap();
    // The oldest due job goes first.
    conn.execute(
        "UPDATE cloud_sync_jobs SET next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 minute')
         WHERE id = ?1",
        [second],
    )
    .unwrap();

    let message = error(&conn, "SELECT cloud_sync_run_jobs(-1)");
    assert!(
        message.contains("argument 1 (max) must be 0 or more"),
        "{message}"
    );
    assert_eq!(json_of(&conn, "SELECT cloud_sync_run_jobs(0)")["ran"], 0);

    let one = json_of(&conn, "SELECT cloud_sync_run_jobs(1)");
    assert_eq!(one["ran"], 1, "{one}");
    assert_eq!(one["failed"], 1, "{one}");
    assert_eq!(one["succeeded"], 0, "{one}");
    assert_eq!(one["jobs"][0]["id"], second, "{one}");
    assert_eq!(one["jobs"][0]["status"], "failed", "{one}");
    assert!(
        one["jobs"][0]["error"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{one}"
    );

    let rest = json_of(&conn, "SELECT cloud_sync_run_jobs()");
    assert_eq!(rest["ran"], 1, "{rest}");
    assert_eq!(rest["jobs"][0]["id"], first, "{rest}");
    let status: String = conn
        .query_row(
            "SELECT status FROM cloud_sync_jobs WHERE id = ?1",
            [later],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(status, "queued", "a job that is not due yet waits");
    assert_eq!(json_of(&conn, "SELECT cloud_sync_run_jobs()")["ran"], 0);
}

#[test]
fn the_jobs_view_decodes_every_column_and_the_duration() {
    let (_dir, conn) = setup("jobs_view");
    conn.execute_batch(
        "INSERT INTO cloud_sync_jobs
           (id, connection_name, kind, dry_run, options, status, attempts, max_attempts,
            created_at, started_at, finished_at, rows_total, rows_done, summary, error)
         VALUES
           (1, 'prod', 'export', 1, '{}', 'succeeded', 1, 5, '2024-01-01T00:00:00.000Z',
            '2024-01-01T00:00:00.250Z', '2024-01-01T00:00:01.750Z', 10, 10, '{\"tables\":[]}', NULL),
           (2, 'prod', 'export', 0, '{}', 'failed', 2, 3, '2024-01-01T00:00:00.000Z',
            '2024-01-01T23:59:59.000Z', '2024-01-02T00:00:01.000Z', NULL, 0, NULL, 'boom'),
           (3, 'other', 'export', 1, '{}', 'queued', 0, 5, '2024-01-01T00:00:00.000Z',
            NULL, NULL, NULL, 0, NULL, NULL);
         INSERT INTO cloud_sync_jobs (id, connection_name, kind, status, attempts, started_at)
         VALUES (4, 'prod', 'export', 'running', 1,
                 strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 seconds'));",
    )
    .unwrap();
    use rusqlite::types::Value as V;
    let rows: Vec<Vec<V>> = conn
        .prepare("SELECT * FROM cloud_sync_jobs_vtab")
        .unwrap()
        .query_map([], |r| (0..15).map(|i| r.get::<_, V>(i)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let text = |s: &str| V::Text(s.into());
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows[0],
        vec![
            V::Integer(1),
            text("prod"),
            text("export"),
            V::Integer(1),
            text("succeeded"),
            V::Integer(1),
            V::Integer(5),
            text("2024-01-01T00:00:00.000Z"),
            text("2024-01-01T00:00:00.250Z"),
            text("2024-01-01T00:00:01.750Z"),
            V::Integer(1500),
            V::Integer(10),
            V::Integer(10),
            text("{\"tables\":[]}"),
            V::Null,
        ]
    );
    assert_eq!(rows[1][10], V::Integer(2000), "across midnight");
    assert_eq!(
        [&rows[1][3], &rows[1][6], &rows[1][11], &rows[1][14]],
        [&V::Integer(0), &V::Integer(3), &V::Null, &text("boom")]
    );
    assert_eq!(rows[2][10], V::Null, "never started");
    let V::Integer(running) = rows[3][10] else {
        panic!("a running job has a duration: {:?}", rows[3]);
    };
    assert!((2000..60_000).contains(&running), "{running}");

    // Column names, types, WHERE and rowid behave like a table.
    let names: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('cloud_sync_jobs_vtab')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        names.join(","),
        "id,connection_name,kind,dry_run,status,attempts,max_attempts,created_at,started_at,\
         finished_at,duration_ms,rows_total,rows_done,summary,error"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM cloud_sync_jobs_vtab WHERE status = 'queued'"
        ),
        1
    );
    assert_eq!(
        count(&conn, "SELECT rowid FROM cloud_sync_jobs_vtab WHERE id = 3"),
        3
    );
    assert_eq!(
        count(
            &conn,
            "SELECT typeof(duration_ms) = 'integer' FROM cloud_sync_jobs_vtab WHERE id = 1"
        ),
        1
    );
    // Declared types give the columns a table's affinities: text finds an integer id.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM cloud_sync_jobs_vtab WHERE id = '1'"
        ),
        1
    );
    assert_eq!(
        count(&conn, "SELECT count(*) FROM cloud_sync_jobs WHERE id = '1'"),
        1
    );
    let types: Vec<String> = conn
        .prepare("SELECT type FROM pragma_table_info('cloud_sync_jobs_vtab')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        types.join(","),
        "INTEGER,TEXT,TEXT,INTEGER,TEXT,INTEGER,INTEGER,TEXT,TEXT,TEXT,INTEGER,INTEGER,INTEGER,\
         TEXT,TEXT"
    );

    // Read-only: every write is refused by SQLite, none aborts the host.
    for sql in [
        "INSERT INTO cloud_sync_jobs_vtab (id) VALUES (9)",
        "INSERT INTO cloud_sync_jobs_vtab (rowid, id) VALUES (9, 9)",
        "UPDATE cloud_sync_jobs_vtab SET status = 'queued'",
        "UPDATE cloud_sync_jobs_vtab SET rowid = rowid + 100",
        "DELETE FROM cloud_sync_jobs_vtab",
    ] {
        let err = conn.execute(sql, []).expect_err(sql).to_string();
        assert!(
            err.contains("may not be modified") || err.contains("cannot modify"),
            "{sql}: {err}"
        );
    }
    let err = conn
        .execute_batch("CREATE VIRTUAL TABLE copy USING cloud_sync_jobs_vtab")
        .expect_err("eponymous only")
        .to_string();
    assert!(
        err.contains("no such module") || err.contains("cloud_sync_jobs_vtab"),
        "{err}"
    );
    assert_eq!(jobs(&conn), 4);
}

#[test]
fn job_tables_lists_the_summary_tables_and_names_unknown_jobs() {
    let (_dir, conn) = setup("job_tables");
    let mut s = summary(&["items", "notes"], 0);
    s["tables"][1]["problems"] = json!(2);
    s["tables"][1]["updates"] = json!(7);
    s["tables"][1]["remote_only"] = json!(null);
    let id = insert_job(&conn, "prod", 1, "succeeded", Some(&s), 1);
    let empty = insert_job(&conn, "prod", 1, "queued", None, 1);

    type T = (String, i64, i64, i64, i64, i64, i64, Option<i64>, i64);
    let rows: Vec<T> = conn
        .prepare(&format!(
            "SELECT table_name, source_rows, inserts, updates, unchanged, skipped, deletes,
                    remote_only, problems FROM cloud_sync_job_tables({id})"
        ))
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            ("items".into(), 2, 2, 0, 0, 0, 0, Some(0), 0),
            ("notes".into(), 2, 2, 7, 0, 0, 0, None, 2),
        ]
    );
    assert_eq!(
        count(
            &conn,
            &format!("SELECT count(*) FROM cloud_sync_job_tables WHERE job_id = {id}")
        ),
        2
    );
    assert_eq!(
        count(
            &conn,
            &format!("SELECT count(*) FROM cloud_sync_job_tables({empty})")
        ),
        0
    );
    // As the right side of a join, with the argument from the left.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM cloud_sync_jobs j, cloud_sync_job_tables(j.id) t
             WHERE t.problems > 0"
        ),
        1
    );
    assert_eq!(
        count(
            &conn,
            &format!("SELECT job_id FROM cloud_sync_job_tables({id}) LIMIT 1")
        ),
        id
    );

    let message = scan_error(&conn, "SELECT * FROM cloud_sync_job_tables(4242)");
    assert_eq!(message, "cloud_sync_job_tables: unknown job 4242");
    let message = scan_error(&conn, "SELECT * FROM cloud_sync_job_tables");
    assert!(
        message.contains("cloud_sync_job_tables: needs its argument job_id: SELECT * FROM cloud_sync_job_tables(<job id>)"),
        "{message}"
    );
    let message = scan_error(&conn, "SELECT * FROM cloud_sync_job_tables('%s%s%s%n')");
    // The message is data, never a printf format (sqlite-loadable's own path would use it as one).
    assert_eq!(
        message,
        "cloud_sync_job_tables: the job id must be an integer, not '%s%s%s%n'"
    );
    let message = scan_error(&conn, "SELECT * FROM cloud_sync_job_tables(NULL)");
    assert_eq!(message, "cloud_sync_job_tables: the job id is NULL");
    conn.execute(
        "UPDATE cloud_sync_jobs SET summary = '{not json %s%n' WHERE id = ?1",
        [empty],
    )
    .unwrap();
    let message = scan_error(
        &conn,
        &format!("SELECT * FROM cloud_sync_job_tables({empty})"),
    );
    assert!(
        message.contains(&format!("job {empty}'s summary is not valid JSON")),
        "{message}"
    );
}

#[test]
fn job_log_is_in_write_order_and_names_unknown_jobs() {
    let (_dir, conn) = setup("job_log");
    let id = insert_job(&conn, "prod", 1, "failed", None, 1);
    let other = insert_job(&conn, "prod", 1, "failed", None, 1);
    conn.execute_batch(&format!(
        "INSERT INTO cloud_sync_job_logs (job_id, attempt, at, level, table_name, message) VALUES
           ({id}, 1, '2024-01-01T00:00:02.000Z', 'info', NULL, 'first'),
           ({other}, 1, '2024-01-01T00:00:00.000Z', 'info', NULL, 'someone else'),
           ({id}, 1, '2024-01-01T00:00:01.000Z', 'warn', 'items', 'second, earlier clock'),
           ({id}, 2, '2024-01-01T00:00:03.000Z', 'error', NULL, 'third 100% sure');"
    ))
    .unwrap();
    let log: Vec<(String, String, Option<String>, String, i64)> = conn
        .prepare(&format!("SELECT * FROM cloud_sync_job_log({id})"))
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        log,
        vec![
            (
                "2024-01-01T00:00:02.000Z".into(),
                "info".into(),
                None,
                "first".into(),
                1
            ),
            (
                "2024-01-01T00:00:01.000Z".into(),
                "warn".into(),
                Some("items".into()),
                "second, earlier clock".into(),
                1
            ),
            (
                "2024-01-01T00:00:03.000Z".into(),
                "error".into(),
                None,
                "third 100% sure".into(),
                2
            ),
        ]
    );
    let names: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('cloud_sync_job_log')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(names.join(","), "time,level,table_name,message,attempt");
    let message = scan_error(&conn, "SELECT * FROM cloud_sync_job_log(77)");
    assert_eq!(message, "cloud_sync_job_log: unknown job 77");
    let message = scan_error(&conn, "SELECT * FROM cloud_sync_job_log");
    assert!(message.contains("needs its argument job_id"), "{message}");
    // An error in the middle of a join still reaches SQL.
    let message = scan_error(
        &conn,
        "SELECT * FROM (SELECT 1 AS id UNION ALL SELECT 999) j, cloud_sync_job_log(j.id)",
    );
    assert_eq!(message, "cloud_sync_job_log: unknown job 999");
}

#[test]
fn the_views_are_registered_and_the_functions_are_direct_only() {
    let conn = open(std::path::Path::new(":memory:"));
    let modules: Vec<String> = conn
        .prepare("SELECT name FROM pragma_module_list WHERE name LIKE 'cloud_sync%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        modules,
        [
            "cloud_sync_job_log",
            "cloud_sync_job_tables",
            "cloud_sync_jobs_vtab"
        ]
    );
    let functions: Vec<(String, i64, i64)> = conn
        .prepare(
            "SELECT name, narg, flags FROM pragma_function_list
             WHERE name IN ('cloud_sync_export', 'cloud_sync_run', 'cloud_sync_run_jobs')
             ORDER BY name, narg",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let arities: Vec<(&str, i64)> = functions.iter().map(|(n, a, _)| (n.as_str(), *a)).collect();
    assert_eq!(
        arities,
        [
            ("cloud_sync_export", 1),
            ("cloud_sync_export", 2),
            ("cloud_sync_export", 3),
            ("cloud_sync_run", 1),
            ("cloud_sync_run_jobs", 0),
            ("cloud_sync_run_jobs", 1),
        ]
    );
    const DIRECTONLY: i64 = 0x80000;
    const DETERMINISTIC: i64 = 0x800;
    for (name, _, flags) in &functions {
        assert!(
            flags & DIRECTONLY != 0 && flags & DETERMINISTIC == 0,
            "{name}: {flags:#x}"
        );
    }

    // A view or trigger inside the database file cannot queue or run jobs.
    conn.execute_batch(
        "CREATE VIEW sneaky_export AS SELECT cloud_sync_export('prod');
         CREATE VIEW sneaky_run AS SELECT cloud_sync_run_jobs();",
    )
    .unwrap();
    for view in ["sneaky_export", "sneaky_run"] {
        let message = error(&conn, &format!("SELECT * FROM {view}"));
        assert!(message.contains("unsafe use of cloud_sync_"), "{message}");
    }
    // Loading twice keeps the views working.
    common::load(&conn).unwrap();
    assert_eq!(count(&conn, "SELECT count(*) FROM cloud_sync_jobs_vtab"), 0);
}

#[test]
fn a_dry_run_and_its_confirmed_export_run_end_to_end() {
    let pg = pg();
    let schema = common::fresh_schema(&pg, "t_jobs_e2e");
    let (_dir, path) = temp_db("e2e");
    let conn = open(&path);
    conn.query_row(
        "SELECT cloud_sync_save('prod', ?1)",
        [pg.verified_url()],
        |r| r.get::<_, i64>(0),
    )
    .unwrap();
    conn.execute_batch(
        "CREATE TABLE gadgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO gadgets (name) VALUES ('one'), ('two'), ('three');",
    )
    .unwrap();
    let options = json!({"schema": schema}).to_string();

    let dry = json_of(
        &conn,
        &format!(
            "SELECT cloud_sync_run(cloud_sync_export('prod', 1, {}))",
            quoted(&options)
        ),
    );
    assert_eq!(dry["status"], "succeeded", "{dry}");
    assert_eq!(dry["error"], Value::Null);
    let dry_id = dry["id"].as_i64().unwrap();
    assert_eq!(dry["summary"]["problems_total"], 0, "{dry}");
    let tables: Vec<(String, i64, i64)> = conn
        .prepare(&format!(
            "SELECT table_name, source_rows, inserts FROM cloud_sync_job_tables({dry_id})"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, [("gadgets".to_string(), 3, 3)]);
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(*) FROM pg_tables WHERE schemaname = '{schema}'"
        )),
        "0",
        "a dry run writes nothing"
    );
    let (status, rows_total, rows_done, duration): (String, Option<i64>, i64, Option<i64>) = conn
        .query_row(
            "SELECT status, rows_total, rows_done, duration_ms FROM cloud_sync_jobs_vtab WHERE id = ?1",
            [dry_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(status, "succeeded");
    assert!(rows_total.is_some(), "rows_total is recorded");
    assert!(rows_done >= 0 && duration.unwrap() >= 0);
    let log: Vec<String> = conn
        .prepare(&format!("SELECT message FROM cloud_sync_job_log({dry_id})"))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        log.first().map(String::as_str),
        Some("claimed (attempt 1 of 5)")
    );
    assert_eq!(log.last().map(String::as_str), Some("job succeeded"));
    assert!(
        log.iter()
            .any(|m| m.starts_with("connecting to postgresql://") && m.contains(":***@")),
        "{log:?}"
    );

    let full = json_of(
        &conn,
        &format!(
            "SELECT cloud_sync_run(cloud_sync_export('prod', 0, {}))",
            quoted(&json!({"schema": schema, "confirm": dry_id}).to_string())
        ),
    );
    assert_eq!(full["status"], "succeeded", "{full}");
    assert_eq!(
        pg.psql(&format!(
            "SELECT string_agg(name, ',' ORDER BY id) FROM {schema}.gadgets"
        )),
        "one,two,three"
    );
    pg.psql(&format!("DROP SCHEMA {schema} CASCADE"));
}

#[test]
fn the_jobs_view_shows_live_progress_of_a_job_running_in_this_process() {
    let pg = pg();
    let schema = common::fresh_schema(&pg, "t_jobs_live");
    let (_dir, path) = temp_db("live");
    let conn = open(&path);
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        .unwrap();
    conn.query_row(
        "SELECT cloud_sync_save('prod', ?1)",
        [pg.verified_url()],
        |r| r.get::<_, i64>(0),
    )
    .unwrap();
    const ROWS: i64 = 300_000;
    conn.execute_batch(&format!(
        "CREATE TABLE bulk (id INTEGER PRIMARY KEY, body TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
         INSERT INTO bulk SELECT i, printf('%0100d', i) FROM n;"
    ))
    .unwrap();
    let options = json!({"schema": schema}).to_string();
    let id = count(
        &conn,
        &format!("SELECT cloud_sync_export('prod', 1, {})", quoted(&options)),
    );

    // Another connection of this process watches the view while the job runs.
    let watcher = {
        let path = path.clone();
        std::thread::spawn(move || {
            let conn = open(&path);
            let mut seen = Vec::new();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while std::time::Instant::now() < deadline {
                let (status, total, done): (String, Option<i64>, i64) = conn
                    .query_row(
                        "SELECT status, rows_total, rows_done FROM cloud_sync_jobs_vtab WHERE id = ?1",
                        [id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .unwrap();
                let stored_total: Option<i64> = conn
                    .query_row(
                        "SELECT rows_total FROM cloud_sync_jobs WHERE id = ?1",
                        [id],
                        |r| r.get(0),
                    )
                    .unwrap();
                let finished = status != "queued" && status != "running";
                seen.push((status, total, done, stored_total));
                if finished {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            seen
        })
    };
    let outcome = json_of(&conn, &format!("SELECT cloud_sync_run({id})"));
    assert_eq!(outcome["status"], "succeeded", "{outcome}");
    let seen = watcher.join().unwrap();
    let live: Vec<&(String, Option<i64>, i64, Option<i64>)> = seen
        .iter()
        .filter(|(status, total, _, stored)| {
            status == "running" && *total == Some(ROWS) && stored.is_none()
        })
        .collect();
    assert!(
        !live.is_empty(),
        "the view never showed live progress: {:?}",
        &seen[seen.len().saturating_sub(5)..]
    );
    assert!(
        live.windows(2).all(|w| w[0].2 <= w[1].2),
        "rows_done only grows"
    );
    assert!(
        live.iter().any(|l| l.2 > 0 && l.2 < ROWS),
        "rows_done was never seen between 0 and {ROWS}"
    );
    assert!(live.iter().all(|l| l.2 <= ROWS));
    let last = seen.last().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1),
        ("succeeded", Some(ROWS)),
        "{last:?}"
    );
    pg.psql(&format!("DROP SCHEMA {schema} CASCADE"));
}

/// The status of job `id`.
fn status(conn: &Connection, id: i64) -> String {
    conn.query_row(
        "SELECT status FROM cloud_sync_jobs WHERE id = ?1",
        [id],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn integer_arguments_take_whole_reals_and_integer_text_and_refuse_the_rest() {
    let (_dir, conn) = setup("integers");
    let done = insert_job(
        &conn,
        "prod",
        1,
        "succeeded",
        Some(&summary(&["items"], 0)),
        10,
    );
    conn.execute(
        "INSERT INTO cloud_sync_job_logs (job_id, attempt, at, level, message)
         VALUES (?1, 1, '2024-01-01T00:00:00.000Z', 'info', 'hello')",
        [done],
    )
    .unwrap();
    // How JavaScript (REAL) and command-line or HTTP hosts (text) pass the integer `id`.
    let forms = |id: i64| [format!("{id}.0"), format!("'{id}'"), format!("' {id} '")];

    for form in forms(done) {
        let report = |arg: &str| -> String {
            let sql = format!("SELECT cloud_sync_report({arg})");
            conn.query_row(&sql, [], |r| r.get(0))
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        };
        assert_eq!(report(&form), report(&done.to_string()), "{form}");
        for view in ["cloud_sync_job_tables", "cloud_sync_job_log"] {
            let rows = |arg: &str| {
                let sql = format!("SELECT count(*), max(rowid) FROM {view}({arg})");
                conn.query_row(&sql, [], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            };
            assert_eq!(rows(&form), rows(&done.to_string()), "{view}({form})");
            assert_eq!(rows(&form).0, 1, "{view}({form})");
        }
        // Bound as a parameter too, as hosts do.
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM cloud_sync_job_tables(?1) WHERE inserts = '2'",
                [form.trim_matches('\'')],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 1, "{form}");
    }

    // run, cancel, retry: each form acts on the job it names.
    for i in 0..forms(0).len() {
        let queued = count(&conn, "SELECT cloud_sync_export('prod')");
        let form = &forms(queued)[i];
        let ran = json_of(&conn, &format!("SELECT cloud_sync_run({form})"));
        assert_eq!(ran["id"], queued, "{form}: {ran}");

        let queued = count(&conn, "SELECT cloud_sync_export('prod')");
        let form = &forms(queued)[i];
        let cancelled = json_of(&conn, &format!("SELECT cloud_sync_cancel({form})"));
        assert_eq!(cancelled["status"], "cancelled", "{form}: {cancelled}");
        assert_eq!(status(&conn, queued), "cancelled");
        let retried = json_of(&conn, &format!("SELECT cloud_sync_retry({form})"));
        assert_eq!(status(&conn, queued), "queued", "{form}: {retried}");
    }
    for form in forms(0) {
        let none = json_of(&conn, &format!("SELECT cloud_sync_run_jobs({form})"));
        assert_eq!(none["ran"], 0, "{form}: {none}");
    }

    // dry_run flags: 1.0 and '1' are a dry run, 0.0 and '0' the full job.
    let before = jobs(&conn);
    for sql in [
        "SELECT cloud_sync_export('prod', 1.0)",
        "SELECT cloud_sync_export('prod', '1')",
        "SELECT cloud_sync_import('prod', 1.0)",
        "SELECT cloud_sync_import('prod', ' 1')",
        "SELECT cloud_sync_import('prod', '1', 'skip', '{}')",
    ] {
        let id = count(&conn, sql);
        assert_eq!(
            count(
                &conn,
                &format!("SELECT dry_run FROM cloud_sync_jobs WHERE id = {id}")
            ),
            1,
            "{sql}"
        );
    }
    assert_eq!(jobs(&conn), before + 5);
    for sql in [
        "SELECT cloud_sync_export('prod', 0.0)",
        "SELECT cloud_sync_export('prod', '0')",
    ] {
        assert!(
            error(&conn, sql).contains("a full export needs confirm"),
            "{sql}"
        );
    }
    // A number alone is the flag (text would be a connection name).
    let message = error(&conn, "SELECT cloud_sync_export(1.0)");
    assert!(message.contains("2 connections are saved"), "{message}");

    // Anything else is refused, showing what was given.
    let long = "9".repeat(150);
    for (given, shown) in [
        ("1.5", "1.5"),
        ("'1.5'", "'1.5'"),
        ("'x'", "'x'"),
        ("'1abc'", "'1abc'"),
        ("1e300", "1e300"),
        ("-1e300", "-1e300"),
        ("9223372036854775808.0", "9.223372036854776e18"),
        ("x'31'", "a blob"),
    ] {
        for function in [
            "cloud_sync_run",
            "cloud_sync_report",
            "cloud_sync_cancel",
            "cloud_sync_retry",
            "cloud_sync_run_jobs",
        ] {
            let message = error(&conn, &format!("SELECT {function}({given})"));
            assert!(
                message.contains(&format!("must be an integer, not {shown}")),
                "{function}({given}): {message}"
            );
        }
        for view in ["cloud_sync_job_tables", "cloud_sync_job_log"] {
            let message = scan_error(&conn, &format!("SELECT * FROM {view}({given})"));
            assert_eq!(
                message,
                format!("{view}: the job id must be an integer, not {shown}"),
                "{view}({given})"
            );
        }
        for (sql, job) in [
            (
                format!("SELECT cloud_sync_export('prod', {given})"),
                "export",
            ),
            (
                format!("SELECT cloud_sync_import('prod', {given})"),
                "import",
            ),
        ] {
            let message = error(&conn, &sql);
            assert!(
                message.contains(&format!(
                    "argument 2 (dry_run) must be the integer 0 (full {job}) or 1 (dry run), \
                     not {shown}"
                )),
                "{sql}: {message}"
            );
        }
    }
    let message = error(&conn, &format!("SELECT cloud_sync_run('{long}')"));
    assert!(
        message.ends_with(&format!(
            "must be an integer, not '{}'... (150 characters)",
            "9".repeat(100)
        )),
        "{message}"
    );
    // A host's infinity arrives as REAL, its NaN as NULL.
    for (given, shown) in [(f64::INFINITY, "inf"), (f64::NAN, "NULL")] {
        let message = conn
            .query_row("SELECT cloud_sync_report(?1)", [given], |r| {
                r.get::<_, String>(0)
            })
            .unwrap_err()
            .to_string();
        assert!(
            message.contains(&format!("must be an integer, not {shown}")),
            "{given}: {message}"
        );
    }
    assert_eq!(jobs(&conn), before + 5, "nothing refused was queued");
}
