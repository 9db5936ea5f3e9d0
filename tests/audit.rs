//! The audit's "who" (issue 17), with the built extension loaded into a rusqlite host against
//! the real PostgreSQL: the actor a connection sets (`cloud_sync_set_actor`), who each job is
//! requested by (option or actor, never someone else, never guessed) and where that shows (the
//! jobs view, the log, the three report formats), who saved, replaced, deleted and last tested
//! each connection, a schedule's jobs carrying its creator, cancel and retry naming who asked,
//! and databases of schema versions 1 to 3 upgraded on load.

mod common;

use std::time::{Duration, Instant};

use common::jobs::{job_count, log_messages, quoted};
use common::local::{
    all_stored_text, column_names, column_of, error_of, int_of, json_of, rows_of, save, save_dead,
    value_of, with_dead_connections, with_dead_server, with_fresh_schema, with_saved_connection,
};
use common::{open, open_temp, open_with, sql_str, temp_db};
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};

const RULE: &str = "an actor is 1 to 200 characters of text, with no control character";

/// `cloud_sync_set_actor(<sql>)`: what it returned.
fn set_actor(conn: &Connection, sql: &str) -> Option<String> {
    value_of(conn, &format!("SELECT cloud_sync_set_actor({sql})"))
}

fn actor(conn: &Connection) -> Option<String> {
    value_of(conn, "SELECT cloud_sync_actor()")
}

/// The requested_by column of job `id`.
fn requested_by(conn: &Connection, id: i64) -> Option<String> {
    value_of(
        conn,
        &format!("SELECT requested_by FROM cloud_sync_jobs WHERE id = {id}"),
    )
}

/// The call that queues a dry-run export to `prod` with `options`.
fn export_call(options: &Value) -> String {
    format!("cloud_sync_export('prod', 1, {})", quoted(options))
}

/// Every connection event as (connection_name, action, actor), in order.
fn events(conn: &Connection) -> Vec<(String, String, Option<String>)> {
    rows_of(
        conn,
        "SELECT connection_name, action, actor FROM cloud_sync_connection_events ORDER BY id",
    )
}

#[test]
fn the_actor_belongs_to_one_connection_until_it_closes_or_is_cleared() {
    let (dir, alice) = open_temp("audit_actor");
    let other = open(&dir.db());
    assert_eq!(actor(&alice), None, "no one acts until named");
    assert_eq!(set_actor(&alice, "'alice'").as_deref(), Some("alice"));
    assert_eq!(actor(&alice).as_deref(), Some("alice"));
    assert_eq!(actor(&other), None, "another connection to the same file");
    assert_eq!(set_actor(&other, "'bob'").as_deref(), Some("bob"));
    assert_eq!(actor(&alice).as_deref(), Some("alice"));
    assert_eq!(set_actor(&alice, "NULL"), None);
    assert_eq!(actor(&alice), None, "NULL clears it");
    assert_eq!(actor(&other).as_deref(), Some("bob"));
    drop(other);
    let reopened = open(&dir.db());
    assert_eq!(
        actor(&reopened),
        None,
        "a closed connection's actor is gone"
    );
}

