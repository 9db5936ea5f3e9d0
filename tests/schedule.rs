//! Schedules (cloud_sync_schedule, cloud_sync_unschedule, cloud_sync_schedules) with the built
//! extension loaded into a rusqlite host, run by the real background worker against the real
//! PostgreSQL: what a schedule accepts and refuses, that a run with nothing to send connects to
//! nothing and queues nothing, that a change goes out by itself with only the changed rows, the
//! debounce of on_change, a due run skipped while the last job waits for its retry, and a
//! scheduled import. Each test works in its own remote schema, since exports lock per schema.

mod common;

use std::time::{Duration, Instant};

use common::counting_proxy::CountingProxy;
use common::jobs::{
    dry_run, exported, exported_on, job_count, job_row, log_messages, quoted, run_job,
};
use common::local::{
    column_names, error_of, int_of, json_of, save, save_dead, value_of, with_fresh_schema,
};
use common::remote::{admin, as_test_user, remote_rows};
use common::summary::{assert_shipped, counts, incremental};
use common::{open, open_temp, sql_str, Pg};
use rusqlite::Connection;
use serde_json::{json, Value};

/// How long a test waits for the worker to do what a schedule asks.
const WAIT: Duration = Duration::from_secs(30);

/// `cloud_sync_schedule(name, options)`, parsed.
fn schedule(conn: &Connection, name: &str, options: &Value) -> Value {
    json_of(
        conn,
        &format!(
            "SELECT cloud_sync_schedule({}, {})",
            sql_str(name),
            quoted(options)
        ),
    )
}

/// The error of `cloud_sync_schedule(name, options)`, which must fail.
fn schedule_error(conn: &Connection, name: &str, options: &Value) -> String {
    error_of(
        conn,
        &format!(
            "SELECT cloud_sync_schedule({}, {})",
            sql_str(name),
            quoted(options)
        ),
    )
}

/// Every row of `cloud_sync_schedules`, by name, each as a JSON object of its columns.
fn schedules(conn: &Connection) -> Vec<Value> {
    let columns = column_names(conn, "cloud_sync_schedules");
    let pairs: Vec<String> = columns.iter().map(|c| format!("'{c}', {c}")).collect();
    common::local::column_of::<String>(
        conn,
        &format!(
            "SELECT json_object({}) FROM cloud_sync_schedules ORDER BY name",
            pairs.join(", ")
        ),
    )
    .iter()
    .map(|text| serde_json::from_str(text).unwrap())
    .collect()
}

/// The row of `cloud_sync_schedules` for the schedule `name`.
fn schedule_row(conn: &Connection, name: &str) -> Value {
    schedules(conn)
        .into_iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no schedule {name}"))
}

/// Starts the worker of `conn`'s database, polling every 100 ms.
fn start_worker(conn: &Connection) {
    let started = json_of(
        conn,
        r#"SELECT cloud_sync_worker_start('{"poll_interval_ms": 100}')"#,
    );
    assert_eq!(started["running"], true, "{started}");
}

fn stop_worker(conn: &Connection) {
    let stopped = json_of(conn, "SELECT cloud_sync_worker_stop()");
    assert_eq!(stopped["stopped"], true, "{stopped}");
}

