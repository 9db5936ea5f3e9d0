//! Stalled links: a proxy between the extension and the real PostgreSQL stops forwarding
//! mid-COPY (an export) or mid-stream (an import). The attempt fails at its read timeout and
//! the retry succeeds once the proxy forwards again; a cancel during the stall, from this
//! process or another, ends the job at once with nothing written. Times are checked only as
//! generous upper bounds.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::jobs::{attempt_outcomes, job_status, queue_confirmed_export, quoted, run_job};
use common::local::{int_of, json_of, save, value_of};
use common::proxy::{Direction, Proxy};
use common::remote::{as_test_user, fresh_schema, remote_value};
use common::{open, open_temp, pg, shell, Pg, KEY};
use rusqlite::Connection;
use serde_json::{json, Value};

/// Rows of about 200 bytes: a few MB, so that the proxy stalls well inside the COPY.
const ROWS: i64 = 50_000;
/// How far into the transfer the proxy stalls.
const STALL_AFTER: u64 = 1_000_000;
/// The read timeout of the jobs that should fail at it.
const READ_TIMEOUT_S: u64 = 2;
/// Slack for everything around a deadline (connecting, planning, a slow machine).
const SLACK: Duration = Duration::from_secs(5);
/// How soon a cancel must end a stalled job: "within a second", with slack.
const CANCEL_BOUND: Duration = Duration::from_secs(3);

/// A proxy to the test server, and the connection `prod` through it (TLS verified, so the
/// cancel request needs TLS too).
fn through_proxy(conn: &Connection, pg: &Pg) -> Proxy {
    let proxy = Proxy::start(pg.port);
    let query = format!("sslmode=verify-full&sslrootcert={}", pg.ca);
    save(conn, "prod", &pg.url("localhost", proxy.port, &query));
    proxy
}

/// Adds `ROWS` rows after the highest id to the local table `big`, creating it if needed.
fn fill_big(conn: &Connection) {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS big (id INTEGER PRIMARY KEY, v TEXT);
         WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {ROWS})
         INSERT INTO big SELECT x + (SELECT coalesce(max(id), 0) FROM big), printf('%.200c', 'v')
         FROM n;"
    ))
    .unwrap();
}

/// A remote table `big` of `ROWS` rows in `schema`, the test user's.
fn remote_big(pg: &Pg, schema: &str) {
    as_test_user(
        pg,
        schema,
        &format!(
            "CREATE TABLE big (id bigint PRIMARY KEY, v text);
             INSERT INTO big SELECT g, repeat('v', 200) FROM generate_series(1, {ROWS}) g;"
        ),
    );
}

fn remote_count(pg: &Pg, schema: &str) -> i64 {
    remote_value(pg, &format!("SELECT count(*) FROM {schema}.big"))
}

/// Queues an import of `schema` into new local tables; its id.
fn queue_import(conn: &Connection, options: &Value) -> i64 {
    int_of(
        conn,
        &format!(
            "SELECT cloud_sync_import('prod', 0, 'skip', {})",
            quoted(options)
        ),
    )
}

/// Runs job `id`, which the proxy stalls; checks that the attempt failed at its read timeout
/// and was queued again, with a message that names the option and no password; returns it.
fn assert_fails_at_the_read_timeout(conn: &Connection, pg: &Pg, id: i64) -> String {
    let started = Instant::now();
    let outcome = run_job(conn, &id.to_string());
    let took = started.elapsed();
    assert_eq!(outcome["status"], "queued", "{outcome}");
    let error = outcome["error"].as_str().unwrap();
    assert!(
        error.starts_with("the remote link stalled:")
            && error.contains(&format!("read_timeout_s = {READ_TIMEOUT_S}")),
        "{error}"
    );
    pg.assert_no_password(error, "the stall's error");
    assert!(
        took < Duration::from_secs(READ_TIMEOUT_S) + SLACK,
        "the stalled attempt took {took:?}"
    );
    error.to_string()
}