#[test]
fn bad_actor_names_are_refused_with_the_rule() {
    let (_dir, conn) = open_temp("audit_bad_actor");
    set_actor(&conn, "'alice'");
    for (sql, broken) in [
        ("''", "this one is empty"),
        ("printf('%.*c', 201, 'x')", "this one has 201 characters"),
        (
            "'a' || char(10) || 'b'",
            "this one holds the control character U+000A",
        ),
        (
            "'tab' || char(9)",
            "this one holds the control character U+0009",
        ),
        (
            "'esc' || char(27) || '[31m'",
            "this one holds the control character U+001B",
        ),
    ] {
        let message = error_of(&conn, &format!("SELECT cloud_sync_set_actor({sql})"));
        assert_eq!(
            message,
            format!("cloud_sync_set_actor: {RULE}: {broken}"),
            "{sql}"
        );
    }
    // A connection string given by mistake would put its password in every log and report.
    let pg = common::pg();
    for secret in [
        pg.verified_url(),
        format!("host=h password={}", pg.password),
    ] {
        let message = error_of(
            &conn,
            &format!("SELECT cloud_sync_set_actor({})", sql_str(&secret)),
        );
        assert_eq!(
            message,
            "cloud_sync_set_actor: an actor is a name, not a connection string: this one looks \
             like one (a URL or a password= key), and would show its password in every log and \
             report"
        );
        pg.assert_no_password(&message, "the refusal");
    }
    for (sql, shown) in [("42", "42"), ("1.5", "1.5"), ("x'00'", "a blob")] {
        let message = error_of(&conn, &format!("SELECT cloud_sync_set_actor({sql})"));
        assert_eq!(
            message,
            format!(
                "cloud_sync_set_actor: argument 1 (actor) must be text ({RULE}) or NULL to clear \
                 it, not {shown}"
            )
        );
    }
    assert_eq!(
        actor(&conn).as_deref(),
        Some("alice"),
        "a refusal changes nothing"
    );
    let longest = "é".repeat(200);
    assert_eq!(
        set_actor(&conn, &sql_str(&longest)).as_deref(),
        Some(longest.as_str()),
        "200 characters, whatever their bytes"
    );
}

#[test]
fn a_job_is_requested_by_the_option_else_the_actor_and_never_by_someone_else() {
    let (_dir, conn) = with_dead_connections("audit_requester");
    let queue = |options: &Value| int_of(&conn, &format!("SELECT {}", export_call(options)));

    let nobody = queue(&json!({}));
    assert_eq!(requested_by(&conn, nobody), None, "never guessed");
    assert!(
        log_messages(&conn, nobody)
            .iter()
            .all(|m| !m.contains("requested by")),
        "{:?}",
        log_messages(&conn, nobody)
    );

    let option_alone = queue(&json!({"requested_by": "bob@example.com"}));
    assert_eq!(
        requested_by(&conn, option_alone).as_deref(),
        Some("bob@example.com")
    );
    assert_eq!(
        log_messages(&conn, option_alone),
        ["queued, requested by bob@example.com"]
    );
    let stored: String = value_of(
        &conn,
        &format!("SELECT options FROM cloud_sync_jobs WHERE id = {option_alone}"),
    );
    assert_eq!(stored, "{}", "who asked has its own column");

    set_actor(&conn, "'alice'");
    let actor_alone = queue(&json!({"tables": ["items"]}));
    assert_eq!(requested_by(&conn, actor_alone).as_deref(), Some("alice"));
    let agreeing = queue(&json!({"requested_by": "alice"}));
    assert_eq!(requested_by(&conn, agreeing).as_deref(), Some("alice"));
    let imported = int_of(&conn, "SELECT cloud_sync_import('prod')");
    assert_eq!(requested_by(&conn, imported).as_deref(), Some("alice"));

    // An option naming someone else than the actor is refused, and nothing is queued.
    let before = job_count(&conn);
    let message = error_of(
        &conn,
        &format!(
            "SELECT {}",
            export_call(&json!({"requested_by": "mallory"}))
        ),
    );
    assert_eq!(
        message,
        "cloud_sync_export: option requested_by names 'mallory', but this connection acts as \
         'alice' (cloud_sync_set_actor): the actor an application sets cannot be overridden \
         per call; leave requested_by out, or clear the actor first with \
         cloud_sync_set_actor(NULL)"
    );
    let message = error_of(
        &conn,
        r#"SELECT cloud_sync_import('prod', 1, 'skip', '{"requested_by": "mallory"}')"#,
    );
    assert!(
        message.starts_with("cloud_sync_import: option requested_by names 'mallory'"),
        "{message}"
    );
    assert_eq!(job_count(&conn), before);

    // The option follows the actor's rule.
    set_actor(&conn, "NULL");
    for (value, expected) in [
        (
            json!(""),
            format!("option requested_by: {RULE}: this one is empty"),
        ),
        (
            json!(7),
            format!("option requested_by must be text ({RULE}), not 7"),
        ),
        (
            json!(null),
            format!("option requested_by must be text ({RULE}), not null"),
        ),
        (
            json!("two\nlines"),
            format!("option requested_by: {RULE}: this one holds the control character U+000A"),
        ),
    ] {
        let message = error_of(
            &conn,
            &format!("SELECT {}", export_call(&json!({ "requested_by": value }))),
        );
        assert_eq!(message, format!("cloud_sync_export: {expected}"), "{value}");
    }
    assert_eq!(job_count(&conn), before);
}