/// Polls `done` until it gives a value, within `WAIT`; `what` names what is awaited.
fn wait_for<T>(what: &str, mut done: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = done() {
            return value;
        }
        assert!(Instant::now() < deadline, "still waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the schedule `name`'s row satisfies `done`; returns it.
fn wait_for_row(conn: &Connection, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait_for(&format!("schedule {name}"), || {
        Some(schedule_row(conn, name)).filter(|row| done(row))
    })
}

/// The (id, v) rows of the remote `schema.items`.
fn remote_items(pg: &Pg, schema: &str) -> Vec<(i64, String)> {
    remote_rows(
        pg,
        &format!("SELECT id, v FROM {schema}.items ORDER BY id"),
        |r| (r.get(0), r.get(1)),
    )
}

fn local_items(conn: &Connection) -> Vec<(i64, String)> {
    common::local::rows_of(conn, "SELECT id, v FROM items ORDER BY id")
}

/// Local `items` (three rows), tracked, and exported in full (a dry run, then the export that
/// confirms it) to `connection` in `schema`.
fn tracked_and_exported(conn: &Connection, connection: &str, schema: &str) {
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
         INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c');
         SELECT cloud_sync_track('items');",
    )
    .unwrap();
    exported_on(
        conn,
        connection,
        &json!({"schema": schema, "tables": ["items"]}),
    );
}

/// A fresh remote `schema` and a local database whose `items` were tracked and exported there
/// in full through the saved connection `prod`; the id of the last job so far.
fn ready_to_schedule(
    test: &str,
    schema: &str,
) -> (common::tempdir::Dir, Connection, Pg, String, i64) {
    let (dir, conn, pg, schema) = with_fresh_schema(test, schema);
    tracked_and_exported(&conn, "prod", &schema);
    let jobs = last_job_id(&conn);
    (dir, conn, pg, schema, jobs)
}

/// The ids of the jobs stored after job `after`.
fn jobs_after(conn: &Connection, after: i64) -> Vec<i64> {
    common::local::column_of(
        conn,
        &format!("SELECT id FROM cloud_sync_jobs WHERE id > {after} ORDER BY id"),
    )
}

fn last_job_id(conn: &Connection) -> i64 {
    int_of(conn, "SELECT coalesce(max(id), 0) FROM cloud_sync_jobs")
}

#[test]
fn schedules_are_created_replaced_listed_and_removed() {
    let (_dir, conn) = open_temp("schedule_crud");
    conn.execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)")
        .unwrap();
    save_dead(&conn, "prod");
    assert_eq!(
        column_names(&conn, "cloud_sync_schedules"),
        [
            "name",
            "connection",
            "kind",
            "every_s",
            "on_change",
            "debounce_ms",
            "options",
            "created_at",
            "updated_at",
            "last_run_at",
            "last_outcome",
            "last_error",
            "last_job_id",
            "next_run_at",
            "runs",
            "skipped_runs",
            "last_skipped_at",
            "created_by"
        ]
    );
    assert_eq!(schedules(&conn), Vec::<Value>::new());

    let options = json!({"connection": "prod", "kind": "import", "every_s": "3600",
                         "strategy": "merge", "tables": ["items"]});
    let created = schedule(&conn, "nightly", &options);
    assert_eq!(
        (&created["replaced"], &created["kind"], &created["every_s"]),
        (&json!(false), &json!("import"), &json!(3600)),
        "{created}"
    );
    assert_eq!(
        created["job_options"],
        json!({"strategy": "merge", "tables": ["items"]})
    );
    let row = schedule_row(&conn, "nightly");
    assert_eq!(
        (&row["connection"], &row["on_change"], &row["debounce_ms"]),
        (&json!("prod"), &json!(0), &Value::Null),
        "{row}"
    );
    for column in ["last_run_at", "last_outcome", "last_job_id", "last_error"] {
        assert_eq!(row[column], Value::Null, "{column}: {row}");
    }
    assert_eq!((&row["runs"], &row["skipped_runs"]), (&json!(0), &json!(0)));
    assert_eq!(row["next_run_at"], created["next_run_at"], "due at once");
    assert_eq!(row["created_at"], row["updated_at"]);

    // Replaced: a new definition under the same name, created_at kept.
    std::thread::sleep(Duration::from_millis(5));
    let replaced = schedule(
        &conn,
        "nightly",
        &json!({"connection": "prod", "kind": "import", "every_s": 60, "strategy": "skip"}),
    );
    assert_eq!(replaced["replaced"], true, "{replaced}");
    let after = schedule_row(&conn, "nightly");
    assert_eq!(after["every_s"], 60);
    assert_eq!(after["options"], r#"{"strategy":"skip"}"#);
    assert_eq!(after["created_at"], row["created_at"]);
    assert!(
        after["updated_at"].as_str() > row["updated_at"].as_str(),
        "{after}"
    );

    // Bad options: a clear error, and nothing changes, not even the schedule they would replace.
    let before = schedules(&conn);
    for (name, options, expected) in [
        (
            "nightly",
            json!({"connection": "prod", "kind": "import", "every_s": 5}),
            "a scheduled import names its strategy",
        ),
        (
            "nightly",
            json!({"connection": "prod", "kind": "import", "every_s": 5, "strategy": "replace"}),
            "unknown strategy \"replace\"",
        ),
        (
            "nightly",
            json!({"connection": "prod", "kind": "import", "every_s": 5, "strategy": "skip",
                   "confirm": 1}),
            "unknown option \"confirm\"",
        ),
        (
            "nightly",
            json!({"connection": "prod", "kind": "import", "every_s": 5, "strategy": "skip",
                   "tables": ["nope"]}),
            "unknown table \"nope\"",
        ),
        (
            "nightly",
            json!({"connection": "nope", "kind": "import", "every_s": 5, "strategy": "skip"}),
            "unknown connection 'nope': saved connections: prod",
        ),
        (
            "nightly",
            json!({"connection": "prod", "kind": "export", "every_s": 0}),
            "every_s must be an integer from 1 to 31536000 (seconds between runs), not 0",
        ),
        (
            "nightly",
            json!({"connection": "prod", "kind": "export"}),
            "a schedule needs every_s",
        ),
        (
            "nightly",
            json!({"connection": "prod", "kind": "export", "every_s": 5, "mode": "full"}),
            "a scheduled export is always incremental",
        ),
        (
            "bad name!",
            json!({"connection": "prod", "kind": "import", "every_s": 5, "strategy": "skip"}),
            "a schedule name is 1 to 64 letters",
        ),
    ] {
        let message = schedule_error(&conn, name, &options);
        assert!(
            message.starts_with("cloud_sync_schedule: ") && message.contains(expected),
            "{options}: {message}"
        );
        assert_eq!(schedules(&conn), before, "{options} changed the schedules");
    }
    let duplicate = error_of(
        &conn,
        r#"SELECT cloud_sync_schedule('nightly', '{"connection": "prod", "connection": "x"}')"#,
    );
    assert!(
        duplicate.contains("the key \"connection\" is given twice"),
        "{duplicate}"
    );

    // Removed; removing it again names the schedules there are.
    schedule(
        &conn,
        "hourly",
        &json!({"connection": "prod", "kind": "import", "every_s": 3600, "strategy": "skip"}),
    );
    let removed = json_of(&conn, "SELECT cloud_sync_unschedule('nightly')");
    assert_eq!(removed, json!({"name": "nightly", "removed": true}));
    let names: Vec<Value> = schedules(&conn).iter().map(|s| s["name"].clone()).collect();
    assert_eq!(names, [json!("hourly")]);
    assert_eq!(
        error_of(&conn, "SELECT cloud_sync_unschedule('nightly')"),
        "cloud_sync_unschedule: unknown schedule 'nightly': schedules: hourly"
    );
    assert_eq!(job_count(&conn), 0, "creating a schedule queues no job");
}

#[test]
fn a_scheduled_export_is_refused_until_its_tables_had_a_confirmed_full_export() {
    let (_dir, conn, pg, schema) = with_fresh_schema("schedule_refused", "sched_refused");
    save(&conn, "other", &pg.verified_url());
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO items VALUES (1, 'a');",
    )
    .unwrap();
    let options = json!({"connection": "prod", "kind": "export", "every_s": 5,
                         "schema": schema, "tables": ["items"]});
    let refused = |expected: &str| {
        let message = schedule_error(&conn, "live", &options);
        assert!(message.contains(expected), "{message}");
        assert_eq!(schedules(&conn), Vec::<Value>::new(), "{message}");
    };

    refused(
        "a scheduled export is incremental, and table items is not tracked: track it (SELECT \
         cloud_sync_track('items')), then export it once in full to 'prod'",
    );
    conn.execute_batch("SELECT cloud_sync_track('items')")
        .unwrap();
    let never = "a scheduled export is incremental, and table items has had no confirmed full \
                 export to 'prod' (remote schema sched_refused) since it was tracked: export it \
                 once in full there";
    refused(never);
    // A dry run is no export; an export to another connection is not to this one.
    dry_run(&conn, &json!({"schema": schema}));
    refused(never);
    exported_on(&conn, "other", &json!({"schema": schema}));
    refused(never);

    exported(&conn, &json!({"schema": schema}));
    let created = schedule(&conn, "live", &options);
    assert_eq!(created["tables"], json!(["items"]), "{created}");
    assert_eq!(created["pending_changes"], 0, "{created}");
    assert_eq!(
        created["job_options"],
        json!({"mode": "incremental", "schema": schema, "tables": ["items"]})
    );
    // The export's own checks refuse too, before the schedule's.
    let message = schedule_error(
        &conn,
        "live",
        &json!({"connection": "prod", "kind": "export", "every_s": 5, "tables": ["nope"]}),
    );
    assert!(message.contains("nope"), "{message}");
    let message = schedule_error(
        &conn,
        "live",
        &json!({"connection": "prod", "kind": "export", "every_s": 5, "confirm": 2}),
    );
    assert!(message.contains("confirms no dry run"), "{message}");
}

