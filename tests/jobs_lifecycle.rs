//! Retries with backoff, permanent failures, cancel, retry, crash recovery and concurrent
//! runners, against the real PostgreSQL with the built extension in real hosts.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::jobs::{
    attempt_outcomes, job_row, job_status, queue_confirmed_export, queue_dry_run, run_job,
    warnings_of,
};
use common::local::{
    column_of, error_of, json_of, save, value_of, with_fresh_schema, with_saved_connection,
};
use common::remote::{fresh_schema, remote_table_exists};
use common::{closed_port, lib_path, open, open_temp, pg, KEY};
use rusqlite::Connection;
use serde_json::json;

/// Runs due jobs every `every` until job `id` has succeeded; fails after `limit`.
fn run_jobs_until_succeeded(conn: &Connection, id: i64, limit: Duration, every: Duration) {
    let started = Instant::now();
    while job_status(conn, id) != "succeeded" {
        assert!(started.elapsed() < limit, "{}", job_row(conn, id));
        json_of(conn, "SELECT cloud_sync_run_jobs()");
        std::thread::sleep(every);
    }
}

/// Seconds from now until an ISO timestamp written by cloud_sync.
fn seconds_until(conn: &Connection, at: &str) -> f64 {
    conn.query_row(
        "SELECT (julianday(?1) - julianday('now')) * 86400.0",
        [at],
        |r| r.get(0),
    )
    .unwrap()
}

/// Forwards every connection on `listener` to the test server: a server that "comes back".
fn forward_to_server(listener: TcpListener, server_port: u16) {
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let server = TcpStream::connect(("127.0.0.1", server_port)).unwrap();
            let pipe = |mut from: TcpStream, mut to: TcpStream| {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            };
            pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
            pipe(server, client);
        }
    });
}

#[test]
fn a_job_against_a_stopped_server_is_retried_with_growing_delays_until_it_is_back() {
    let pg = pg();
    let schema = fresh_schema(&pg, "l_retry");
    // A port where nothing listens yet: the server is "down".
    let port = closed_port();
    let (_dir, conn) = open_temp("retry");
    save(&conn, "prod", &pg.url("127.0.0.1", port, "sslmode=disable"));
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
        .unwrap();
    let id = queue_dry_run(
        &conn,
        &json!({"schema": schema, "retry_base_s": 1, "retry_cap_s": 2, "max_attempts": 5}),
    );

    // Attempts 1 and 2 find nothing listening; each is queued again within its ceiling
    // (1 s, then 2 s: base 1 s, factor 2, cap 2 s).
    for (attempt, ceiling) in [(1, 1.0), (2, 2.0)] {
        let started = Instant::now();
        let outcome = loop {
            let ran = json_of(&conn, "SELECT cloud_sync_run_jobs()");
            if ran["ran"] == 1 {
                break ran["jobs"][0].clone();
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the retry never came due"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(outcome["status"], "queued", "attempt {attempt}: {outcome}");
        assert!(
            outcome["error"]
                .as_str()
                .unwrap()
                .contains("connection refused"),
            "{outcome}"
        );
        let row = job_row(&conn, id);
        assert_eq!(row["attempts"], attempt);
        assert!(row["finished_at"].is_null());
        let wait = seconds_until(&conn, row["next_attempt_at"].as_str().unwrap());
        assert!(
            wait <= ceiling + 0.05,
            "attempt {attempt}: retry in {wait} s, ceiling {ceiling} s"
        );
        // Not due yet means not run.
        if wait > 0.2 {
            let ran = json_of(&conn, "SELECT cloud_sync_run_jobs()");
            assert_eq!(ran["ran"], 0, "{ran}");
        }
    }

    // The server is back.
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    forward_to_server(listener, pg.port);
    run_jobs_until_succeeded(
        &conn,
        id,
        Duration::from_secs(10),
        Duration::from_millis(50),
    );
    assert_eq!(job_row(&conn, id)["attempts"], 3);
    assert_eq!(
        attempt_outcomes(&conn, id),
        ["failed", "failed", "succeeded"]
    );
    let warnings = warnings_of(&conn, id);
    for attempt in [2, 3] {
        assert!(
            warnings
                .iter()
                .any(|m| m.starts_with(&format!("transient failure: attempt {attempt} of 5"))),
            "{warnings:?}"
        );
    }
}

#[test]
fn a_wrong_password_fails_at_once_after_one_attempt() {
    assert_wrong_password_fails_at_once("wrongpw", pg().port);
}

/// PgBouncer turns a wrong SCRAM password down with its own SQLSTATE and words, not 28P01.
#[test]
fn a_wrong_password_through_pgbouncer_fails_at_once_after_one_attempt() {
    assert_wrong_password_fails_at_once("wrongpw_bouncer", pg().bouncer_port);
}

fn assert_wrong_password_fails_at_once(name: &str, port: u16) {
    let pg = pg();
    let (_dir, conn) = open_temp(name);
    let url = format!(
        "postgresql://{}:not-it@localhost:{port}/{}?sslmode=require",
        pg.user, pg.db
    );
    save(&conn, "prod", &url);
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY);")
        .unwrap();
    let job = run_job(&conn, "cloud_sync_export('prod')");
    assert_eq!(job["status"], "failed", "{job}");
    let row = job_row(&conn, job["id"].as_i64().unwrap());
    assert_eq!(
        (&row["attempts"], &row["next_attempt_at"]),
        (&json!(1), &json!(null))
    );
    assert!(
        row["error"]
            .as_str()
            .unwrap()
            .contains("password authentication failed"),
        "{row}"
    );
    assert_eq!(
        attempt_outcomes(&conn, job["id"].as_i64().unwrap()),
        ["failed"]
    );
}

#[test]
fn cancel_a_queued_job_and_retry_a_cancelled_one() {
    let (_dir, conn, _pg, schema) = with_fresh_schema("cancelqueued", "l_cancelqueued");
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
        .unwrap();
    let id = queue_dry_run(&conn, &json!({"schema": schema}));
    let cancelled: String = value_of(&conn, &format!("SELECT cloud_sync_cancel({id})"));
    assert!(
        cancelled.contains("\"status\":\"cancelled\""),
        "{cancelled}"
    );
    let ran = json_of(&conn, "SELECT cloud_sync_run_jobs()");
    assert_eq!(ran["ran"], 0, "a cancelled job ran: {ran}");
    let again = error_of(&conn, &format!("SELECT cloud_sync_cancel({id})"));
    assert!(again.contains("already cancelled"), "{again}");

    let retried: String = value_of(&conn, &format!("SELECT cloud_sync_retry({id})"));
    assert!(retried.contains("\"status\":\"queued\""), "{retried}");
    let job = run_job(&conn, &id.to_string());
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(attempt_outcomes(&conn, id), ["succeeded"]);
    let refused = error_of(&conn, &format!("SELECT cloud_sync_retry({id})"));
    assert!(
        refused.contains("only a failed or cancelled job can be retried"),
        "{refused}"
    );
    let unknown = error_of(&conn, "SELECT cloud_sync_cancel(999999)");
    assert!(unknown.contains("unknown job 999999"), "{unknown}");
}

/// A local table big enough that exporting it takes a while.
fn big_table(conn: &Connection, rows: i64) {
    conn.execute_batch(&format!(
        "CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT);
         WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {rows})
         INSERT INTO big SELECT x, printf('%.200c', 'v') FROM n;"
    ))
    .unwrap();
}