/// The vtab's requested_by is its last column, after every column earlier versions had.
#[test]
fn requested_by_shows_in_the_jobs_view_the_log_and_every_report_format() {
    let (_dir, conn, pg, schema) = with_fresh_schema("audit_shown", "audit_shown");
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO items (name) VALUES ('tea'), ('coffee');
         CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
         INSERT INTO notes (body) VALUES ('x');",
    )
    .unwrap();
    let columns = column_names(&conn, "cloud_sync_jobs_vtab");
    assert_eq!(columns.last().map(String::as_str), Some("requested_by"));
    assert_eq!(columns[..15].last().map(String::as_str), Some("error"));

    set_actor(&conn, "'Zoë, \"ops\"'");
    let run: Value = json_of(
        &conn,
        &format!(
            "SELECT cloud_sync_run({})",
            export_call(&json!({ "schema": schema }))
        ),
    );
    assert_eq!(run["status"], "succeeded", "{run}");
    let id = run["id"].as_i64().unwrap();
    let shown: Option<String> = value_of(
        &conn,
        &format!("SELECT requested_by FROM cloud_sync_jobs_vtab WHERE id = {id}"),
    );
    assert_eq!(shown.as_deref(), Some("Zoë, \"ops\""));
    let log = log_messages(&conn, id);
    assert_eq!(log[0], "queued, requested by Zoë, \"ops\"", "{log:?}");

    let report = |id: i64, format: &str| -> String {
        let text: String = value_of(
            &conn,
            &format!("SELECT cloud_sync_report({id}, '{format}')"),
        );
        pg.assert_no_password(&text, format);
        text
    };
    let parsed: Value = serde_json::from_str(&report(id, "json")).unwrap();
    assert_eq!(parsed["job"]["requested_by"], "Zoë, \"ops\"");
    let markdown = report(id, "markdown");
    assert!(
        markdown.contains("\n| requested by | Zoë, \"ops\" |\n"),
        "{markdown}"
    );
    let csv = report(id, "csv");
    let records: Vec<&str> = csv.split("\r\n").collect();
    assert!(records[0].ends_with(",problems,requested_by"), "{csv}");
    assert_eq!(records.len(), 3, "a header and two tables: {csv}");
    for record in &records[1..] {
        assert!(
            record.ends_with(",\"Zoë, \"\"ops\"\"\""),
            "every record names who asked, quoted: {csv}"
        );
    }

    // No one named: null in JSON, an empty cell and an empty CSV field.
    set_actor(&conn, "NULL");
    let run = json_of(
        &conn,
        &format!(
            "SELECT cloud_sync_run({})",
            export_call(&json!({ "schema": schema, "tables": ["items"] }))
        ),
    );
    let id = run["id"].as_i64().unwrap();
    let parsed: Value = serde_json::from_str(&report(id, "json")).unwrap();
    assert_eq!(parsed["job"]["requested_by"], Value::Null);
    assert!(report(id, "markdown").contains("\n| requested by | |\n"));
    let csv = report(id, "csv");
    assert!(csv.ends_with("\r\nitems,2,2,0,0,0,0,0,0,"), "{csv}");
    let shown: Option<String> = value_of(
        &conn,
        &format!("SELECT requested_by FROM cloud_sync_jobs_vtab WHERE id = {id}"),
    );
    assert_eq!(shown, None);
    pg.psql(&format!("DROP SCHEMA {schema} CASCADE"));
}

