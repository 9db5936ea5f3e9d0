//! The jobs surface: cloud_sync_export (validation, confirmation), cloud_sync_run,
//! cloud_sync_run_jobs, and the read-only views cloud_sync_jobs_vtab, cloud_sync_job_tables and
//! cloud_sync_job_log, with the built extension loaded into a rusqlite host.

mod common;

use common::jobs::{
    assert_each_refused, assert_failed_at_closed_port, assert_freshly_queued,
    assert_logged_success, confirmed_export, dry_run, job_count, job_row, job_status,
    queue_dry_run, quoted, run_refused,
};
use common::local::{
    all_stored_text, column_names, column_of, connection_id, direct_only_forms, error_of, int_of,
    json_of, row_of, rows_of, save_dead, value_of, with_dead_connections, with_dead_server,
    with_fresh_schema,
};
use common::summary::{counts, job_tables, problems_total_of, Counts};
use common::{open, open_in_memory, open_temp};
use rusqlite::Connection;
use serde_json::{json, Value};

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

/// A dry-run summary over `tables`, each with `counts`.
fn summary(tables: &[(&str, Counts)]) -> Value {
    json!({
        "kind": "export", "dry_run": true, "schema": "public",
        "tables": tables.iter().map(|(t, counts)| counts.to_json(t)).collect::<Vec<_>>(),
        "problems_total": tables.iter().map(|(_, counts)| counts.problems).sum::<i64>(),
    })
}

/// What a dry run of two new rows reports for a table, with `found` problems.
fn two_new_rows(found: i64) -> Counts {
    counts!(source_rows: 2, inserts: 2, problems: found)
}

#[test]
fn every_refused_export_queues_nothing() {
    let (_dir, conn) = with_dead_connections("refused");
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
    assert_each_refused(&conn, "cloud_sync_export", &cases);
    // The confirmation message says exactly how to confirm.
    let message = error_of(&conn, "SELECT cloud_sync_export('prod', 0)");
    assert!(
        message.contains("SELECT cloud_sync_run(cloud_sync_export('prod'))")
            && message
                .contains("SELECT cloud_sync_export('prod', 0, '{\"confirm\": <dry-run job id>}')"),
        "{message}"
    );
}

#[test]
fn a_queued_export_stores_what_the_runner_needs() {
    let (_dir, conn) = with_dead_connections("queued");
    let id: i64 = int_of(&conn, "SELECT cloud_sync_export('prod')");
    let id2: i64 = int_of(
        &conn,
        "SELECT cloud_sync_export('other', 1, ' { \"tables\" : [\"items\"], \"max_attempts\": 2 } ')",
    );
    assert!(id2 > id);
    let first = job_row(&conn, id);
    assert_freshly_queued(&first);
    assert_eq!(first["connection_id"], connection_id(&conn, "prod"));
    assert_eq!(
        (&first["connection_name"], &first["kind"], &first["dry_run"]),
        (&json!("prod"), &json!("export"), &json!(1))
    );
    assert_eq!(
        (&first["options"], &first["max_attempts"]),
        (&json!("{}"), &json!(5))
    );
    let second = job_row(&conn, id2);
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
    let (_dir, conn) = open_temp("only");
    conn.execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY)")
        .unwrap();

    let message = error_of(&conn, "SELECT cloud_sync_export(1)");
    assert!(message.contains("no connection is saved yet"), "{message}");
    assert!(
        message.contains("cloud_sync_save(name, connection_string)"),
        "{message}"
    );
    assert_eq!(job_count(&conn), 0);

    save_dead(&conn, "solo");
    let id = int_of(&conn, "SELECT cloud_sync_export(1)");
    let (name, dry_run): (String, i64) = row_of(
        &conn,
        &format!("SELECT connection_name, dry_run FROM cloud_sync_jobs WHERE id = {id}"),
    );
    assert_eq!((name.as_str(), dry_run), ("solo", 1));
    // dry_run = 0 with a single connection still goes through the confirmation rules.
    let message = error_of(&conn, "SELECT cloud_sync_export(0)");
    assert!(
        message.contains("cloud_sync_export('solo', 0, '{\"confirm\""),
        "{message}"
    );

    save_dead(&conn, "second");
    let message = error_of(&conn, "SELECT cloud_sync_export(1)");
    assert!(
        message.contains("2 connections are saved (second, solo)"),
        "{message}"
    );
    assert!(
        message.contains("cloud_sync_export('second', 1)"),
        "{message}"
    );
    assert_eq!(job_count(&conn), 1);
}