/// Runs due jobs until job `id` has succeeded (an attempt may still meet the lock the
/// abandoned one held until the server saw it end); fails after a minute.
fn run_until_succeeded(conn: &Connection, id: i64) {
    let started = Instant::now();
    while job_status(conn, id) != "succeeded" {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{:?}",
            attempt_outcomes(conn, id)
        );
        json_of(conn, "SELECT cloud_sync_run_jobs()");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `run_until_succeeded` for a job whose first attempt stalled and failed.
fn retried_until_succeeded(conn: &Connection, id: i64) {
    run_until_succeeded(conn, id);
    let outcomes = attempt_outcomes(conn, id);
    assert_eq!(outcomes.first().map(String::as_str), Some("failed"));
    assert_eq!(outcomes.last().map(String::as_str), Some("succeeded"));
}

/// Options for a job the tests stall: retries come quickly.
fn stalled_options(schema: &str, read_timeout_s: u64) -> Value {
    json!({
        "schema": schema, "read_timeout_s": read_timeout_s, "statement_timeout_s": 10,
        "retry_base_s": 1, "retry_cap_s": 1, "max_attempts": 10,
    })
}

#[test]
fn an_export_stalled_mid_copy_fails_at_its_read_timeout_and_its_retry_succeeds() {
    let pg = pg();
    let schema = fresh_schema(&pg, "l_stall_export");
    let (_dir, conn) = open_temp("stall_export");
    let proxy = through_proxy(&conn, &pg);
    fill_big(&conn);
    let id = queue_confirmed_export(&conn, &stalled_options(&schema, READ_TIMEOUT_S));

    proxy.stall_after(Direction::ToServer, STALL_AFTER);
    let error = assert_fails_at_the_read_timeout(&conn, &pg, id);
    assert!(
        error.contains("The step that stalled: table big: COPY failed")
            && error.contains("does not take COPY FROM STDIN"),
        "the stall's error names the COPY that stalled: {error}"
    );
    assert!(
        !remote_value::<bool>(
            &pg,
            &format!("SELECT to_regclass('{schema}.big') IS NOT NULL")
        ),
        "the stalled attempt left its table behind"
    );

    proxy.resume();
    retried_until_succeeded(&conn, id);
    assert_eq!(remote_count(&pg, &schema), ROWS);
}

#[test]
fn an_import_stalled_mid_stream_fails_at_its_read_timeout_and_its_retry_succeeds() {
    let pg = pg();
    let schema = fresh_schema(&pg, "l_stall_import");
    remote_big(&pg, &schema);
    let (_dir, conn) = open_temp("stall_import");
    let proxy = through_proxy(&conn, &pg);
    let mut options = stalled_options(&schema, READ_TIMEOUT_S);
    options["create_tables"] = json!(true);
    let id = queue_import(&conn, &options);

    proxy.stall_after(Direction::ToClient, STALL_AFTER);
    assert_fails_at_the_read_timeout(&conn, &pg, id);
    assert_eq!(local_tables(&conn), 0, "the stalled import left a table");

    proxy.resume();
    retried_until_succeeded(&conn, id);
    assert_eq!(int_of(&conn, "SELECT count(*) FROM big"), ROWS);
}

/// How many of the application's tables the database has.
fn local_tables(conn: &Connection) -> i64 {
    int_of(
        conn,
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'big'",
    )
}

/// Runs job `id` on its own connection to `path`, on a thread; its outcome and when it ended.
fn run_in_background(path: &Path, id: i64) -> std::thread::JoinHandle<(Value, Instant)> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let runner = open(&path);
        let outcome = run_job(&runner, &id.to_string());
        (outcome, Instant::now())
    })
}