#[test]
fn cancel_and_retry_name_who_asked_when_an_actor_is_set() {
    let (_dir, conn) = with_dead_connections("audit_cancel");
    let first = int_of(&conn, &format!("SELECT {}", export_call(&json!({}))));
    let second = int_of(&conn, &format!("SELECT {}", export_call(&json!({}))));
    set_actor(&conn, "'alice'");
    json_of(&conn, &format!("SELECT cloud_sync_cancel({first})"));
    json_of(&conn, &format!("SELECT cloud_sync_retry({first})"));
    assert_eq!(
        log_messages(&conn, first),
        [
            "cancel requested by alice",
            "cancelled while queued",
            "retry requested by alice",
            "queued again by cloud_sync_retry (after cancelled)",
        ]
    );
    set_actor(&conn, "NULL");
    json_of(&conn, &format!("SELECT cloud_sync_cancel({second})"));
    json_of(&conn, &format!("SELECT cloud_sync_retry({second})"));
    assert_eq!(
        log_messages(&conn, second),
        [
            "cancelled while queued",
            "queued again by cloud_sync_retry (after cancelled)",
        ],
        "nothing about who when no actor is set"
    );
}

#[test]
fn saving_replacing_and_deleting_a_connection_record_who_and_when() {
    let (dir, conn) = open_temp("audit_connections");
    let pg = common::pg();
    let by = |name: &str| -> (Option<String>, Option<String>, String, String) {
        common::local::row_of(
            &conn,
            &format!(
                "SELECT created_by, updated_by, created_at, updated_at \
                 FROM cloud_sync_connections WHERE name = {}",
                sql_str(name)
            ),
        )
    };
    set_actor(&conn, "'alice'");
    save(&conn, "prod", &pg.verified_url());
    let created = by("prod");
    assert_eq!(
        (created.0.as_deref(), created.1.as_deref()),
        (Some("alice"), Some("alice"))
    );
    std::thread::sleep(Duration::from_millis(5));
    set_actor(&conn, "'bob'");
    save(&conn, "prod", &pg.pooled_url());
    let replaced = by("prod");
    assert_eq!(
        (replaced.0.as_deref(), replaced.1.as_deref()),
        (Some("alice"), Some("bob")),
        "created_by stays, updated_by follows"
    );
    assert_eq!(replaced.2, created.2);
    assert!(replaced.3 > created.3, "{replaced:?}");
    set_actor(&conn, "NULL");
    save(&conn, "anon", &pg.verified_url());
    assert_eq!((by("anon").0, by("anon").1), (None, None));
    // Another connection with its own actor deletes it.
    let carol = open(&dir.db());
    set_actor(&carol, "'carol'");
    int_of(&carol, "SELECT cloud_sync_delete('prod')");
    assert_eq!(
        int_of(
            &conn,
            "SELECT count(*) FROM cloud_sync_connections WHERE name = 'prod'"
        ),
        0
    );
    assert_eq!(
        events(&conn),
        [
            ("prod".into(), "created".into(), Some("alice".into())),
            ("prod".into(), "replaced".into(), Some("bob".into())),
            ("anon".into(), "created".into(), None),
            ("prod".into(), "deleted".into(), Some("carol".into())),
        ]
    );
    let times: Vec<String> = column_of(
        &conn,
        "SELECT at FROM cloud_sync_connection_events ORDER BY id",
    );
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // A refused save or delete records nothing.
    error_of(
        &conn,
        "SELECT cloud_sync_save('bad name', 'postgresql://u@h/d')",
    );
    error_of(&conn, "SELECT cloud_sync_delete('missing')");
    assert_eq!(events(&conn).len(), 4);
    pg.assert_no_password(&all_stored_text(&conn), "cloud_sync's tables");
}