#[test]
fn a_full_export_must_confirm_a_recent_clean_succeeded_dry_run_of_the_same_export() {
    let (_dir, conn) = with_dead_connections("confirm");
    let items = summary(&[("items", two_new_rows(0))]);
    // A dry run of `prod` with `status` and `summary`, finished `ago_s` seconds ago.
    let dry = |status: &str, summary: Option<&Value>, ago_s: i64| {
        insert_job(&conn, "prod", 1, status, summary, ago_s)
    };
    let good = dry("succeeded", Some(&items), 10);
    let full =
        |options: Value| format!("SELECT cloud_sync_export('prod', 0, {})", quoted(&options));
    let confirming = |job: i64| json!({"tables": ["items"], "confirm": job});

    let not_dry = insert_job(&conn, "prod", 0, "succeeded", Some(&items), 10);
    let import = dry("succeeded", Some(&items), 10);
    conn.execute(
        "UPDATE cloud_sync_jobs SET kind = 'import' WHERE id = ?1",
        [import],
    )
    .unwrap();
    let other = insert_job(&conn, "other", 1, "succeeded", Some(&items), 10);
    let both = summary(&[("items", two_new_rows(0)), ("notes", two_new_rows(0))]);
    let both = dry("succeeded", Some(&both), 10);
    let mut elsewhere = items.clone();
    elsewhere["schema"] = json!("staging");
    let schema = dry("succeeded", Some(&elsewhere), 10);
    let stale = dry("succeeded", Some(&items), 7200);
    let dirty = dry(
        "succeeded",
        Some(&summary(&[("items", two_new_rows(3))])),
        10,
    );
    let no_summary = dry("succeeded", None, 10);
    let mut refused = vec![
        (confirming(999), "confirm: job 999 does not exist".to_string()),
        (confirming(not_dry), format!("job {not_dry} is not a dry run")),
        (confirming(import), format!("job {import} is an import job")),
        (
            confirming(other),
            format!("dry run {other} was for connection 'other', not 'prod'"),
        ),
        (
            confirming(both),
            format!(
                "dry run {both} covered different tables than this export (in the dry run only: notes)"
            ),
        ),
        (
            json!({"confirm": good}),
            format!(
                "dry run {good} covered different tables than this export (not in the dry run: notes)"
            ),
        ),
        (
            confirming(schema),
            format!("dry run {schema} was for schema 'staging', this export is for schema 'public'"),
        ),
        (
            confirming(stale),
            format!("dry run {stale} is stale: it finished 7200 seconds ago, more than confirm_max_age_s (3600 seconds)"),
        ),
        (
            json!({"tables": ["items"], "confirm": good, "confirm_max_age_s": 5}),
            format!("dry run {good} is stale"),
        ),
        (confirming(dirty), format!("dry run {dirty} found 3 problems")),
        (
            confirming(no_summary),
            format!("dry run {no_summary} has no readable summary"),
        ),
    ];
    for status in ["failed", "queued", "running", "cancelled"] {
        let job = dry(status, Some(&items), 10);
        refused.push((
            confirming(job),
            format!("dry run {job} has not succeeded (its status is {status})"),
        ));
    }

    let before = job_count(&conn);
    for (options, expected) in &refused {
        let message = error_of(&conn, &full(options.clone()));
        assert!(message.contains(expected.as_str()), "{options}: {message}");
        assert_eq!(job_count(&conn), before, "{options} queued a job");
    }

    // Every rule satisfied: the full export is queued.
    let id = int_of(&conn, &full(confirming(good)));
    let (dry_run, options): (i64, String) = row_of(
        &conn,
        &format!("SELECT dry_run, options FROM cloud_sync_jobs WHERE id = {id}"),
    );
    assert_eq!(dry_run, 0);
    assert_eq!(
        options,
        format!(r#"{{"confirm":{good},"tables":["items"]}}"#)
    );
    // A stale dry run is fine within a larger confirm_max_age_s.
    int_of(
        &conn,
        &full(json!({"tables": ["items"], "confirm": stale, "confirm_max_age_s": 86400})),
    );

    // The connection deleted and saved again under the same name is another connection.
    int_of(&conn, "SELECT cloud_sync_delete('prod')");
    save_dead(&conn, "prod");
    let message = error_of(&conn, &full(confirming(good)));
    assert!(
        message.contains("was for an earlier connection named 'prod'"),
        "{message}"
    );
}

#[test]
fn a_job_against_a_closed_port_fails_with_its_reason_and_leaks_no_password() {
    let (_dir, conn, pg, port) = with_dead_server("closed");
    let id = int_of(
        &conn,
        "SELECT cloud_sync_export('dead', 1, '{\"max_attempts\": 1}')",
    );
    let (outcome, reason) = run_refused(&conn, id, port);
    assert_failed_at_closed_port(&conn, id, port, &reason);

    // No password, plain or percent-encoded, anywhere cloud_sync keeps text.
    let mut stored = all_stored_text(&conn);
    stored.push_str(&outcome.to_string());
    pg.assert_no_password(&stored, "what cloud_sync keeps");
}

#[test]
fn run_refuses_unknown_and_unqueued_jobs() {
    let (_dir, conn) = with_dead_connections("run_refuses");
    let items = summary(&[("items", two_new_rows(0))]);
    let done = insert_job(&conn, "prod", 1, "succeeded", Some(&items), 10);
    let running = insert_job(&conn, "prod", 1, "running", None, 10);
    for (sql, expected) in [
        (
            format!("SELECT cloud_sync_run({done})"),
            format!("cloud_sync_run: job {done} is succeeded, not queued"),
        ),
        (
            format!("SELECT cloud_sync_run({running})"),
            format!("cloud_sync_run: job {running} is running, not queued"),
        ),
        (
            "SELECT cloud_sync_run(424242)".to_string(),
            "cloud_sync_run: unknown job 424242".to_string(),
        ),
        (
            "SELECT cloud_sync_run('one')".to_string(),
            "argument 1 (job id) must be an integer, not 'one'".to_string(),
        ),
    ] {
        let message = error_of(&conn, &sql);
        assert!(message.contains(&expected), "{sql}: {message}");
    }
    // Nothing changed.
    assert_eq!(
        int_of(&conn, "SELECT count(*) FROM cloud_sync_job_attempts"),
        0
    );
    assert_eq!(
        int_of(
            &conn,
            &format!("SELECT attempts FROM cloud_sync_jobs WHERE id = {done}")
        ),
        1
    );
}

/// Options that could never run are refused when the job is queued, naming what is wrong and
/// what to do, and nothing is queued.
#[test]
fn invalid_options_are_refused_when_queued() {
    let (_dir, conn) = with_dead_connections("options_at_queue");
    assert_each_refused(
        &conn,
        "cloud_sync_export",
        &[
            (
                r#"SELECT cloud_sync_export('prod', 1, '{"column_types": {"items.name": "varchar(x)"}}')"#,
                "option column_types gives \"items.name\" the type \"varchar(x)\", which \
                 cloud_sync cannot write; supported:",
            ),
            (
                r#"SELECT cloud_sync_export('prod', 1, '{"column_types": {"ghost.name": "text"}}')"#,
                "option column_types names \"ghost.name\", which is not a column of a table \
                 this export selects: name it \"table.column\" after a column of one of items, \
                 notes",
            ),
            (
                r#"SELECT cloud_sync_export('prod', 1, '{"tables": ["items"], "column_types": {"notes.body": "text"}}')"#,
                "not a column of a table this export selects",
            ),
            (
                "SELECT cloud_sync_export('prod', 1, '')",
                "options are empty text: leave them out for the defaults",
            ),
            (
                r#"SELECT cloud_sync_export('prod', 1, '{"schema": "a", "schema": "b"}')"#,
                "the key \"schema\" is given twice: give it once",
            ),
        ],
    );
    assert_each_refused(
        &conn,
        "cloud_sync_import",
        &[
            (
                "SELECT cloud_sync_import('prod', 1, 'skip', ' ')",
                "options are empty text",
            ),
            (
                r#"SELECT cloud_sync_import('prod', 1, 'skip', '{"tables": ["items"], "tables": []}')"#,
                "the key \"tables\" is given twice",
            ),
        ],
    );
}

/// JSON options take integers and booleans in every exact form a host writes them (`1.0` from
/// JavaScript, `"1"` from a CLI), and show what they refuse.
#[test]
fn options_take_whole_numbers_as_hosts_write_them() {
    let (_dir, conn) = with_dead_connections("options_numbers");
    let id = int_of(
        &conn,
        r#"SELECT cloud_sync_export('prod', 1, '{"max_attempts": 2.0, "create_tables": "1"}')"#,
    );
    assert_eq!(job_row(&conn, id)["max_attempts"], 2);
    let id = int_of(
        &conn,
        r#"SELECT cloud_sync_import('prod', 1, 'skip', '{"max_attempts": "3", "create_tables": 0.0}')"#,
    );
    assert_eq!(job_row(&conn, id)["max_attempts"], 3);
    let queued = job_count(&conn);
    for (options, shown) in [
        (
            r#"{"max_attempts": 1.5}"#,
            "must be a positive integer, not 1.5",
        ),
        (
            r#"{"confirm": "one"}"#,
            "must be a positive integer, not \"one\"",
        ),
        (r#"{"create_tables": 2}"#, "must be true or false, not 2"),
    ] {
        let message = error_of(
            &conn,
            &format!("SELECT cloud_sync_export('prod', 0, '{options}')"),
        );
        assert!(message.contains(shown), "{options}: {message}");
    }
    // A full export confirmed by a job id written 1.0 reads it as job 1: found, and refused
    // for what that job is, not for how its id was written.
    let message = error_of(
        &conn,
        r#"SELECT cloud_sync_export('prod', 0, '{"confirm": 1.0}')"#,
    );
    assert!(
        message.contains("confirm: dry run 1 has not succeeded"),
        "{message}"
    );
    assert_eq!(job_count(&conn), queued);
}

#[test]
fn run_jobs_runs_due_jobs_oldest_first_up_to_max() {
    let (_dir, conn) = with_dead_connections("run_jobs");
    let empty = json_of(&conn, "SELECT cloud_sync_run_jobs()");
    assert_eq!(
        empty,
        json!({"ran": 0, "succeeded": 0, "failed": 0, "retrying": 0, "cancelled": 0, "jobs": []})
    );

    let first = int_of(&conn, "SELECT cloud_sync_export('prod')");
    let second = int_of(
        &conn,
        "SELECT cloud_sync_export('other', 1, '{\"max_attempts\": 1}')",
    );
    let later = int_of(&conn, "SELECT cloud_sync_export('prod')");
    let due_in = |id: i64, from_now: &str| {
        conn.execute(
            "UPDATE cloud_sync_jobs SET next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2)
             WHERE id = ?1",
            rusqlite::params![id, from_now],
        )
        .unwrap();
    };
    due_in(later, "+1 hour");
    // The oldest due job goes first.
    due_in(second, "-1 minute");

    let message = error_of(&conn, "SELECT cloud_sync_run_jobs(-1)");
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

    // A transient failure with attempts left is queued again: retrying, not failed.
    let rest = json_of(&conn, "SELECT cloud_sync_run_jobs()");
    assert_eq!(rest["ran"], 1, "{rest}");
    assert_eq!(
        (&rest["retrying"], &rest["failed"]),
        (&json!(1), &json!(0)),
        "{rest}"
    );
    assert_eq!(rest["jobs"][0]["id"], first, "{rest}");
    assert_eq!(rest["jobs"][0]["status"], "queued", "{rest}");
    assert!(rest["jobs"][0]["next_attempt_at"].is_string(), "{rest}");
    assert_eq!(job_status(&conn, first), "queued");
    let status = job_status(&conn, later);
    assert_eq!(status, "queued", "a job that is not due yet waits");
    // The retry's delay is drawn from 0 s up: put it surely ahead, so nothing is due.
    due_in(first, "+1 hour");
    assert_eq!(json_of(&conn, "SELECT cloud_sync_run_jobs()")["ran"], 0);
}

#[test]
fn the_jobs_view_decodes_every_column_and_the_duration() {
    let (_dir, conn) = with_dead_connections("jobs_view");
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
        .query_map([], |r| (0..16).map(|i| r.get::<_, V>(i)).collect())
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
    assert_eq!(
        column_names(&conn, "cloud_sync_jobs_vtab").join(","),
        "id,connection_name,kind,dry_run,status,attempts,max_attempts,created_at,started_at,\
         finished_at,duration_ms,rows_total,rows_done,summary,error,requested_by"
    );
    assert_eq!(
        int_of(
            &conn,
            "SELECT count(*) FROM cloud_sync_jobs_vtab WHERE status = 'queued'"
        ),
        1
    );
    assert_eq!(
        int_of(&conn, "SELECT rowid FROM cloud_sync_jobs_vtab WHERE id = 3"),
        3
    );
    assert_eq!(
        int_of(
            &conn,
            "SELECT typeof(duration_ms) = 'integer' FROM cloud_sync_jobs_vtab WHERE id = 1"
        ),
        1
    );
    // Declared types give the columns a table's affinities: text finds an integer id.
    assert_eq!(
        int_of(
            &conn,
            "SELECT count(*) FROM cloud_sync_jobs_vtab WHERE id = '1'"
        ),
        1
    );
    assert_eq!(
        int_of(&conn, "SELECT count(*) FROM cloud_sync_jobs WHERE id = '1'"),
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
         TEXT,TEXT,TEXT"
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
    assert_eq!(job_count(&conn), 4);
}

#[test]
fn job_tables_lists_the_summary_tables_and_names_unknown_jobs() {
    let (_dir, conn) = with_dead_connections("job_tables");
    let tables = [
        ("items".to_string(), two_new_rows(0)),
        (
            "notes".to_string(),
            counts!(source_rows: 2, inserts: 2, updates: 7, remote_only: None, problems: 2),
        ),
    ];
    let summary = summary(&[("items", tables[0].1), ("notes", tables[1].1)]);
    let id = insert_job(&conn, "prod", 1, "succeeded", Some(&summary), 1);
    let empty = insert_job(&conn, "prod", 1, "queued", None, 1);
    assert_eq!(job_tables(&conn, id), tables);
    assert_eq!(
        int_of(
            &conn,
            &format!("SELECT count(*) FROM cloud_sync_job_tables WHERE job_id = {id}")
        ),
        2
    );
    assert_eq!(job_tables(&conn, empty), []);
    // As the right side of a join, with the argument from the left.
    assert_eq!(
        int_of(
            &conn,
            "SELECT count(*) FROM cloud_sync_jobs j, cloud_sync_job_tables(j.id) t
             WHERE t.problems > 0"
        ),
        1
    );
    assert_eq!(
        int_of(
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
    let (_dir, conn) = with_dead_connections("job_log");
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
    let log: Vec<(String, String, Option<String>, String, i64)> =
        rows_of(&conn, &format!("SELECT * FROM cloud_sync_job_log({id})"));
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
    assert_eq!(
        column_names(&conn, "cloud_sync_job_log").join(","),
        "time,level,table_name,message,attempt"
    );
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
    let conn = open_in_memory();
    let modules: Vec<String> = column_of(
        &conn,
        "SELECT name FROM pragma_module_list WHERE name LIKE 'cloud_sync%' ORDER BY name",
    );
    assert_eq!(
        modules,
        [
            "cloud_sync_job_log",
            "cloud_sync_job_tables",
            "cloud_sync_jobs_vtab"
        ]
    );
    let arities = direct_only_forms(
        &conn,
        &["cloud_sync_export", "cloud_sync_run", "cloud_sync_run_jobs"],
    );
    let arities: Vec<(&str, i64)> = arities.iter().map(|(n, a)| (n.as_str(), *a)).collect();
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

    // A view or trigger inside the database file cannot queue or run jobs.
    conn.execute_batch(
        "CREATE VIEW sneaky_export AS SELECT cloud_sync_export('prod');
         CREATE VIEW sneaky_run AS SELECT cloud_sync_run_jobs();",
    )
    .unwrap();
    for view in ["sneaky_export", "sneaky_run"] {
        let message = error_of(&conn, &format!("SELECT * FROM {view}"));
        assert!(message.contains("unsafe use of cloud_sync_"), "{message}");
    }
    // Loading twice keeps the views working.
    common::load(&conn).unwrap();
    assert_eq!(
        int_of(&conn, "SELECT count(*) FROM cloud_sync_jobs_vtab"),
        0
    );
}

#[test]
fn a_dry_run_and_its_confirmed_export_run_end_to_end() {
    let (_dir, conn, pg, schema) = with_fresh_schema("e2e", "t_jobs_e2e");
    conn.execute_batch(
        "CREATE TABLE gadgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO gadgets (name) VALUES ('one'), ('two'), ('three');",
    )
    .unwrap();
    let options = json!({"schema": schema});

    let dry = dry_run(&conn, &options);
    assert_eq!(dry["error"], Value::Null);
    let dry_id = dry["id"].as_i64().unwrap();
    assert_eq!(problems_total_of(&dry), 0, "{dry}");
    assert_eq!(
        job_tables(&conn, dry_id),
        [("gadgets".to_string(), counts!(source_rows: 3, inserts: 3))]
    );
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(*) FROM pg_tables WHERE schemaname = '{schema}'"
        )),
        "0",
        "a dry run writes nothing"
    );
    let (status, rows_total, rows_done, duration): (String, Option<i64>, i64, Option<i64>) = row_of(
        &conn,
        &format!(
            "SELECT status, rows_total, rows_done, duration_ms FROM cloud_sync_jobs_vtab
                 WHERE id = {dry_id}"
        ),
    );
    assert_eq!(status, "succeeded");
    assert!(rows_total.is_some(), "rows_total is recorded");
    assert!(rows_done >= 0 && duration.unwrap() >= 0);
    assert_logged_success(&conn, dry_id);

    let full = confirmed_export(&conn, &options, &dry);
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
    let (dir, conn, pg, schema) = with_fresh_schema("live", "t_jobs_live");
    let mode: String = value_of(&conn, "PRAGMA journal_mode = WAL");
    assert_eq!(mode, "wal");
    const ROWS: i64 = 300_000;
    conn.execute_batch(&format!(
        "CREATE TABLE bulk (id INTEGER PRIMARY KEY, body TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
         INSERT INTO bulk SELECT i, printf('%0100d', i) FROM n;"
    ))
    .unwrap();
    let id = queue_dry_run(&conn, &json!({"schema": schema}));

    // Another connection of this process watches the view while the job runs.
    let watcher = {
        let path = dir.db();
        std::thread::spawn(move || {
            let conn = open(&path);
            let mut seen = Vec::new();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while std::time::Instant::now() < deadline {
                let (status, total, done): (String, Option<i64>, i64) = row_of(
                    &conn,
                    &format!(
                        "SELECT status, rows_total, rows_done FROM cloud_sync_jobs_vtab
                         WHERE id = {id}"
                    ),
                );
                let stored_total: Option<i64> = value_of(
                    &conn,
                    &format!("SELECT rows_total FROM cloud_sync_jobs WHERE id = {id}"),
                );
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
    let (_dir, conn) = with_dead_connections("integers");
    let done = insert_job(
        &conn,
        "prod",
        1,
        "succeeded",
        Some(&summary(&[("items", two_new_rows(0))])),
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
        let queued = int_of(&conn, "SELECT cloud_sync_export('prod')");
        let form = &forms(queued)[i];
        let ran = json_of(&conn, &format!("SELECT cloud_sync_run({form})"));
        assert_eq!(ran["id"], queued, "{form}: {ran}");

        let queued = int_of(&conn, "SELECT cloud_sync_export('prod')");
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
    let before = job_count(&conn);
    for sql in [
        "SELECT cloud_sync_export('prod', 1.0)",
        "SELECT cloud_sync_export('prod', '1')",
        "SELECT cloud_sync_import('prod', 1.0)",
        "SELECT cloud_sync_import('prod', ' 1')",
        "SELECT cloud_sync_import('prod', '1', 'skip', '{}')",
    ] {
        let id = int_of(&conn, sql);
        assert_eq!(
            int_of(
                &conn,
                &format!("SELECT dry_run FROM cloud_sync_jobs WHERE id = {id}")
            ),
            1,
            "{sql}"
        );
    }
    assert_eq!(job_count(&conn), before + 5);
    for sql in [
        "SELECT cloud_sync_export('prod', 0.0)",
        "SELECT cloud_sync_export('prod', '0')",
    ] {
        assert!(
            error_of(&conn, sql).contains("a full export needs confirm"),
            "{sql}"
        );
    }
    // A number alone is the flag (text would be a connection name).
    let message = error_of(&conn, "SELECT cloud_sync_export(1.0)");
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
            let message = error_of(&conn, &format!("SELECT {function}({given})"));
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
            let message = error_of(&conn, &sql);
            assert!(
                message.contains(&format!(
                    "argument 2 (dry_run) must be the integer 0 (full {job}) or 1 (dry run), \
                     not {shown}"
                )),
                "{sql}: {message}"
            );
        }
    }
    let message = error_of(&conn, &format!("SELECT cloud_sync_run('{long}')"));
    assert!(
        message.ends_with(&format!(
            "must be an integer, not '{}…' (150 characters)",
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
    assert_eq!(job_count(&conn), before + 5, "nothing refused was queued");
}
