//! The import surface: cloud_sync_import (validation, what it stores), and import jobs through
//! cloud_sync_run and cloud_sync_run_jobs, with the built extension loaded into a rusqlite host.

mod common;

use common::jobs::{
    assert_each_refused, assert_failed_at_closed_port, assert_freshly_queued,
    assert_logged_success, job_count, job_row, log_messages, run_refused,
};
use common::local::{
    all_stored_text, connection_id, direct_only_forms, error_of, int_of, json_of, row_of, rows_of,
    save_dead, with_dead_connections, with_dead_server, with_saved_connection,
};
use common::summary::{counts, job_tables, summary_of};
use common::{open, open_in_memory, open_with, sql_str, temp_db};
use rusqlite::OpenFlags;
use serde_json::{json, Value};

#[test]
fn every_refused_import_queues_nothing() {
    let (_dir, conn) = with_dead_connections("import_refused");
    const DRY_RUN: &str = "argument 2 (dry_run) must be the integer 0 (full import) or 1 (dry run)";
    const STRATEGY: &str = "unknown strategy \"replace\": use skip (keep local rows), overwrite \
                            (take the remote rows) or merge (take the remote values that are not \
                            NULL)";
    let cases = [
        // The connection.
        (
            "SELECT cloud_sync_import('nope')",
            "unknown connection 'nope': saved connections: other, prod",
        ),
        (
            "SELECT cloud_sync_import('nope', 1, 'skip', '{}')",
            "unknown connection 'nope'",
        ),
        (
            "SELECT cloud_sync_import('bad name!')",
            "a connection name is",
        ),
        (
            "SELECT cloud_sync_import(NULL)",
            "argument 1 (connection name) must be text, not NULL",
        ),
        (
            "SELECT cloud_sync_import(1)",
            "argument 1 (connection name) must be text, not an integer",
        ),
        // dry_run: 0 or 1 (given as 1, 1.0 or '1'), nothing else.
        ("SELECT cloud_sync_import('prod', 2)", DRY_RUN),
        ("SELECT cloud_sync_import('prod', -1)", DRY_RUN),
        ("SELECT cloud_sync_import('prod', 'yes')", DRY_RUN),
        ("SELECT cloud_sync_import('prod', '2')", DRY_RUN),
        ("SELECT cloud_sync_import('prod', 1.5)", DRY_RUN),
        ("SELECT cloud_sync_import('prod', NULL)", DRY_RUN),
        (
            "SELECT cloud_sync_import('prod', NULL, 'skip', '{}')",
            DRY_RUN,
        ),
        // The strategy argument: text naming a strategy.
        ("SELECT cloud_sync_import('prod', 1, 'replace')", STRATEGY),
        (
            "SELECT cloud_sync_import('prod', 1, 'Skip')",
            "unknown strategy \"Skip\"",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, '')",
            "unknown strategy \"\"",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 1)",
            "argument 3 (strategy) must be text, not an integer",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, NULL)",
            "argument 3 (strategy) must be text, not NULL",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, x'736b6970')",
            "argument 3 (strategy) must be text, not a blob",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'replace', '{\"strategy\": \"merge\"}')",
            STRATEGY,
        ),
        // The strategy in the options.
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '{\"strategy\": \"replace\"}')",
            STRATEGY,
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '{\"strategy\": 1}')",
            "option strategy must be skip, overwrite or merge",
        ),
        // Both, differing.
        (
            "SELECT cloud_sync_import('prod', 1, 'overwrite', '{\"strategy\": \"merge\"}')",
            "conflicting strategies: the strategy argument is 'overwrite' but option strategy is \
             'merge': give the strategy once",
        ),
        (
            "SELECT cloud_sync_import('prod', 0, 'skip', '{\"strategy\": \"overwrite\"}')",
            "conflicting strategies: the strategy argument is 'skip' but option strategy is \
             'overwrite'",
        ),
        // Malformed options.
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '{')",
            "options are not valid JSON",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '[1]')",
            "options must be a JSON object",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '\"tables\"')",
            "options must be a JSON object",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', 7)",
            "argument 4 (options JSON) must be text, not an integer",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', NULL)",
            "argument 4 (options JSON) must be text, not NULL",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '{\"confirm\": 1}')",
            "unknown option \"confirm\": known options are tables, exclude, schema, \
             create_tables, strategy, column_types, max_attempts",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '{\"use_rowid\": [\"nope\"]}')",
            "unknown table \"nope\" in option use_rowid",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '{\"tables\": \"items\"}')",
            "option tables must be an array of table names",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '{\"create_tables\": \"yes\"}')",
            "option create_tables must be true or false",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '{\"schema\": \"\"}')",
            "option schema must be a non-empty string",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '{\"max_attempts\": 0}')",
            "option max_attempts must be a positive integer",
        ),
        // Tables: an unknown one, in tables or exclude, only with create_tables.
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '{\"tables\": [\"ghost\"]}')",
            "unknown table \"ghost\" in option tables: it is not a local table; set \
             \"create_tables\": true to create it from the remote definition",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip',
               '{\"tables\": [\"items\", \"ghost\"], \"create_tables\": false}')",
            "unknown table \"ghost\" in option tables",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '{\"exclude\": [\"ghost\"]}')",
            "unknown table \"ghost\" in option exclude: the local tables cloud_sync can sync are \
             items, notes",
        ),
        // Temporary and system schemas hold no application tables.
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '{\"schema\": \"pg_temp\"}')",
            "option schema: \"pg_temp\" is a temporary schema",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '{\"schema\": \"pg_catalog\"}')",
            "option schema: \"pg_catalog\" is reserved for PostgreSQL's system schemas",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '{\"schema\": \"information_schema\"}')",
            "option schema: \"information_schema\" holds PostgreSQL's SQL-standard views",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '{\"tables\": [\"cloud_sync_jobs\"]}')",
            "unknown table \"cloud_sync_jobs\" in option tables",
        ),
    ];
    assert_each_refused(&conn, "cloud_sync_import", &cases);
}