/// The last_test columns of the connection `name`.
fn last_test(conn: &Connection, name: &str) -> (Option<String>, Option<String>, Option<String>) {
    common::local::row_of(
        conn,
        &format!(
            "SELECT last_tested_at, last_tested_by, last_test FROM cloud_sync_connections \
             WHERE name = {}",
            sql_str(name)
        ),
    )
}

#[test]
fn the_last_test_of_a_saved_connection_is_recorded_without_a_secret() {
    let (dir, conn, pg) = with_saved_connection("audit_last_test", false);
    assert_eq!(last_test(&conn, "prod"), (None, None, None), "never tested");
    set_actor(&conn, "'tester'");
    let result: String = value_of(&conn, "SELECT cloud_sync_test('prod')");
    let (at, by, recorded) = last_test(&conn, "prod");
    assert!(at.is_some());
    assert_eq!(by.as_deref(), Some("tester"));
    assert_eq!(recorded.as_deref(), Some(result.as_str()));
    let recorded: Value = serde_json::from_str(&recorded.unwrap()).unwrap();
    assert_eq!(
        (&recorded["ok"], &recorded["verified"]),
        (&json!(true), &json!(true))
    );

    // A failed test: the error is still raised, and recorded as {"ok": false, "error"}.
    let port = common::closed_port();
    save(&conn, "dead", &pg.closed_port_url(port));
    set_actor(&conn, "NULL");
    let message = error_of(&conn, "SELECT cloud_sync_test('dead')");
    let (at, by, recorded) = last_test(&conn, "dead");
    assert!(at.is_some());
    assert_eq!(by, None, "no actor: no one named");
    let recorded = recorded.unwrap();
    pg.assert_no_password(&recorded, "last_test");
    let recorded: Value = serde_json::from_str(&recorded).unwrap();
    assert_eq!(
        recorded,
        json!({"ok": false, "error": message.trim_start_matches("cloud_sync_test: ")})
    );
    assert!(message.contains("connection refused"), "{message}");

    // A connection string is tested, not recorded anywhere.
    let before: Vec<Option<String>> = column_of(
        &conn,
        "SELECT last_test FROM cloud_sync_connections ORDER BY id",
    );
    let direct: Value = json_of(
        &conn,
        &format!("SELECT cloud_sync_test({})", sql_str(&pg.verified_url())),
    );
    assert_eq!(direct["ok"], true);
    let after: Vec<Option<String>> = column_of(
        &conn,
        "SELECT last_test FROM cloud_sync_connections ORDER BY id",
    );
    assert_eq!(before, after);

    // Read-only: the test works and records nothing.
    let prod_before = last_test(&conn, "prod");
    let read_only = open_with(&dir.db(), OpenFlags::SQLITE_OPEN_READ_ONLY);
    set_actor(&read_only, "'reader'");
    let result = json_of(&read_only, "SELECT cloud_sync_test('prod')");
    assert_eq!(result["ok"], true);
    assert!(error_of(&read_only, "SELECT cloud_sync_test('dead')").contains("refused"));
    assert_eq!(last_test(&conn, "prod"), prod_before);
    pg.assert_no_password(&all_stored_text(&conn), "cloud_sync's tables");
}

