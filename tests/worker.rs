//! The background worker (cloud_sync_worker_start/stop/status) with the built extension loaded
//! into real hosts (rusqlite in this process, the sqlite3 shell and Python apsw as separate
//! processes), running real jobs against the real PostgreSQL. Each exporting test works in its
//! own remote schema, since exports lock per schema.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::jobs::{job_row, job_status, queue_dry_run, quoted};
use common::local::{error_of, json_of, value_of, with_fresh_schema};
use common::remote::{as_test_user, locked};
use common::summary::{counts, counts_of};
use common::{lib_path, open, open_temp, open_with, pg, shell, temp_db, KEY};
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};

/// How long a test waits for the worker to pick up and finish a dry run.
const JOB_WAIT: Duration = Duration::from_secs(90);

/// `cloud_sync_worker_status()`, parsed.
fn status(conn: &Connection) -> Value {
    json_of(conn, "SELECT cloud_sync_worker_status()")
}

/// `cloud_sync_worker_start(options)`, parsed.
fn start(conn: &Connection, options: &Value) -> Value {
    json_of(
        conn,
        &format!("SELECT cloud_sync_worker_start({})", quoted(options)),
    )
}

/// `cloud_sync_worker_stop()`, parsed.
fn stop(conn: &Connection) -> Value {
    json_of(conn, "SELECT cloud_sync_worker_stop()")
}

/// A local table to export.
fn create_items(conn: &Connection) {
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL);
         INSERT INTO items VALUES (1, 'tea', 3.5), (2, 'coffee', 4.25), (3, 'water', 1.0);",
    )
    .unwrap();
}

/// Queues a dry-run export of `items` into `schema`; returns the job's id.
fn queue_items_dry_run(conn: &Connection, schema: &str) -> i64 {
    queue_dry_run(conn, &json!({"schema": schema, "tables": ["items"]}))
}