#[test]
fn with_nothing_to_send_a_schedule_connects_nowhere_and_a_change_goes_out_alone() {
    let (_dir, conn, pg, schema) = with_fresh_schema("schedule_quiet", "sched_quiet");
    let proxy = CountingProxy::start(&pg);
    save(&conn, "proxied", &proxy.url(&pg));
    tracked_and_exported(&conn, "proxied", &schema);
    let (connections, jobs) = (proxy.opened(), last_job_id(&conn));
    assert_eq!(connections, 2, "the dry run and the export");

    schedule(
        &conn,
        "live",
        &json!({"connection": "proxied", "kind": "export", "every_s": 1, "schema": schema}),
    );
    start_worker(&conn);
    let row = wait_for_row(&conn, "live", |r| r["runs"].as_i64() >= Some(3));
    assert_eq!(row["last_outcome"], "nothing to send", "{row}");
    assert_eq!(
        (&row["last_job_id"], &row["last_error"]),
        (&Value::Null, &Value::Null)
    );
    assert!(row["next_run_at"].as_str() > row["last_run_at"].as_str());
    assert_eq!(proxy.opened(), connections, "a run connected");
    assert_eq!(
        jobs_after(&conn, jobs),
        Vec::<i64>::new(),
        "a run queued a job"
    );

    // One row changes: the worker ships it, and only it, by itself.
    conn.execute("UPDATE items SET v = 'changed' WHERE id = 2", [])
        .unwrap();
    wait_for("the change on the remote", || {
        (remote_items(&pg, &schema) == local_items(&conn)).then_some(())
    });
    let row = wait_for_row(&conn, "live", |r| r["last_outcome"] == "succeeded");
    let queued = jobs_after(&conn, jobs);
    assert_eq!(queued.len(), 1, "{queued:?}");
    let job = job_row(&conn, queued[0]);
    assert_eq!(row["last_job_id"], job["id"]);
    assert_eq!(
        (&job["kind"], &job["dry_run"], &job["status"]),
        (&json!("export"), &json!(0), &json!("succeeded")),
        "{job}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(job["options"].as_str().unwrap()).unwrap(),
        json!({"mode": "incremental", "schema": schema})
    );
    assert_shipped(
        &job,
        "items",
        incremental(1, counts!(source_rows: 1, updates: 1)),
    );
    let log = log_messages(&conn, queued[0]);
    assert_eq!(log[0], "queued by schedule 'live'", "{log:?}");
    assert_eq!(log.last().unwrap(), "job succeeded", "{log:?}");
    assert_eq!(proxy.opened(), connections + 1, "one job, one connection");

    // And then nothing again.
    let runs = row["runs"].as_i64().unwrap();
    let row = wait_for_row(&conn, "live", |r| r["runs"].as_i64() >= Some(runs + 2));
    stop_worker(&conn);
    assert_eq!(row["last_outcome"], "nothing to send", "{row}");
    assert_eq!(row["last_job_id"], job["id"], "the last job's id stays");
    assert_eq!(jobs_after(&conn, jobs), queued);
    assert_eq!(proxy.opened(), connections + 1);
}

