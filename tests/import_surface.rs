//! The import surface: cloud_sync_import (validation, what it stores), and import jobs through
//! cloud_sync_run and cloud_sync_run_jobs, with the built extension loaded into a rusqlite host.

mod common;

use std::net::TcpListener;

use common::{open, open_with, percent_encode, pg, temp_db};
use rusqlite::{Connection, OpenFlags};
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

fn json_of(conn: &Connection, sql: &str) -> Value {
    let text: String = conn
        .query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// A port on which nothing listens.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Saves `name` pointing at a closed port (no server needed: saving does not connect).
fn save_dead(conn: &Connection, name: &str) -> i64 {
    let url = format!(
        "postgresql://someone:pw@127.0.0.1:{}/db?sslmode=disable&connect_timeout=5",
        closed_port()
    );
    conn.query_row("SELECT cloud_sync_save(?1, ?2)", [name, &url], |r| r.get(0))
        .unwrap()
}

/// A database with local tables `items` and `notes` and saved connections `prod` and `other`,
/// both pointing at closed ports.
fn setup(name: &str) -> (common::tempdir::Dir, Connection) {
    let (dir, path) = temp_db(name);
    let conn = open(&path);
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO items (name) VALUES ('a'), ('b');
         CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);",
    )
    .unwrap();
    save_dead(&conn, "prod");
    save_dead(&conn, "other");
    (dir, conn)
}

/// The columns of job `id` as a JSON object.
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

/// Every message of job `id`'s log, in order.
fn log_messages(conn: &Connection, id: i64) -> Vec<String> {
    conn.prepare(&format!("SELECT message FROM cloud_sync_job_log({id})"))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn every_refused_import_queues_nothing() {
    let (_dir, conn) = setup("import_refused");
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
             create_tables, strategy, max_attempts",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '{\"use_rowid\": []}')",
            "unknown option \"use_rowid\"",
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
        // Tables: an unknown one only with create_tables.
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
        (
            "SELECT cloud_sync_import('prod', 1, 'skip',
               '{\"exclude\": [\"ghost\"], \"create_tables\": true}')",
            "unknown table \"ghost\" in option exclude",
        ),
        (
            "SELECT cloud_sync_import('prod', 1, 'skip', '{\"tables\": [\"cloud_sync_jobs\"]}')",
            "unknown table \"cloud_sync_jobs\" in option tables",
        ),
    ];
    for (sql, expected) in cases {
        let message = error(&conn, sql);
        assert!(message.contains(expected), "{sql}: {message}");
        assert!(
            message.starts_with("cloud_sync_import: "),
            "{sql}: {message}"
        );
        assert_eq!(jobs(&conn), 0, "{sql} queued a job");
    }
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
        let message = error(&conn, sql);
        assert_eq!(
            message,
            "cloud_sync_import: the database is read-only, so cloud_sync cannot queue a job: \
             open it read-write",
            "{sql}"
        );
    }
    assert_eq!(jobs(&conn), 0);
}