/// Polls `done` for up to 30 seconds; `what` names what is awaited.
fn wait_for<T>(what: &str, mut done: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = done() {
            return value;
        }
        assert!(Instant::now() < deadline, "still waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_schedule_records_its_creator_and_its_jobs_carry_them() {
    let (_dir, conn, _pg, _port) = with_dead_server("audit_schedule");
    let schedule = |name: &str, options: &Value| -> Value {
        json_of(
            &conn,
            &format!(
                "SELECT cloud_sync_schedule({}, {})",
                sql_str(name),
                quoted(options)
            ),
        )
    };
    let pull = json!({"connection": "dead", "kind": "import", "every_s": 3600,
                      "strategy": "skip", "tables": ["items"]});
    let created_by = |name: &str| -> Option<String> {
        value_of(
            &conn,
            &format!(
                "SELECT created_by FROM cloud_sync_schedules WHERE name = {}",
                sql_str(name)
            ),
        )
    };

    // The option alone, then the actor of whoever replaces it.
    let mut with_option = pull.clone();
    with_option["requested_by"] = json!("ops-team");
    let saved = schedule("pull", &with_option);
    assert_eq!(saved["created_by"], "ops-team");
    assert_eq!(
        saved["job_options"],
        json!({"strategy": "skip", "tables": ["items"]})
    );
    assert_eq!(created_by("pull").as_deref(), Some("ops-team"));
    set_actor(&conn, "'carol'");
    let message = error_of(
        &conn,
        &format!(
            "SELECT cloud_sync_schedule('pull', {})",
            quoted(&with_option)
        ),
    );
    assert!(
        message.starts_with(
            "cloud_sync_schedule: option requested_by names 'ops-team', but \
                             this connection acts as 'carol'"
        ),
        "{message}"
    );
    assert_eq!(
        created_by("pull").as_deref(),
        Some("ops-team"),
        "a refusal changes nothing"
    );
    schedule("pull", &pull);
    assert_eq!(created_by("pull").as_deref(), Some("carol"));

    // The worker queues its job, requested by the creator, and the log says which schedule.
    set_actor(&conn, "NULL");
    let started = json_of(
        &conn,
        r#"SELECT cloud_sync_worker_start('{"poll_interval_ms": 100}')"#,
    );
    assert_eq!(started["running"], true, "{started}");
    let id = wait_for("the schedule's job", || {
        value_of::<Option<i64>>(&conn, "SELECT last_job_id FROM cloud_sync_schedules")
    });
    json_of(&conn, "SELECT cloud_sync_worker_stop()");
    assert_eq!(requested_by(&conn, id).as_deref(), Some("carol"));
    let log = log_messages(&conn, id);
    assert_eq!(
        log[..2],
        ["queued, requested by carol", "queued by schedule 'pull'"],
        "{log:?}"
    );
}

/// cloud_sync's tables as version `version` left them, built from version 3's schema file
/// without what later versions added, with a connection, a job and (from version 3) a schedule.
fn database_of_version(version: i64) -> (common::tempdir::Dir, std::path::PathBuf) {
    let (dir, path) = temp_db(&format!("audit_v{version}"));
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(include_str!("fixtures/schema_v3.sql"))
        .unwrap();
    if version < 3 {
        conn.execute_batch(
            "DROP VIEW cloud_sync_schedules; DROP TABLE cloud_sync_schedule_entries;",
        )
        .unwrap();
    }
    if version < 2 {
        conn.execute_batch(
            "DROP VIEW cloud_sync_tracked; DROP TABLE cloud_sync_tracked_tables;
             DROP TABLE cloud_sync_changes; DROP TABLE cloud_sync_watermarks;",
        )
        .unwrap();
    }
    conn.execute_batch(&format!(
        "INSERT INTO cloud_sync_meta VALUES ('schema_version', '{version}');
         INSERT INTO cloud_sync_connections (name, connection_string_encrypted, display)
         VALUES ('old', 'not-a-ciphertext', 'postgresql://u:***@h/d');
         INSERT INTO cloud_sync_jobs (connection_id, connection_name, kind, status)
         VALUES (1, 'old', 'export', 'failed');"
    ))
    .unwrap();
    if version == 3 {
        conn.execute_batch(
            "INSERT INTO cloud_sync_schedule_entries (name, connection_name, kind, options,
               every_s, next_run_at)
             VALUES ('nightly', 'old', 'import', '{\"strategy\":\"skip\"}', 86400,
                     '2999-01-01T00:00:00.000Z');",
        )
        .unwrap();
    }
    (dir, path)
}