/// Polls job `id` from `conn` (not the worker's connection) until it is no longer queued or
/// running, within `JOB_WAIT`; returns its row.
fn wait_for_job(conn: &Connection, id: i64) -> Value {
    let deadline = Instant::now() + JOB_WAIT;
    loop {
        let status = job_status(conn, id);
        if status != "queued" && status != "running" {
            return job_row(conn, id);
        }
        assert!(
            Instant::now() < deadline,
            "job {id} is still {status} after {JOB_WAIT:?}; worker: {}",
            status_text(conn)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The worker's status as text, or why it cannot be read.
fn status_text(conn: &Connection) -> String {
    conn.query_row("SELECT cloud_sync_worker_status()", [], |r| {
        r.get::<_, String>(0)
    })
    .unwrap_or_else(|e| e.to_string())
}

/// Polls the worker's status until `done` says so, within `JOB_WAIT`.
fn wait_for_status(conn: &Connection, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + JOB_WAIT;
    loop {
        let s = status(conn);
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "worker status stayed {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The path the worker reports for the database file at `path`.
fn canonical(path: &Path) -> String {
    std::fs::canonicalize(path).unwrap().display().to_string()
}

/// Creates the remote `items` of `schema` and returns a session that holds it locked, so a job
/// exporting `items` there stays in progress until the lock goes.
fn locked_remote_items(schema: &str) -> postgres::Client {
    let pg = pg();
    as_test_user(
        &pg,
        schema,
        "CREATE TABLE items (id bigint PRIMARY KEY, name text, price float8)",
    );
    locked(&pg, &format!("{schema}.items"))
}

#[test]
fn the_worker_runs_a_queued_dry_run_by_itself() {
    let (dir, conn, _pg, schema) = with_fresh_schema("worker_runs", "w_runs");
    let path = dir.db();
    create_items(&conn);
    let id = queue_items_dry_run(&conn, &schema);

    let before = status(&conn);
    assert_eq!(before["running"], json!(false), "{before}");
    assert_eq!(before["database"], json!(canonical(&path)), "{before}");
    assert_eq!(before["jobs_done"], json!(0), "{before}");
    assert_eq!(before["started_at"], Value::Null, "{before}");

    let started = start(&conn, &json!({"poll_interval_ms": 50}));
    assert_eq!(started["running"], json!(true), "{started}");
    assert_eq!(started["already_running"], json!(false), "{started}");
    assert_eq!(started["poll_interval_ms"], json!(50), "{started}");
    assert_eq!(started["database"], json!(canonical(&path)), "{started}");
    assert_eq!(started["journal_mode"], json!("wal"), "{started}");
    assert!(started["started_at"].is_string(), "{started}");

    // Nothing else is called: the worker finds the job, runs it and records it.
    let job = wait_for_job(&conn, id);
    assert_eq!(job["status"], json!("succeeded"), "{job}");
    assert_eq!(
        counts_of(&job, "items"),
        counts!(source_rows: 3, inserts: 3),
        "{job}"
    );
    assert_eq!(
        job["claimed_by"],
        json!(format!("pid:{}", std::process::id())),
        "{job}"
    );
    // The worker switched the file to WAL, which every connection now sees.
    assert_eq!(value_of::<String>(&conn, "PRAGMA journal_mode"), "wal");

    let after = wait_for_status(&conn, |s| s["jobs_done"] == json!(1));
    assert_eq!(after["running"], json!(true), "{after}");
    assert_eq!(after["current_job"], Value::Null, "{after}");
    assert_eq!(after["started_at"], started["started_at"], "{after}");

    // A second start is the same worker, whatever its options.
    let again = start(&conn, &json!({"poll_interval_ms": 2000}));
    assert_eq!(again["already_running"], json!(true), "{again}");
    assert_eq!(again["started_at"], started["started_at"], "{again}");
    assert_eq!(again["poll_interval_ms"], json!(50), "{again}");

    let stopped = stop(&conn);
    assert_eq!(stopped, json!({"stopped": true, "jobs_done": 1}));
    let s = status(&conn);
    assert_eq!(s["running"], json!(false), "{s}");
    assert_eq!(s["jobs_done"], json!(1), "{s}");
    assert!(s["stopped_at"].is_string(), "{s}");
    assert_eq!(
        stop(&conn),
        json!({"stopped": false, "reason": "not running"})
    );

    // Stopped means stopped: a job queued now stays queued.
    let id = queue_items_dry_run(&conn, &schema);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(job_status(&conn, id), "queued");

    // And it starts again, as a new worker.
    let restarted = start(&conn, &json!({}));
    assert_eq!(restarted["already_running"], json!(false), "{restarted}");
    assert_eq!(restarted["jobs_done"], json!(0), "{restarted}");
    assert_eq!(restarted["poll_interval_ms"], json!(1000), "{restarted}");
    assert_eq!(wait_for_job(&conn, id)["status"], json!("succeeded"));
    assert_eq!(stop(&conn)["stopped"], json!(true));
}

#[test]
fn stop_lets_the_job_in_progress_run_to_its_end() {
    let (_dir, conn, _pg, schema) = with_fresh_schema("worker_stop_mid_job", "w_stop_mid_job");
    create_items(&conn);
    // The job's remote table is locked, so the job stays in progress until the lock goes.
    let mut locker = locked_remote_items(&schema);
    let id = queue_items_dry_run(&conn, &schema);
    start(&conn, &json!({"poll_interval_ms": 50}));
    let busy = wait_for_status(&conn, |s| {
        s["current_job"] == json!(id) && job_status(&conn, id) == "running"
    });
    assert_eq!(busy["running"], json!(true), "{busy}");

    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        locker.batch_execute("ROLLBACK").unwrap();
    });
    let begun = Instant::now();
    // stop waits for the job, which then ends as it would have.
    assert_eq!(stop(&conn), json!({"stopped": true, "jobs_done": 1}));
    assert!(
        begun.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        begun.elapsed()
    );
    release.join().unwrap();
    assert_eq!(job_status(&conn, id), "succeeded");
    let s = status(&conn);
    assert_eq!(s["running"], json!(false), "{s}");
    assert_eq!(s["current_job"], Value::Null, "{s}");
}

#[test]
fn closing_the_connection_that_started_it_leaves_the_worker_running() {
    let (dir, conn, _pg, schema) = with_fresh_schema("worker_close", "w_close");
    let path = dir.db();
    create_items(&conn);
    let started = start(&conn, &json!({"poll_interval_ms": 50}));
    assert_eq!(started["running"], json!(true), "{started}");
    conn.close().unwrap();

    let other = open(&path);
    let s = status(&other);
    assert_eq!(s["running"], json!(true), "{s}");
    assert_eq!(s["started_at"], started["started_at"], "{s}");
    let id = queue_items_dry_run(&other, &schema);
    let job = wait_for_job(&other, id);
    assert_eq!(job["status"], json!("succeeded"), "{job}");
    wait_for_status(&other, |s| s["jobs_done"] == json!(1));

    // Any connection to the file reaches the same worker.
    assert_eq!(start(&other, &json!({}))["already_running"], json!(true));
    assert_eq!(stop(&other), json!({"stopped": true, "jobs_done": 1}));
}

#[test]
fn one_worker_per_file_however_it_is_named() {
    let (dir, conn) = open_temp("worker_names");
    let path = dir.db();
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let through_link = open(&link);

    let started = start(&conn, &json!({"poll_interval_ms": 50}));
    assert_eq!(started["already_running"], json!(false), "{started}");
    let again = start(&through_link, &json!({}));
    assert_eq!(again["already_running"], json!(true), "{again}");
    assert_eq!(again["database"], json!(canonical(&path)), "{again}");

    // Another file has its own.
    let (_other_dir, other_path) = temp_db("worker_names_other");
    let other = open(&other_path);
    assert_eq!(status(&other)["running"], json!(false));
    assert_eq!(
        start(&other, &json!({"poll_interval_ms": 50}))["already_running"],
        json!(false)
    );
    assert_eq!(stop(&other), json!({"stopped": true, "jobs_done": 0}));
    assert_eq!(status(&conn)["running"], json!(true));

    assert_eq!(
        stop(&through_link),
        json!({"stopped": true, "jobs_done": 0})
    );
    assert_eq!(status(&conn)["running"], json!(false));
}

#[test]
fn options_are_checked_by_name() {
    let (_dir, conn) = open_temp("worker_options");
    let e = error_of(
        &conn,
        r#"SELECT cloud_sync_worker_start('{"poll_interval_ms": 100, "interval": 5}')"#,
    );
    assert!(e.starts_with("cloud_sync_worker_start: "), "{e}");
    assert!(e.contains("unknown option \"interval\""), "{e}");
    assert!(e.contains("poll_interval_ms"), "{e}");
    for bad in ["10", "60001", "\"1000x\"", "1.5"] {
        let e = error_of(
            &conn,
            &format!("SELECT cloud_sync_worker_start('{{\"poll_interval_ms\": {bad}}}')"),
        );
        assert!(
            e.contains("poll_interval_ms must be an integer from 50 to 60000")
                && e.ends_with(&format!("not {bad}")),
            "{e}"
        );
    }
    let e = error_of(&conn, "SELECT cloud_sync_worker_start('[1]')");
    assert!(e.contains("must be a JSON object"), "{e}");
    let e = error_of(&conn, "SELECT cloud_sync_worker_start('{')");
    assert!(e.contains("not valid JSON"), "{e}");
    // Refused options start nothing.
    assert_eq!(status(&conn)["running"], json!(false));
    // A whole number in any exact form, as JavaScript or a CLI writes it.
    for given in ["100.0", "\"100\""] {
        let started = json_of(
            &conn,
            &format!("SELECT cloud_sync_worker_start('{{\"poll_interval_ms\": {given}}}')"),
        );
        assert_eq!(
            started["poll_interval_ms"],
            json!(100),
            "{given}: {started}"
        );
        assert_eq!(stop(&conn)["stopped"], json!(true));
    }
    // The default options.
    let started = json_of(&conn, "SELECT cloud_sync_worker_start()");
    assert_eq!(started["poll_interval_ms"], json!(1000), "{started}");
    assert_eq!(stop(&conn)["stopped"], json!(true));
}

#[test]
fn in_memory_and_temporary_databases_get_a_clear_error() {
    for name in [":memory:", ""] {
        let conn = open(Path::new(name));
        let e = error_of(&conn, "SELECT cloud_sync_worker_start()");
        assert!(
            e.starts_with("cloud_sync_worker_start: the database is in memory or temporary"),
            "{name:?}: {e}"
        );
        assert!(e.contains("cloud_sync_run_jobs()"), "{e}");
        let s = status(&conn);
        assert_eq!(s["running"], json!(false), "{s}");
        assert_eq!(s["database"], json!(""), "{s}");
        assert_eq!(
            stop(&conn),
            json!({"stopped": false, "reason": "not running"})
        );
        // The connection is fine afterwards.
        let one: i64 = conn.query_row("SELECT 1", [], |r| r.get(0)).unwrap();
        assert_eq!(one, 1);
    }
}

#[test]
fn a_read_only_database_gets_a_clear_error() {
    let (_dir, path) = temp_db("worker_readonly");
    drop(open(&path));
    let conn = open_with(&path, OpenFlags::SQLITE_OPEN_READ_ONLY);
    let e = error_of(&conn, "SELECT cloud_sync_worker_start()");
    assert!(e.contains("read-only"), "{e}");
    assert_eq!(status(&conn)["running"], json!(false));
}

/// A database with a saved connection and a queued dry run into `w_<name>`, closed, for a
/// separate process to open.
fn prepared_database(name: &str) -> (common::tempdir::Dir, std::path::PathBuf, i64) {
    let (dir, conn, _pg, schema) = with_fresh_schema(name, &format!("w_{name}"));
    create_items(&conn);
    let id = queue_items_dry_run(&conn, &schema);
    drop(conn);
    let path = dir.db();
    (dir, path, id)
}

/// For each of `delays`, the delay and a database from `prepared_database` (`<name>_<i>`).
fn prepared_per_delay<'a>(
    name: &'a str,
    delays: &'a [&'a str],
) -> impl Iterator<Item = (&'a str, (common::tempdir::Dir, std::path::PathBuf, i64))> + 'a {
    delays
        .iter()
        .enumerate()
        .map(move |(i, delay)| (*delay, prepared_database(&format!("{name}_{i}"))))
}

#[test]
fn the_sqlite3_shell_exits_cleanly_with_a_worker_running() {
    // Exits at different moments of the worker's life: right after the start (opening,
    // recovering), and while its job connects to, or works in, PostgreSQL.
    for (delay, (_dir, path, _id)) in
        prepared_per_delay("shell_exit", &["0", "0.05", "0.2", "0.5", "1"])
    {
        let run = shell(
            &path,
            &[("CLOUD_SYNC_ENCRYPTION_KEY", KEY)],
            &format!(
                "SELECT json_extract(cloud_sync_worker_start('{{\"poll_interval_ms\": 50}}'), \
                 '$.running');\n.shell sleep {delay}\n"
            ),
        );
        assert!(
            run.ok,
            "delay {delay}: the shell failed: {}\n{}",
            run.stdout, run.stderr
        );
        assert_eq!(run.stdout, "1", "delay {delay}");
        assert_eq!(run.stderr, "", "delay {delay}");
    }
}

/// What a Python process printed and how it ended.
struct PythonRun {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

impl PythonRun {
    /// Checks that the process (`case`) ended with exit code `code`, saying nothing on stderr.
    fn assert_exited(&self, case: &str, code: i32) {
        assert_eq!(
            self.status.code(),
            Some(code),
            "{case}: python exited with {:?}: {}\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        assert_eq!(self.stderr, "", "{case}");
    }
}

/// Runs `body` in /usr/bin/python3 after a prologue that opens `path` with apsw, loads the
/// extension and starts a worker polling every 50 ms (`conn`, `job` = `job_id` are defined).
fn python_host(path: &Path, job_id: i64, prologue_imports: &str, body: &str) -> PythonRun {
    let script = format!(
        r#"{prologue_imports}
import json, os, sys, time
import apsw
conn = apsw.Connection(sys.argv[1])
enable = getattr(conn, "enable_load_extension", None) or conn.enableloadextension
load = getattr(conn, "load_extension", None) or conn.loadextension
enable(True)
load(os.environ["CLOUD_SYNC_LIB"])
job = int(sys.argv[2])
started = json.loads(conn.execute(
    "SELECT cloud_sync_worker_start('{{\"poll_interval_ms\": 50}}')").fetchall()[0][0])
assert started["running"], started
{body}
"#
    );
    let out = Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .arg(path)
        .arg(job_id.to_string())
        .env("CLOUD_SYNC_LIB", lib_path())
        .env("CLOUD_SYNC_ENCRYPTION_KEY", KEY)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    PythonRun {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    }
}

#[test]
fn a_python_apsw_process_exits_cleanly_with_a_worker_running() {
    let (_dir, path, id) = prepared_database("apsw_exit");
    // The script waits for the worker to finish the job, then leaves with the worker idle: the
    // interpreter's shutdown closes its connection, the worker's is left to the process's end.
    // No busy timeout: in WAL mode, reads never wait for the worker's writes.
    let run = python_host(
        &path,
        id,
        "",
        r#"
deadline = time.time() + 90
while time.time() < deadline:
    status = conn.execute("SELECT status FROM cloud_sync_jobs WHERE id = ?", (job,)).fetchall()[0][0]
    if status not in ("queued", "running"):
        break
    time.sleep(0.05)
print(status)
print(json.loads(conn.execute("SELECT cloud_sync_worker_status()").fetchall()[0][0])["jobs_done"])
"#,
    );
    run.assert_exited("waiting for the job", 0);
    assert_eq!(run.stdout, "succeeded\n1");
    // What the worker did there stays done.
    assert_eq!(job_status(&open(&path), id), "succeeded");
}

#[test]
fn a_process_whose_host_uses_openssl_exits_cleanly_in_the_middle_of_a_job() {
    // Python's ssl module initializes OpenSSL with an exit handler (OPENSSL_cleanup) that frees
    // OpenSSL's global state. The extension's TLS shares nothing with it: leaving while the
    // worker's job talks to PostgreSQL must not crash, whatever the job was doing.
    let delays = ["0", "0.005", "0.01", "0.02", "0.04"];
    for (delay, (_dir, path, id)) in prepared_per_delay("openssl_exit", &delays) {
        let run = python_host(
            &path,
            id,
            "import ssl, hashlib\nssl.create_default_context()",
            &format!("time.sleep({delay})"),
        );
        run.assert_exited(&format!("delay {delay}"), 0);
        // The job ended, or died with the process and waits for recovery.
        let status = job_status(&open(&path), id);
        assert!(
            ["queued", "running", "succeeded"].contains(&status.as_str()),
            "delay {delay}: {status}"
        );
    }
}

#[test]
fn an_exit_in_the_middle_of_a_job_is_neither_delayed_nor_cut_short() {
    let (_dir, path, id) = prepared_database("exit_wait");
    // The dry run's remote table is locked until the process has gone, so its job cannot end.
    let mut locker = locked_remote_items("w_exit_wait");
    let run = python_host(
        &path,
        id,
        "import atexit, ssl\nssl.create_default_context()",
        r#"
deadline = time.time() + 30
while conn.execute("SELECT status FROM cloud_sync_jobs WHERE id = ?", (job,)).fetchall()[0][0] != "running":
    assert time.time() < deadline, "the job never started"
    time.sleep(0.02)
atexit.register(lambda: print("the host's exit handler ran"))
print("leaving at", time.time())
sys.exit(3)
"#,
    );
    let ended = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    locker.batch_execute("ROLLBACK").unwrap();
    run.assert_exited("leaving mid-job", 3);
    let (leaving, handler) = run.stdout.split_once('\n').unwrap();
    assert_eq!(handler, "the host's exit handler ran");
    let left_at: f64 = leaving
        .strip_prefix("leaving at ")
        .unwrap()
        .parse()
        .unwrap();
    // Nothing waits for the job: the process is gone at once.
    assert!(ended - left_at < 3.0, "the exit took {} s", ended - left_at);
    // The job died with the process, as in a kill: left `running` for recovery, claimed by a
    // process that is gone.
    assert_eq!(job_status(&open(&path), id), "running");
}