/// Unix milliseconds of an ISO-8601 timestamp, as SQLite reads it.
fn unix_ms(conn: &Connection, iso: &str) -> i64 {
    int_of(
        conn,
        &format!(
            "SELECT CAST(round((julianday({}) - 2440587.5) * 86400000.0) AS INTEGER)",
            sql_str(iso)
        ),
    )
}

#[test]
fn on_change_waits_until_the_changes_have_been_quiet_for_the_debounce() {
    const DEBOUNCE_MS: i64 = 1500;
    let (_dir, conn, pg, schema, jobs) = ready_to_schedule("schedule_debounce", "sched_debounce");
    schedule(
        &conn,
        "on_change",
        &json!({"connection": "prod", "kind": "export", "on_change": true,
                "debounce_ms": DEBOUNCE_MS, "schema": schema}),
    );
    start_worker(&conn);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        schedule_row(&conn, "on_change")["runs"],
        0,
        "no change, no run"
    );

    // A burst: a change every 200 ms for 3 s, never quiet for the debounce.
    let mut written = Vec::new();
    for i in 0..15 {
        conn.execute("INSERT INTO items VALUES (?1, 'burst')", [100 + i as i64])
            .unwrap();
        written.push(value_of::<String>(
            &conn,
            "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        ));
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_for("the burst on the remote", || {
        (remote_items(&pg, &schema) == local_items(&conn)).then_some(())
    });
    stop_worker(&conn);

    // Every job the schedule queued started after a quiet time of the debounce at least.
    let queued = jobs_after(&conn, jobs);
    assert!(!queued.is_empty());
    let written: Vec<i64> = written.iter().map(|w| unix_ms(&conn, w)).collect();
    for id in &queued {
        let job = job_row(&conn, *id);
        let created = unix_ms(&conn, job["created_at"].as_str().unwrap());
        let last_write = written.iter().filter(|w| **w <= created).max().unwrap();
        assert!(
            created - last_write >= DEBOUNCE_MS - 50,
            "job {id} was queued {} ms after a change: {job}",
            created - last_write
        );
        assert_eq!(job["status"], "succeeded", "{job}");
    }
    let changed: i64 = queued
        .iter()
        .map(|id| common::summary::counts_of(&job_row(&conn, *id), "items").inserts)
        .sum();
    assert_eq!(changed, 15, "each burst row went out once");
}

/// A session holding the lock an export to `schema` takes (see sql::TAKE_LOCK), until it
/// ends its transaction or is dropped.
fn holding_the_sync_lock(pg: &Pg, schema: &str) -> postgres::Client {
    let mut holder = admin(pg);
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('cloud_sync:' || \
             current_database() || '.' || '{schema}', 0));"
        ))
        .unwrap();
    holder
}