#[test]
fn a_read_only_database_queues_no_import() {
    let (_dir, path) = temp_db("import_readonly");
    {
        let conn = open(&path);
        conn.execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY)")
            .unwrap();
        save_dead(&conn, "prod");
    }
    let conn = open_with(&path, OpenFlags::SQLITE_OPEN_READ_ONLY);
    for sql in [
        "SELECT cloud_sync_import('prod')",
        "SELECT cloud_sync_import('prod', 0, 'overwrite', '{}')",
        // The database is checked before the connection, the strategy and the options.
        "SELECT cloud_sync_import('nope', 1, 'replace', '{')",
    ] {
        let message = error_of(&conn, sql);
        assert_eq!(
            message,
            "cloud_sync_import: the database is read-only, so cloud_sync cannot queue a job: \
             open it read-write",
            "{sql}"
        );
    }
    assert_eq!(job_count(&conn), 0);
}

#[test]
fn a_queued_import_stores_what_the_runner_needs() {
    let (_dir, conn) = with_dead_connections("import_queued");
    let stored = |sql: &str| {
        let id = int_of(&conn, sql);
        (id, job_row(&conn, id))
    };

    // The defaults: a dry run, strategy skip, written into the stored options.
    let (first, row) = stored("SELECT cloud_sync_import('prod')");
    assert_freshly_queued(&row);
    assert_eq!(row["connection_id"], connection_id(&conn, "prod"));
    assert_eq!(
        (&row["connection_name"], &row["kind"], &row["dry_run"]),
        (&json!("prod"), &json!("import"), &json!(1))
    );
    assert_eq!(
        (&row["options"], &row["max_attempts"]),
        (&json!(r#"{"strategy":"skip"}"#), &json!(5))
    );

    // A full import needs no confirmation: it is queued as it is.
    let (full, row) = stored("SELECT cloud_sync_import('prod', 0)");
    assert!(full > first);
    assert_eq!(
        (&row["dry_run"], &row["options"]),
        (&json!(0), &json!(r#"{"strategy":"skip"}"#))
    );

    let (_, row) = stored("SELECT cloud_sync_import('other', 1, 'merge')");
    assert_eq!(row["connection_id"], connection_id(&conn, "other"));
    assert_eq!(
        (&row["connection_name"], &row["options"]),
        (&json!("other"), &json!(r#"{"strategy":"merge"}"#))
    );

    // Options are stored compact with sorted keys, the strategy argument folded in.
    let (_, row) = stored(
        "SELECT cloud_sync_import('prod', 0, 'overwrite',
           ' { \"tables\" : [\"items\"], \"max_attempts\": 2, \"schema\": \"s\",
               \"exclude\": [\"notes\"] } ')",
    );
    assert_eq!(
        row["options"],
        r#"{"exclude":["notes"],"max_attempts":2,"schema":"s","strategy":"overwrite","tables":["items"]}"#
    );
    assert_eq!(
        (&row["dry_run"], &row["max_attempts"]),
        (&json!(0), &json!(2))
    );

    // The strategy given twice, the same both times; or only in the options.
    let (_, row) =
        stored("SELECT cloud_sync_import('prod', 1, 'merge', '{\"strategy\": \"merge\"}')");
    assert_eq!(row["options"], r#"{"strategy":"merge"}"#);
    let (_, row) =
        stored("SELECT cloud_sync_import('prod', 1, 'skip', '{\"strategy\": \"skip\"}')");
    assert_eq!(row["options"], r#"{"strategy":"skip"}"#);
    // Blank options are refused (leave them out for the defaults).
    let message = error_of(&conn, "SELECT cloud_sync_import('prod', 1, 'skip', '  ')");
    assert!(message.contains("options are empty text"), "{message}");

    // A table that is not local is accepted with create_tables (the import creates it).
    let (_, row) = stored(
        "SELECT cloud_sync_import('prod', 1, 'skip',
           '{\"tables\": [\"ghost\", \"items\"], \"create_tables\": true}')",
    );
    assert_eq!(
        row["options"],
        r#"{"create_tables":true,"strategy":"skip","tables":["ghost","items"]}"#
    );
    let (_, row) = stored(
        "SELECT cloud_sync_import('prod', 1, 'skip',
           '{\"tables\": [\"ghost\"], \"create_tables\": true}')",
    );
    assert_eq!(row["status"], "queued");
    // So is an excluded one: it may be a remote table to keep out (the run checks it is one).
    let (_, row) = stored(
        "SELECT cloud_sync_import('prod', 1, 'skip',
           '{\"exclude\": [\"ghost\"], \"create_tables\": true}')",
    );
    assert_eq!(row["status"], "queued");

    // The history view shows them as imports.
    let kinds: Vec<(String, i64)> = rows_of(
        &conn,
        "SELECT kind, dry_run FROM cloud_sync_jobs_vtab ORDER BY id LIMIT 2",
    );
    assert_eq!(
        kinds,
        [("import".to_string(), 1), ("import".to_string(), 0)]
    );
    assert_eq!(job_tables(&conn, first), [], "no summary yet");
}

#[test]
fn the_import_function_is_registered_direct_only() {
    let conn = open_in_memory();
    let arities: Vec<i64> = direct_only_forms(&conn, &["cloud_sync_import"])
        .into_iter()
        .map(|(_, narg)| narg)
        .collect();
    assert_eq!(arities, [1, 2, 3, 4]);
    let message = error_of(
        &conn,
        "SELECT cloud_sync_import('prod', 1, 'skip', '{}', 5)",
    );
    assert!(
        message.contains("wrong number of arguments to function cloud_sync_import()"),
        "{message}"
    );
    // A view or trigger inside the database file cannot queue an import.
    conn.execute_batch(
        "CREATE VIEW sneaky_import AS SELECT cloud_sync_import('prod', 0, 'overwrite');",
    )
    .unwrap();
    let message = error_of(&conn, "SELECT * FROM sneaky_import");
    assert!(
        message.contains("unsafe use of cloud_sync_import()"),
        "{message}"
    );
}

#[test]
fn an_import_job_reads_its_strategy_from_the_stored_options() {
    let (_dir, conn) = with_dead_connections("import_stored_options");
    // In WAL mode the log holds no journal-mode warning, so it can be compared whole.
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    let id = int_of(&conn, "SELECT cloud_sync_import('prod', 1, 'merge')");
    // Damaged after queueing: the runner parses what is stored, and says what is wrong.
    conn.execute(
        "UPDATE cloud_sync_jobs SET options = '{\"strategy\":\"bogus\"}' WHERE id = ?1",
        [id],
    )
    .unwrap();
    let outcome = json_of(&conn, &format!("SELECT cloud_sync_run({id})"));
    assert_eq!(outcome["status"], "failed", "{outcome}");
    assert_eq!(summary_of(&outcome), &Value::Null);
    let reason = outcome["error"].as_str().unwrap();
    assert!(reason.starts_with("unknown strategy \"bogus\""), "{reason}");
    let row = job_row(&conn, id);
    assert_eq!(
        (&row["status"], &row["attempts"], &row["error"]),
        (&json!("failed"), &json!(1), &json!(reason))
    );
    let log = log_messages(&conn, id);
    assert_eq!(
        log,
        [
            "claimed (attempt 1 of 5)".to_string(),
            format!("attempt 1 failed: {reason}")
        ]
    );
}

#[test]
fn an_import_job_against_a_closed_port_fails_with_its_reason_and_leaks_no_password() {
    let (_dir, conn, pg, port) = with_dead_server("import_closed");

    // One through cloud_sync_run, one (a full import) through cloud_sync_run_jobs.
    let id = int_of(
        &conn,
        "SELECT cloud_sync_import('dead', 1, 'skip', '{\"max_attempts\": 1}')",
    );
    let (outcome, reason) = run_refused(&conn, id, port);

    let full = int_of(
        &conn,
        "SELECT cloud_sync_import('dead', 0, 'overwrite', '{\"max_attempts\": 1}')",
    );
    let report = json_of(&conn, "SELECT cloud_sync_run_jobs()");
    assert_eq!(
        (&report["ran"], &report["succeeded"], &report["failed"]),
        (&json!(1), &json!(0), &json!(1)),
        "{report}"
    );
    assert_eq!(report["jobs"][0]["id"], full);
    let full_reason = report["jobs"][0]["error"].as_str().unwrap().to_string();
    assert!(
        full_reason.contains(&format!("connection refused by 127.0.0.1:{port}")),
        "{full_reason}"
    );

    for (id, reason) in [(id, &reason), (full, &full_reason)] {
        assert_eq!(job_row(&conn, id)["kind"], "import");
        assert_failed_at_closed_port(&conn, id, port, reason);
    }
    let kinds: Vec<(String, String)> = rows_of(
        &conn,
        "SELECT kind, status FROM cloud_sync_jobs_vtab ORDER BY id",
    );
    assert_eq!(
        kinds,
        [
            ("import".to_string(), "failed".to_string()),
            ("import".to_string(), "failed".to_string())
        ]
    );
    // Nothing local changed.
    assert_eq!(int_of(&conn, "SELECT count(*) FROM items"), 0);

    // No password, plain or percent-encoded, anywhere cloud_sync keeps text.
    let mut stored = all_stored_text(&conn);
    stored.push_str(&outcome.to_string());
    stored.push_str(&report.to_string());
    pg.assert_no_password(&stored, "what cloud_sync keeps");
}

#[test]
fn an_import_dry_run_and_a_full_import_run_through_the_jobs_surface() {
    let (_dir, conn, pg) = with_saved_connection("import_e2e", false);
    let schema = "t_import_surface_e2e";
    pg.psql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema} AUTHORIZATION {user};
         CREATE TABLE {schema}.gadgets (id bigint PRIMARY KEY, name text NOT NULL);
         INSERT INTO {schema}.gadgets VALUES (1, 'one remote'), (2, 'two'), (3, 'three');
         ALTER TABLE {schema}.gadgets OWNER TO {user};",
        user = pg.user
    ));
    conn.execute_batch(
        "CREATE TABLE gadgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO gadgets VALUES (1, 'one local');",
    )
    .unwrap();
    let local =
        || -> Vec<(i64, String)> { rows_of(&conn, "SELECT id, name FROM gadgets ORDER BY id") };
    let before = local();
    let options = sql_str(&json!({"schema": schema}).to_string());

    let dry = json_of(
        &conn,
        &format!("SELECT cloud_sync_run(cloud_sync_import('prod', 1, 'overwrite', {options}))"),
    );
    assert_eq!(dry["status"], "succeeded", "{dry}");
    assert_eq!(
        (&summary_of(&dry)["kind"], &summary_of(&dry)["strategy"]),
        (&json!("import"), &json!("overwrite")),
        "{dry}"
    );
    let dry_id = dry["id"].as_i64().unwrap();
    assert_eq!(
        job_tables(&conn, dry_id),
        [(
            "gadgets".to_string(),
            counts!(source_rows: 3, inserts: 2, updates: 1)
        )]
    );
    assert_eq!(local(), before, "a dry run changes nothing locally");
    assert_logged_success(&conn, dry_id);
    let (kind, status, rows_total): (String, String, Option<i64>) = row_of(
        &conn,
        &format!("SELECT kind, status, rows_total FROM cloud_sync_jobs_vtab WHERE id = {dry_id}"),
    );
    assert_eq!((kind.as_str(), status.as_str()), ("import", "succeeded"));
    assert!(rows_total.is_some(), "rows_total is recorded");

    // A full import needs no confirmation, and lands the counts its dry run showed.
    let full = json_of(
        &conn,
        &format!("SELECT cloud_sync_run(cloud_sync_import('prod', 0, 'overwrite', {options}))"),
    );
    assert_eq!(full["status"], "succeeded", "{full}");
    assert_eq!(summary_of(&full).get("differences_from_dry_run"), None);
    assert_eq!(
        job_tables(&conn, full["id"].as_i64().unwrap()),
        job_tables(&conn, dry_id)
    );
    assert_eq!(
        local(),
        [
            (1, "one remote".to_string()),
            (2, "two".to_string()),
            (3, "three".to_string())
        ]
    );
    pg.psql(&format!("DROP SCHEMA {schema} CASCADE"));
}