#[test]
fn cancel_a_running_job_rolls_it_back_remotely_and_locally() {
    let (dir, conn, pg, schema) = with_fresh_schema("cancelrunning", "l_cancelrunning");
    conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
    big_table(&conn, 1_000_000);
    let id = queue_confirmed_export(&conn, &json!({"schema": schema}));

    // Another connection of the same process watches the live progress and cancels.
    let path = dir.db();
    let canceller = std::thread::spawn(move || {
        let watcher = open(&path);
        watcher.busy_timeout(Duration::from_secs(10)).unwrap();
        let started = Instant::now();
        loop {
            let done: Option<i64> = watcher
                .query_row("SELECT rows_done FROM cloud_sync_jobs_vtab WHERE id = ?1 AND status = 'running'", [id], |r| r.get(0))
                .unwrap_or(None);
            if done.is_some_and(|d| d > 0) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the job never showed progress"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        value_of::<String>(&watcher, &format!("SELECT cloud_sync_cancel({id})"))
    });
    let job = run_job(&conn, &id.to_string());
    let answer = canceller.join().unwrap();
    assert!(answer.contains("at its next safe point"), "{answer}");
    assert_eq!(job["status"], "cancelled", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("cancelled during table big"),
        "{job}"
    );
    assert_eq!(attempt_outcomes(&conn, id), ["cancelled"]);
    assert!(
        !remote_table_exists(&pg, &format!("{schema}.big")),
        "a cancelled export left its table behind"
    );
}

/// Runs SQL in a separate sqlite3 shell process with the extension loaded.
fn shell_process(db: &Path, sql: &str) -> std::process::Child {
    let mut child = Command::new("sqlite3")
        .arg(db)
        .env("CLOUD_SYNC_ENCRYPTION_KEY", KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let script = format!(".load {}\n.timeout 10000\n{sql}\n", lib_path().display());
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    child
}

#[test]
fn a_job_left_running_by_a_killed_process_is_recovered_and_run_again() {
    let (dir, conn, _pg, schema) = with_fresh_schema("killed", "l_killed");
    conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
    big_table(&conn, 1_000_000);
    let id = queue_dry_run(
        &conn,
        &json!({"schema": schema, "retry_base_s": 1, "retry_cap_s": 1}),
    );
    let mut runner = shell_process(&dir.db(), &format!("SELECT cloud_sync_run({id});"));
    let started = Instant::now();
    while job_status(&conn, id) != "running" {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{}",
            job_row(&conn, id)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    runner.kill().unwrap();
    runner.wait().unwrap();
    assert_eq!(
        job_status(&conn, id),
        "running",
        "the job should look running after the kill"
    );

    // The next runner finds it, records the lost attempt, and runs it again when due.
    run_jobs_until_succeeded(
        &conn,
        id,
        Duration::from_secs(30),
        Duration::from_millis(100),
    );
    assert_eq!(attempt_outcomes(&conn, id), ["failed", "succeeded"]);
    let reason: String = value_of(
        &conn,
        &format!("SELECT error FROM cloud_sync_job_attempts WHERE job_id = {id} AND attempt = 1"),
    );
    assert!(reason.contains("stopped before it finished"), "{reason}");
}

#[test]
fn two_processes_with_workers_on_one_file_run_each_job_exactly_once() {
    let (dir, conn, pg) = with_saved_connection("twoprocs", false);
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);",
    )
    .unwrap();
    // One schema per job, so no job waits for another's lock: each must run exactly once.
    let ids: Vec<i64> = (0..8)
        .map(|i| {
            let schema = fresh_schema(&pg, &format!("l_twoprocs_{i}"));
            queue_dry_run(&conn, &json!({"schema": schema}))
        })
        .collect();
    let path = dir.db();
    let worker = "SELECT json_extract(cloud_sync_worker_start('{\"poll_interval_ms\": 50}'), '$.running');\n.shell sleep 4";
    let processes = [shell_process(&path, worker), shell_process(&path, worker)];
    let started = Instant::now();
    while ids.iter().any(|id| job_status(&conn, *id) != "succeeded") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "jobs did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut pids = std::collections::BTreeSet::new();
    for child in processes {
        pids.insert(child.id());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for id in &ids {
        assert_eq!(
            job_row(&conn, *id)["attempts"],
            1,
            "job {id} ran more than once"
        );
        assert_eq!(attempt_outcomes(&conn, *id), ["succeeded"]);
    }
    // The jobs were run by the two workers' processes, not by this one.
    let runners: Vec<String> = column_of(&conn, "SELECT DISTINCT claimed_by FROM cloud_sync_jobs");
    for runner in &runners {
        let pid: u32 = runner.strip_prefix("pid:").unwrap().parse().unwrap();
        assert!(
            pids.contains(&pid),
            "{runner} is not one of the worker processes {pids:?}"
        );
    }
}

#[test]
fn a_job_on_a_rollback_journal_database_says_other_connections_cannot_write_meanwhile() {
    let (_dir, conn, pg) = with_saved_connection("journal", false);
    let schema = fresh_schema(&pg, "l_journal");
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
        .unwrap();
    let notice = "the database is in journal_mode delete, not WAL";
    let debug = json_of(&conn, "SELECT cloud_sync_debug()");
    assert_eq!(debug["journal_mode"], "delete", "{debug}");
    assert!(
        debug["journal_notice"].as_str().unwrap().contains(notice),
        "{debug}"
    );
    let id = queue_dry_run(&conn, &json!({"schema": schema}));
    assert_eq!(run_job(&conn, &id.to_string())["status"], "succeeded");
    let warnings = warnings_of(&conn, id);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(notice) && w.contains("PRAGMA journal_mode = WAL")),
        "{warnings:?}"
    );

    let mode: String = value_of(&conn, "PRAGMA journal_mode = WAL");
    assert_eq!(mode, "wal");
    let debug = json_of(&conn, "SELECT cloud_sync_debug()");
    assert_eq!(debug["journal_mode"], "wal", "{debug}");
    assert!(debug["journal_notice"].is_null(), "{debug}");
    let id = queue_dry_run(&conn, &json!({"schema": schema}));
    assert_eq!(run_job(&conn, &id.to_string())["status"], "succeeded");
    assert!(
        !warnings_of(&conn, id)
            .iter()
            .any(|w| w.contains("journal_mode")),
        "{:?}",
        warnings_of(&conn, id)
    );
}