#[test]
fn a_queued_import_stores_what_the_runner_needs() {
    let (_dir, conn) = setup("import_queued");
    let stored = |sql: &str| {
        let id = count(&conn, sql);
        (id, job(&conn, id))
    };

    // The defaults: a dry run, strategy skip, written into the stored options.
    let (first, row) = stored("SELECT cloud_sync_import('prod')");
    assert_eq!(row["connection_id"], connection_id(&conn, "prod"));
    assert_eq!(
        (&row["connection_name"], &row["kind"], &row["dry_run"]),
        (&json!("prod"), &json!("import"), &json!(1))
    );
    assert_eq!(
        (
            &row["options"],
            &row["status"],
            &row["attempts"],
            &row["max_attempts"]
        ),
        (
            &json!(r#"{"strategy":"skip"}"#),
            &json!("queued"),
            &json!(0),
            &json!(5)
        )
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
        assert_eq!(row[column], Value::Null, "{column}");
    }

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
    let (_, row) = stored("SELECT cloud_sync_import('prod', 1, 'skip', '  ')");
    assert_eq!(row["options"], r#"{"strategy":"skip"}"#);

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

    // The history view shows them as imports.
    let kinds: Vec<(String, i64)> = conn
        .prepare("SELECT kind, dry_run FROM cloud_sync_jobs_vtab ORDER BY id LIMIT 2")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        kinds,
        [("import".to_string(), 1), ("import".to_string(), 0)]
    );
    assert_eq!(
        count(
            &conn,
            &format!("SELECT count(*) FROM cloud_sync_job_tables({first})")
        ),
        0,
        "no summary yet"
    );
}

#[test]
fn the_import_function_is_registered_direct_only() {
    let conn = open(std::path::Path::new(":memory:"));
    let functions: Vec<(i64, i64)> = conn
        .prepare(
            "SELECT narg, flags FROM pragma_function_list WHERE name = 'cloud_sync_import'
             ORDER BY narg",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        functions.iter().map(|f| f.0).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    const DIRECTONLY: i64 = 0x80000;
    const DETERMINISTIC: i64 = 0x800;
    for (narg, flags) in &functions {
        assert!(
            flags & DIRECTONLY != 0 && flags & DETERMINISTIC == 0,
            "{narg}: {flags:#x}"
        );
    }
    let message = error(
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
    let message = error(&conn, "SELECT * FROM sneaky_import");
    assert!(
        message.contains("unsafe use of cloud_sync_import()"),
        "{message}"
    );
}

#[test]
fn an_import_job_reads_its_strategy_from_the_stored_options() {
    let (_dir, conn) = setup("import_stored_options");
    let id = count(&conn, "SELECT cloud_sync_import('prod', 1, 'merge')");
    // Damaged after queueing: the runner parses what is stored, and says what is wrong.
    conn.execute(
        "UPDATE cloud_sync_jobs SET options = '{\"strategy\":\"bogus\"}' WHERE id = ?1",
        [id],
    )
    .unwrap();
    let outcome = json_of(&conn, &format!("SELECT cloud_sync_run({id})"));
    assert_eq!(outcome["status"], "failed", "{outcome}");
    assert_eq!(outcome["summary"], Value::Null);
    let reason = outcome["error"].as_str().unwrap();
    assert!(reason.starts_with("unknown strategy \"bogus\""), "{reason}");
    let row = job(&conn, id);
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
    let pg = pg();
    let (_dir, path) = temp_db("import_closed");
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

    // One through cloud_sync_run, one (a full import) through cloud_sync_run_jobs.
    let id = count(
        &conn,
        "SELECT cloud_sync_import('dead', 1, 'skip', '{\"max_attempts\": 1}')",
    );
    let outcome = json_of(&conn, &format!("SELECT cloud_sync_run({id})"));
    assert_eq!(outcome["id"], id);
    assert_eq!(outcome["status"], "failed", "{outcome}");
    assert_eq!(outcome["summary"], Value::Null);
    let reason = outcome["error"].as_str().unwrap().to_string();
    assert!(
        reason.contains(&format!("connection refused by 127.0.0.1:{port}")),
        "{reason}"
    );

    let full = count(
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
        let row = job(&conn, id);
        assert_eq!(
            (&row["kind"], &row["status"], &row["attempts"]),
            (&json!("import"), &json!("failed"), &json!(1))
        );
        assert_eq!(&row["error"], reason);
        let (started, finished) = (
            row["started_at"].as_str().unwrap(),
            row["finished_at"].as_str().unwrap(),
        );
        assert!(started <= finished, "{row}");
        assert_eq!(row["next_attempt_at"], Value::Null);
        assert_eq!(row["claimed_by"], format!("pid:{}", std::process::id()));
        assert_eq!(row["rows_done"], 0);
        assert_eq!(row["rows_total"], Value::Null, "it never got to its rows");
        assert_eq!(row["summary"], Value::Null);

        let (attempt, outcome, error): (i64, String, String) = conn
            .query_row(
                "SELECT attempt, outcome, error FROM cloud_sync_job_attempts WHERE job_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((attempt, outcome.as_str()), (1, "failed"));
        assert_eq!(&error, reason);

        let log = log_messages(&conn, id);
        assert_eq!(
            log.first().map(String::as_str),
            Some("claimed (attempt 1 of 1)")
        );
        assert!(
            log.iter()
                .any(|m| m.starts_with("connecting to postgresql://")
                    && m.contains(&format!(":***@127.0.0.1:{port}/"))),
            "{log:?}"
        );
        assert_eq!(log.last(), Some(&format!("attempt 1 failed: {reason}")));
        assert_eq!(
            count(
                &conn,
                &format!("SELECT count(*) FROM cloud_sync_job_tables({id})")
            ),
            0
        );
    }
    let kinds: Vec<(String, String)> = conn
        .prepare("SELECT kind, status FROM cloud_sync_jobs_vtab ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        kinds,
        [
            ("import".to_string(), "failed".to_string()),
            ("import".to_string(), "failed".to_string())
        ]
    );
    // Nothing local changed.
    assert_eq!(count(&conn, "SELECT count(*) FROM items"), 0);

    // No password, plain or percent-encoded, anywhere cloud_sync keeps text.
    let mut stored = common::all_stored_text(&conn);
    stored.push_str(&outcome.to_string());
    stored.push_str(&report.to_string());
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
fn an_import_dry_run_and_a_full_import_run_through_the_jobs_surface() {
    let pg = pg();
    let schema = "t_import_surface_e2e";
    pg.psql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema} AUTHORIZATION {user};
         CREATE TABLE {schema}.gadgets (id bigint PRIMARY KEY, name text NOT NULL);
         INSERT INTO {schema}.gadgets VALUES (1, 'one remote'), (2, 'two'), (3, 'three');
         ALTER TABLE {schema}.gadgets OWNER TO {user};",
        user = pg.user
    ));
    let (_dir, path) = temp_db("import_e2e");
    let conn = open(&path);
    conn.query_row(
        "SELECT cloud_sync_save('prod', ?1)",
        [pg.verified_url()],
        |r| r.get::<_, i64>(0),
    )
    .unwrap();
    conn.execute_batch(
        "CREATE TABLE gadgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO gadgets VALUES (1, 'one local');",
    )
    .unwrap();
    let local = |conn: &Connection| -> Vec<(i64, String)> {
        conn.prepare("SELECT id, name FROM gadgets ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let before = local(&conn);
    let options = json!({"schema": schema}).to_string();
    let counts = |id: i64| -> Vec<(String, i64, i64, i64)> {
        conn.prepare(&format!(
            "SELECT table_name, source_rows, inserts, updates FROM cloud_sync_job_tables({id})"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };

    let dry = json_of(
        &conn,
        &format!(
            "SELECT cloud_sync_run(cloud_sync_import('prod', 1, 'overwrite', {}))",
            common::sql_str(&options)
        ),
    );
    assert_eq!(dry["status"], "succeeded", "{dry}");
    assert_eq!(
        (&dry["summary"]["kind"], &dry["summary"]["strategy"]),
        (&json!("import"), &json!("overwrite")),
        "{dry}"
    );
    let dry_id = dry["id"].as_i64().unwrap();
    assert_eq!(counts(dry_id), [("gadgets".to_string(), 3, 2, 1)]);
    assert_eq!(local(&conn), before, "a dry run changes nothing locally");
    let log = log_messages(&conn, dry_id);
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
    let (kind, status, rows_total): (String, String, Option<i64>) = conn
        .query_row(
            "SELECT kind, status, rows_total FROM cloud_sync_jobs_vtab WHERE id = ?1",
            [dry_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((kind.as_str(), status.as_str()), ("import", "succeeded"));
    assert!(rows_total.is_some(), "rows_total is recorded");

    // A full import needs no confirmation, and lands the counts its dry run showed.
    let full = json_of(
        &conn,
        &format!(
            "SELECT cloud_sync_run(cloud_sync_import('prod', 0, 'overwrite', {}))",
            common::sql_str(&options)
        ),
    );
    assert_eq!(full["status"], "succeeded", "{full}");
    assert_eq!(full["summary"].get("differences_from_dry_run"), None);
    assert_eq!(counts(full["id"].as_i64().unwrap()), counts(dry_id));
    assert_eq!(
        local(&conn),
        [
            (1, "one remote".to_string()),
            (2, "two".to_string()),
            (3, "three".to_string())
        ]
    );
    pg.psql(&format!("DROP SCHEMA {schema} CASCADE"));
}