#[test]
fn a_due_run_is_skipped_while_the_last_job_waits_for_its_retry() {
    let (_dir, conn, pg, schema, jobs) = ready_to_schedule("schedule_skip", "sched_skip");
    schedule(
        &conn,
        "live",
        &json!({"connection": "prod", "kind": "export", "every_s": 1, "schema": schema,
                "retry_base_s": 3600, "retry_cap_s": 3600, "max_attempts": 10}),
    );
    let mut holder = holding_the_sync_lock(&pg, &schema);
    conn.execute("UPDATE items SET v = 'first' WHERE id = 1", [])
        .unwrap();
    start_worker(&conn);

    // Its job meets the lock, a transient failure: queued again, for a retry much later.
    let id = wait_for("the scheduled job's first attempt", || {
        let queued = jobs_after(&conn, jobs);
        let id = *queued.first()?;
        let job = job_row(&conn, id);
        (job["attempts"].as_i64() >= Some(1) && job["status"] == "queued").then_some(id)
    });
    let job = job_row(&conn, id);
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("another sync holds the lock"),
        "{job}"
    );
    // Due every second meanwhile, with a new change too: skipped, not stacked.
    conn.execute("UPDATE items SET v = 'second' WHERE id = 2", [])
        .unwrap();
    let row = wait_for_row(&conn, "live", |r| r["skipped_runs"].as_i64() >= Some(3));
    assert_eq!(jobs_after(&conn, jobs), [id], "a second job was queued");
    assert_eq!(
        (&row["last_job_id"], &row["last_outcome"], &row["runs"]),
        (&json!(id), &json!("queued"), &json!(1)),
        "{row}"
    );
    assert!(row["last_skipped_at"].as_str() > row["last_run_at"].as_str());

    // The lock goes and the retry runs (now, rather than an hour from now): both changes go.
    holder.batch_execute("ROLLBACK").unwrap();
    let retried = run_job(&conn, &id.to_string());
    assert_eq!(retried["status"], "succeeded", "{retried}");
    assert_eq!(remote_items(&pg, &schema), local_items(&conn));
    let row = wait_for_row(&conn, "live", |r| r["last_outcome"] == "nothing to send");
    stop_worker(&conn);
    assert_eq!(row["last_job_id"], id);
    assert_eq!(jobs_after(&conn, jobs), [id]);
}