/// Every column of cloud_sync's tables and views, as `table.column`, sorted.
fn shape(conn: &Connection) -> Vec<String> {
    column_of(
        conn,
        "SELECT m.name || '.' || c.name FROM sqlite_schema m, pragma_table_info(m.name) c
         WHERE m.name LIKE 'cloud_sync%' AND m.type IN ('table', 'view') ORDER BY 1",
    )
}

#[test]
fn databases_of_versions_1_to_3_upgrade_on_load_and_read_only_ones_stay_readable() {
    let (_fresh_dir, fresh) = open_temp("audit_fresh");
    let expected = shape(&fresh);
    for needed in [
        "cloud_sync_jobs.requested_by",
        "cloud_sync_connections.created_by",
        "cloud_sync_connections.last_test",
        "cloud_sync_connection_events.actor",
        "cloud_sync_schedule_entries.created_by",
        "cloud_sync_schedules.created_by",
    ] {
        assert!(
            expected.iter().any(|c| c == needed),
            "{needed}: {expected:?}"
        );
    }

    // Version 3 opened read-only first: left as it is, its jobs still shown and reported.
    let (_dir, path) = database_of_version(3);
    let read_only = open_with(&path, OpenFlags::SQLITE_OPEN_READ_ONLY);
    let shown: (i64, Option<String>) = common::local::row_of(
        &read_only,
        "SELECT id, requested_by FROM cloud_sync_jobs_vtab",
    );
    assert_eq!(shown, (1, None));
    let report: Value = json_of(&read_only, "SELECT cloud_sync_report(1)");
    assert_eq!(report["job"]["requested_by"], Value::Null);
    let csv: String = value_of(&read_only, "SELECT cloud_sync_report(1, 'csv')");
    assert!(csv.ends_with(",requested_by"), "{csv}");
    assert_eq!(
        int_of(&read_only, "SELECT cloud_sync_debug() ->> 'schema_version'"),
        3
    );
    drop(read_only);

    for version in [1, 2, 3] {
        let (_dir, path) = database_of_version(version);
        let conn = open(&path);
        let recorded: String = value_of(
            &conn,
            "SELECT value FROM cloud_sync_meta WHERE key = 'schema_version'",
        );
        assert_eq!(recorded, "4", "version {version}");
        assert_eq!(shape(&conn), expected, "version {version}");
        // What was there stays, and who did it is unknown: NULL, never guessed.
        let old: (String, Option<String>, Option<String>) = common::local::row_of(
            &conn,
            "SELECT name, created_by, last_test FROM cloud_sync_connections",
        );
        assert_eq!(old, ("old".into(), None, None));
        let job: (String, Option<String>) = common::local::row_of(
            &conn,
            "SELECT status, requested_by FROM cloud_sync_jobs_vtab",
        );
        assert_eq!(job, ("failed".into(), None));
        if version == 3 {
            let schedule: (String, Option<String>) =
                common::local::row_of(&conn, "SELECT name, created_by FROM cloud_sync_schedules");
            assert_eq!(schedule, ("nightly".into(), None));
        }
        // The upgraded database records who does what from now on.
        set_actor(&conn, "'upgrader'");
        save_dead(&conn, "new");
        assert_eq!(
            events(&conn),
            [("new".into(), "created".into(), Some("upgrader".into()))]
        );
        int_of(&conn, "SELECT cloud_sync_delete('old')");
        let retried = json_of(&conn, "SELECT cloud_sync_retry(1)");
        assert_eq!(retried["status"], "queued");
        assert!(log_messages(&conn, 1).contains(&"retry requested by upgrader".to_string()));
        // Loading again changes nothing more.
        drop(conn);
        assert_eq!(shape(&open(&path)), expected);
    }
}