#[test]
fn a_cancel_from_another_process_ends_an_export_stalled_mid_copy_at_once() {
    let pg = pg();
    let schema = fresh_schema(&pg, "l_stall_cancel_export");
    let (dir, conn) = open_temp("stall_cancel_export");
    conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
    let proxy = through_proxy(&conn, &pg);
    conn.execute_batch("CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO big VALUES (1, 'a'), (2, 'b');")
        .unwrap();
    // The read timeout is far away: only the cancel can end the stalled attempt.
    let options = stalled_options(&schema, 600);
    common::jobs::exported(&conn, &options);
    fill_big(&conn);
    let id = queue_confirmed_export(&conn, &options);

    proxy.stall_after(Direction::ToServer, STALL_AFTER);
    let runner = run_in_background(&dir.db(), id);
    proxy.wait_until_holding(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));

    let cancel = shell(
        &dir.db(),
        &[("CLOUD_SYNC_ENCRYPTION_KEY", KEY)],
        &format!(".timeout 5000\nSELECT cloud_sync_cancel({id});"),
    );
    let asked = Instant::now();
    assert!(cancel.ok, "{}", cancel.stderr);
    assert!(
        cancel
            .stdout
            .contains("within a second: the process running it reads the request"),
        "{}",
        cancel.stdout
    );
    let (outcome, ended) = runner.join().unwrap();
    let took = ended.saturating_duration_since(asked);
    assert!(took < CANCEL_BOUND, "the cancel took {took:?}");
    assert_eq!(outcome["status"], "cancelled", "{outcome}");
    assert_eq!(attempt_outcomes(&conn, id), ["cancelled"]);
    assert_eq!(
        remote_count(&pg, &schema),
        2,
        "the cancelled export wrote rows"
    );

    // Rolled back remotely: once the proxy lets the server see the connection end, the schema's
    // lock is free and the job, queued again, exports everything.
    proxy.resume();
    json_of(&conn, &format!("SELECT cloud_sync_retry({id})"));
    run_until_succeeded(&conn, id);
    assert_eq!(remote_count(&pg, &schema), ROWS + 2);
}

#[test]
fn a_cancel_from_this_process_ends_an_import_stalled_mid_stream_at_once() {
    let pg = pg();
    let schema = fresh_schema(&pg, "l_stall_cancel_import");
    remote_big(&pg, &schema);
    let (dir, conn) = open_temp("stall_cancel_import");
    let proxy = through_proxy(&conn, &pg);
    let mut options = stalled_options(&schema, 600);
    options["create_tables"] = json!(true);
    let id = queue_import(&conn, &options);

    proxy.stall_after(Direction::ToClient, STALL_AFTER);
    let runner = run_in_background(&dir.db(), id);
    proxy.wait_until_holding(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));

    // The import holds the write lock: the request reaches it first, the row after it ends.
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let asked = Instant::now();
    let answer: String = value_of(&conn, &format!("SELECT cloud_sync_cancel({id})"));
    assert!(
        answer.contains("at once while it waits on the network"),
        "{answer}"
    );
    let (outcome, ended) = runner.join().unwrap();
    let took = ended.saturating_duration_since(asked);
    assert!(took < CANCEL_BOUND, "the cancel took {took:?}");
    assert_eq!(outcome["status"], "cancelled", "{outcome}");
    assert!(
        outcome["error"]
            .as_str()
            .unwrap()
            .starts_with("cancelled while the job waited on the remote"),
        "{outcome}"
    );
    assert_eq!(attempt_outcomes(&conn, id), ["cancelled"]);
    assert_eq!(local_tables(&conn), 0, "the cancelled import left a table");
}

/// The job's `statement_timeout_s` holds for its transaction, also behind pgbouncer in
/// transaction mode: a statement that waits past it fails the attempt, which is retried.
#[test]
fn a_statement_past_statement_timeout_s_fails_the_attempt_as_transient_behind_the_pooler() {
    let (_dir, conn, pg) = common::local::with_saved_connection("stall_statement", true);
    let schema = fresh_schema(&pg, "l_stall_statement");
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
        .unwrap();
    let options = json!({"schema": schema, "statement_timeout_s": 1, "max_attempts": 2});
    common::jobs::exported(&conn, &options);
    conn.execute_batch("INSERT INTO t VALUES (2);").unwrap();
    let id = queue_confirmed_export(&conn, &options);

    let locker = common::remote::locked(&pg, &format!("{schema}.t"));
    let started = Instant::now();
    let outcome = run_job(&conn, &id.to_string());
    let took = started.elapsed();
    drop(locker);
    assert_eq!(outcome["status"], "queued", "{outcome}");
    let error = outcome["error"].as_str().unwrap();
    assert!(
        error.contains("(SQLSTATE 57014)")
            && error.contains(
                "the server ended the step at the job's deadline (statement_timeout_s = 1)"
            ),
        "{error}"
    );
    assert!(took < Duration::from_secs(1) + SLACK, "took {took:?}");
    assert_eq!(
        remote_value::<i64>(&pg, &format!("SELECT count(*) FROM {schema}.t")),
        1
    );
}