#[test]
fn a_scheduled_import_is_a_real_import() {
    let (_dir, conn, pg, schema) = with_fresh_schema("schedule_import", "sched_import");
    as_test_user(
        &pg,
        &schema,
        "CREATE TABLE items (id bigint PRIMARY KEY, v text NOT NULL);
         INSERT INTO items VALUES (1, 'remote one'), (2, 'remote two');",
    );
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
         INSERT INTO items VALUES (1, 'local one');",
    )
    .unwrap();
    schedule(
        &conn,
        "pull",
        &json!({"connection": "prod", "kind": "import", "every_s": 3600,
                "strategy": "overwrite", "schema": schema, "tables": ["items"]}),
    );
    start_worker(&conn);
    let row = wait_for_row(&conn, "pull", |r| r["last_outcome"] == "succeeded");
    stop_worker(&conn);
    assert_eq!(
        local_items(&conn),
        [(1, "remote one".to_string()), (2, "remote two".to_string())]
    );
    let job = job_row(&conn, row["last_job_id"].as_i64().unwrap());
    assert_eq!(
        (&job["kind"], &job["dry_run"]),
        (&json!("import"), &json!(0)),
        "{job}"
    );
    assert_eq!(
        common::summary::counts_of(&job, "items"),
        counts!(source_rows: 2, inserts: 1, updates: 1, remote_only: Some(0))
    );
    assert_eq!(job_count(&conn), 1, "due again only an hour later");
    assert_eq!(row["runs"], 1);
}

#[test]
fn a_version_2_database_gets_the_schedules_on_load() {
    let (dir, conn) = open_temp("schedule_upgrade");
    conn.execute_batch(
        "DROP VIEW cloud_sync_schedules; DROP TABLE cloud_sync_schedule_entries;
         UPDATE cloud_sync_meta SET value = '2' WHERE key = 'schema_version';",
    )
    .unwrap();
    drop(conn);
    let conn = open(&dir.db());
    let version: String = value_of(
        &conn,
        "SELECT value FROM cloud_sync_meta WHERE key = 'schema_version'",
    );
    assert_eq!(version, "4");
    save_dead(&conn, "prod");
    conn.execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY)")
        .unwrap();
    schedule(
        &conn,
        "pull",
        &json!({"connection": "prod", "kind": "import", "every_s": 60, "strategy": "skip"}),
    );
    assert_eq!(schedules(&conn).len(), 1);
}
