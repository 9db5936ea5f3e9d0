//! The background worker: one thread per database file per process, with its own connection.
//!
//! `start` runs on the caller's thread: it checks the options and the database, opens the
//! worker's own connection to the same file (`sqlite::connection::Connection`), and moves it
//! into a new, detached thread. The host's connection never leaves the caller's thread, so the
//! host may close it while the worker runs. The thread recovers orphaned jobs once, then runs
//! due jobs one at a time (`runner::run_due(db, Some(1))`), sleeping `poll_interval_ms` when
//! there is nothing to run. Nothing a job does (an error, a panic) ends the thread; only `stop`
//! does, between jobs: a job in progress always runs to its end.
//!
//! The registry of workers is a process-wide static that is never dropped, and the threads are
//! detached: a process may exit with a worker running. Its exit waits (up to `EXIT_WAIT`) only
//! for a job the worker is running, because OpenSSL's own exit handler would pull the TLS state
//! from under it (see `exit_guard`).

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use serde_json::{json, Map, Value};

use super::{database_file, runner};
use crate::error::{Error, Result};
use crate::local::schema;
use crate::sqlite::connection::{self, Connection};
use crate::sqlite::{Db, Param};
use crate::sync::now_iso;

/// How long `stop` waits for the worker to finish its current job.
pub const STOP_WAIT: Duration = Duration::from_secs(60);

/// How long a process's exit waits for its workers to finish the job they are running.
pub const EXIT_WAIT: Duration = Duration::from_secs(10);

const DEFAULT_POLL_MS: u64 = 1000;
const MIN_POLL_MS: u64 = 50;
const MAX_POLL_MS: u64 = 60_000;
const OPTIONS: &[&str] = &["poll_interval_ms"];

/// The workers of this process, by canonical database file. A stopped worker stays until the
/// next start, so `status` can still report how its run ended.
static WORKERS: Lazy<Mutex<HashMap<PathBuf, Arc<Worker>>>> = Lazy::new(Default::default);

fn workers() -> MutexGuard<'static, HashMap<PathBuf, Arc<Worker>>> {
    // Nothing panics while holding it; if something did, the map is still consistent.
    WORKERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The worker's options (`options_json` of `cloud_sync_worker_start`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub poll_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            poll_interval: Duration::from_millis(DEFAULT_POLL_MS),
        }
    }
}

impl Options {
    pub fn parse(text: Option<&str>) -> Result<Options> {
        let mut options = Options::default();
        let Some(text) = text else {
            return Ok(options);
        };
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::invalid(format!("options_json is not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(Error::invalid(
                "options_json must be a JSON object, like {\"poll_interval_ms\": 1000}",
            ));
        };
        let unknown: Vec<String> = map
            .keys()
            .filter(|k| !OPTIONS.contains(&k.as_str()))
            .map(|k| format!("\"{k}\""))
            .collect();
        if !unknown.is_empty() {
            return Err(Error::invalid(format!(
                "unknown option{} {} in options_json: the worker takes {}",
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join(", "),
                OPTIONS.join(", ")
            )));
        }
        if let Some(v) = map.get("poll_interval_ms") {
            let ms = v
                .as_u64()
                .filter(|ms| (MIN_POLL_MS..=MAX_POLL_MS).contains(ms))
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "poll_interval_ms must be an integer from {MIN_POLL_MS} to \
                         {MAX_POLL_MS} (milliseconds), not {v}"
                    ))
                })?;
            options.poll_interval = Duration::from_millis(ms);
        }
        Ok(options)
    }
}

/// One worker: what `status` reports, and what `stop` and the thread share.
struct Worker {
    /// The canonical path of the database file.
    database: String,
    poll_interval: Duration,
    journal_mode: String,
    started_at: String,
    state: Mutex<State>,
    /// Wakes the thread when a stop is asked for, and `stop` when the thread has finished.
    changed: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct State {
    stop_requested: bool,
    /// The thread is inside a poll (possibly running a job); it starts none once a stop is
    /// requested.
    busy: bool,
    /// The thread has closed its connection and is returning.
    finished: bool,
    current_job: Option<i64>,
    jobs_done: u64,
    last_error: Option<String>,
    stopped_at: Option<String>,
}

impl Worker {
    fn new(database: String, options: &Options, journal_mode: String) -> Worker {
        Worker {
            database,
            poll_interval: options.poll_interval,
            journal_mode,
            started_at: now_iso(),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            thread: Mutex::new(None),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic never happens while the lock is held; if one did, the state is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record_error(&self, message: String) {
        self.state().last_error = Some(format!("{}: {message}", now_iso()));
    }

    #[cfg(test)]
    fn stop_requested(&self) -> bool {
        self.state().stop_requested
    }

    /// Marks the thread busy for one poll, unless a stop was requested.
    fn begin_step(&self) -> bool {
        let mut state = self.state();
        state.busy = !state.stop_requested;
        state.busy
    }

    fn end_step(&self, jobs_run: usize) {
        let mut state = self.state();
        state.busy = false;
        state.jobs_done += jobs_run as u64;
        self.changed.notify_all();
    }

    /// Sleeps for the poll interval, or less if a stop is asked for meanwhile.
    fn sleep(&self) {
        let state = self.state();
        let _unused = self
            .changed
            .wait_timeout_while(state, self.poll_interval, |s| !s.stop_requested)
            .unwrap_or_else(|e| e.into_inner());
    }

    /// Asks the thread to stop and waits up to `wait` for it to finish.
    fn stop(&self, wait: Duration) -> Value {
        let mut state = self.state();
        if state.finished {
            return not_running();
        }
        state.stop_requested = true;
        self.changed.notify_all();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, wait, |s| !s.finished)
            .unwrap_or_else(|e| e.into_inner());
        if state.finished {
            let jobs_done = state.jobs_done;
            drop(state);
            // The thread has only to return now.
            let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(handle) = handle {
                let _ = handle.join();
            }
            return json!({"stopped": true, "jobs_done": jobs_done});
        }
        let reason = match state.current_job {
            Some(id) => format!("still finishing job {id}"),
            None => "still finishing its current step".to_string(),
        };
        json!({
            "stopped": false,
            "reason": format!(
                "{reason} after {} s: it stops when that ends (see cloud_sync_worker_status())",
                wait.as_secs()
            ),
        })
    }

    fn status(&self) -> Map<String, Value> {
        let state = self.state();
        let mut status = Map::new();
        status.insert("running".into(), json!(!state.finished));
        status.insert(
            "stopping".into(),
            json!(state.stop_requested && !state.finished),
        );
        status.insert("database".into(), json!(self.database));
        status.insert("current_job".into(), json!(state.current_job));
        status.insert("jobs_done".into(), json!(state.jobs_done));
        status.insert("last_error".into(), json!(state.last_error));
        status.insert(
            "poll_interval_ms".into(),
            json!(self.poll_interval.as_millis() as u64),
        );
        status.insert("journal_mode".into(), json!(self.journal_mode));
        status.insert("started_at".into(), json!(self.started_at));
        status.insert("stopped_at".into(), json!(state.stopped_at));
        status
    }
}

fn not_running() -> Value {
    json!({"stopped": false, "reason": "not running"})
}

/// Starts the worker of `db`'s database file, or reports the one already running.
pub fn start(db: &Db, options: Option<&str>) -> Result<Value> {
    let options = Options::parse(options)?;
    let file = database_file(db)?;
    if file.is_empty() {
        return Err(connection::in_memory());
    }
    schema::require_writable(db, "start the worker")?;
    let key = canonical(&file)?;
    let existing = workers().get(&key).cloned();
    if let Some(running) = existing
        .as_deref()
        .map(already_running)
        .transpose()?
        .flatten()
    {
        return Ok(running);
    }
    exit_guard();
    // Opened here, on the caller's thread, so that a refusal is this call's error. It is
    // opened by the name the host's connection reports, so both connections name the database
    // alike (the registry of running jobs identifies a run by that name).
    let conn = Connection::open(&file)?;
    let mut workers = workers();
    // Another connection may have started one while this one was opening: keep theirs (`conn`
    // closes as it goes out of scope).
    if let Some(running) = workers
        .get(&key)
        .map(|w| already_running(w))
        .transpose()?
        .flatten()
    {
        return Ok(running);
    }
    let worker = Arc::new(Worker::new(
        key.display().to_string(),
        &options,
        conn.journal_mode().to_string(),
    ));
    let handle = std::thread::Builder::new()
        .name("cloud_sync worker".into())
        .spawn({
            let worker = Arc::clone(&worker);
            move || run(&worker, conn)
        })
        .map_err(|e| Error::local(format!("cannot start the worker's thread: {e}")))?;
    *worker.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
    workers.insert(key, Arc::clone(&worker));
    let mut status = worker.status();
    status.insert("already_running".into(), json!(false));
    Ok(Value::Object(status))
}

/// The status of `worker` with `"already_running": true` if it runs, `None` if it has finished,
/// an error if it is stopping.
fn already_running(worker: &Worker) -> Result<Option<Value>> {
    let state = worker.state();
    if state.finished {
        return Ok(None);
    }
    if state.stop_requested {
        let what = match state.current_job {
            Some(id) => format!("job {id}"),
            None => "its current step".into(),
        };
        return Err(Error::invalid(format!(
            "the worker of {} is stopping (it is finishing {what}): start it again once \
             cloud_sync_worker_status() says it is not running",
            worker.database
        )));
    }
    drop(state);
    let mut status = worker.status();
    status.insert("already_running".into(), json!(true));
    Ok(Some(Value::Object(status)))
}

/// Asks the worker of `db`'s database file to stop, and waits up to `STOP_WAIT` for it to finish
/// its current job and close its connection.
pub fn stop(db: &Db) -> Result<Value> {
    let Some(worker) = find(db)? else {
        return Ok(not_running());
    };
    Ok(worker.stop(STOP_WAIT))
}

/// What the worker of `db`'s database file is doing.
pub fn status(db: &Db) -> Result<Value> {
    if let Some(worker) = find(db)? {
        return Ok(Value::Object(worker.status()));
    }
    let file = database_file(db)?;
    let database = canonical(&file)
        .map(|p| p.display().to_string())
        .unwrap_or(file);
    Ok(json!({
        "running": false,
        "stopping": false,
        "database": database,
        "current_job": null,
        "jobs_done": 0,
        "last_error": null,
        "poll_interval_ms": null,
        "journal_mode": null,
        "started_at": null,
        "stopped_at": null,
    }))
}

/// The worker (running or stopped) of `db`'s database file.
fn find(db: &Db) -> Result<Option<Arc<Worker>>> {
    let file = database_file(db)?;
    if file.is_empty() {
        return Ok(None);
    }
    let Ok(key) = canonical(&file) else {
        return Ok(None);
    };
    Ok(workers().get(&key).cloned())
}

/// The file's path with every symbolic link and `..` resolved: one worker per file, however
/// the connections name it.
fn canonical(file: &str) -> Result<PathBuf> {
    std::fs::canonicalize(file).map_err(|e| {
        Error::local(format!(
            "cannot find the database file {file} for the worker: {e}"
        ))
    })
}

/// The worker thread: owns `conn` until it returns.
fn run(worker: &Worker, conn: Connection) {
    // Marks the worker finished when the thread returns, also if it unwinds; declared before
    // `conn` so that the connection is closed first.
    let _finished = Finished(worker);
    let conn = conn;
    let db = conn.db();
    let mut recover = true;
    while worker.begin_step() {
        let ran = step(worker, db, &mut recover);
        worker.end_step(ran);
        if ran == 0 {
            worker.sleep();
        }
    }
}

/// One poll: recovers orphaned jobs when `recover` says so, then runs the next due job, if any.
/// Returns how many jobs it ran.
fn step(worker: &Worker, db: &Db, recover: &mut bool) -> usize {
    if std::mem::take(recover) {
        guarded(worker, None, "recovering orphaned jobs", || {
            runner::recover_orphans(db).map(|_| ())
        });
    }
    let next = guarded(worker, None, "looking for due jobs", || next_due(db)).flatten();
    worker.state().current_job = next;
    let outcome = guarded(worker, next, "running jobs", || {
        runner::run_due(db, Some(1))
    });
    worker.state().current_job = None;
    if outcome.is_none() && next.is_some() {
        // A panic (or a failure to record the end) mid-job leaves the job `running` with nobody
        // running it: recover it at the next poll rather than at the next start. Its
        // transactions were rolled back, during the unwind or by the error.
        *recover = true;
    }
    outcome.map_or(0, |outcomes| outcomes.len())
}

/// Runs one step of the thread, recording its error or panic in `last_error`.
fn guarded<T>(
    worker: &Worker,
    job: Option<i64>,
    what: &str,
    step: impl FnOnce() -> Result<T>,
) -> Option<T> {
    let failure = match catch_unwind(AssertUnwindSafe(step)) {
        Ok(Ok(value)) => return Some(value),
        Ok(Err(e)) => e.to_string(),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            format!("internal error (panic), please report it: {message}")
        }
    };
    let prefix = match job {
        Some(id) => format!("{what} (job {id})"),
        None => what.to_string(),
    };
    worker.record_error(format!("{prefix}: {failure}"));
    None
}

/// The job `run_due` is about to run, for `status` to show: the same choice `run_due` makes.
fn next_due(db: &Db) -> Result<Option<i64>> {
    db.query_row(
        "SELECT id FROM cloud_sync_jobs
         WHERE status = 'queued' AND COALESCE(next_attempt_at, created_at) <= ?1
         ORDER BY COALESCE(next_attempt_at, created_at), id
         LIMIT 1",
        &[Param::Text(&now_iso())],
        |row| Ok(row.int(0)),
    )
}

struct Finished<'a>(&'a Worker);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.finished = true;
        state.busy = false;
        state.current_job = None;
        state.stopped_at = Some(now_iso());
        self.0.changed.notify_all();
    }
}

/// Makes the process's exit safe while a worker runs a job.
///
/// A detached worker thread is harmless at exit, except inside OpenSSL: a host that initialized
/// OpenSSL itself (Python's `ssl` or `hashlib`, for one) registered `OPENSSL_cleanup` as an exit
/// handler, which frees OpenSSL's global state while the worker's TLS session still uses it, and
/// the process crashes on its way out. So, once per process: initialize OpenSSL (if the host
/// has not, this initializes it with `OPENSSL_INIT_NO_ATEXIT`, and no cleanup handler is ever
/// registered), then register an exit handler of our own, which runs before any handler
/// registered earlier, OpenSSL's included. It stops the workers from starting another job and
/// waits up to `EXIT_WAIT` for the jobs they are running to end.
fn exit_guard() {
    static GUARD: Once = Once::new();
    GUARD.call_once(|| {
        openssl::init();
        GUARD_PID.store(std::process::id(), Ordering::Relaxed);
        register_exit_handler();
    });
}

/// The process that registered the exit handler. A child forked from it inherits the handler
/// and the registry, but none of the threads: its exit has no worker to wait for.
static GUARD_PID: AtomicU32 = AtomicU32::new(0);

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn register_exit_handler() {
    extern "C" {
        // glibc: like atexit, and the handler receives the exit status.
        fn on_exit(
            handler: extern "C" fn(std::ffi::c_int, *mut std::ffi::c_void),
            arg: *mut std::ffi::c_void,
        ) -> std::ffi::c_int;
    }
    extern "C" fn at_exit(status: std::ffi::c_int, _: *mut std::ffi::c_void) {
        let idle = catch_unwind(|| workers_idle_at_exit(EXIT_WAIT)).unwrap_or(false);
        if !idle {
            // A job still runs after EXIT_WAIT: end the process now, with its status, as a kill
            // would, rather than let OpenSSL's cleanup pull its TLS state away. Its remote and
            // local transactions die with the process, and the job is recovered at the next
            // start. Output still buffered in stdio is written first.
            // SAFETY: fflush(NULL) flushes every stream; _exit ends the process.
            unsafe {
                libc::fflush(std::ptr::null_mut());
                libc::_exit(status);
            }
        }
    }
    // SAFETY: registers a handler that lives as long as the process (the library stays mapped:
    // the entry point returns SQLITE_OK_LOAD_PERMANENTLY).
    unsafe { on_exit(at_exit, std::ptr::null_mut()) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn register_exit_handler() {
    extern "C" fn at_exit() {
        // Without the exit status, a job that outlasts EXIT_WAIT is left to the exit.
        let _ = catch_unwind(|| workers_idle_at_exit(EXIT_WAIT));
    }
    // SAFETY: as above.
    unsafe { libc::atexit(at_exit) };
}

/// Asks every worker to stop and waits up to `wait` until none is inside a poll. `true` when
/// none is.
fn workers_idle_at_exit(wait: Duration) -> bool {
    if GUARD_PID.load(Ordering::Relaxed) != std::process::id() {
        return true;
    }
    let deadline = Instant::now() + wait;
    // Another thread of the host may hold the registry at exit; never wait past the deadline.
    let workers: Vec<Arc<Worker>> = loop {
        match WORKERS.try_lock() {
            Ok(map) => break map.values().cloned().collect(),
            Err(TryLockError::Poisoned(map)) => break map.into_inner().values().cloned().collect(),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(TryLockError::WouldBlock) => return false,
        }
    };
    for worker in &workers {
        worker.state().stop_requested = true;
        worker.changed.notify_all();
    }
    workers.iter().all(|worker| {
        let state = worker.state();
        let left = deadline.saturating_duration_since(Instant::now());
        let (state, _) = worker
            .changed
            .wait_timeout_while(state, left, |s| s.busy)
            .unwrap_or_else(|e| e.into_inner());
        !state.busy
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_default_and_bounds() {
        assert_eq!(Options::parse(None).unwrap(), Options::default());
        assert_eq!(
            Options::parse(Some("{}")).unwrap().poll_interval,
            Duration::from_millis(1000)
        );
        for ms in [50, 60_000] {
            let text = format!("{{\"poll_interval_ms\": {ms}}}");
            assert_eq!(
                Options::parse(Some(&text)).unwrap().poll_interval,
                Duration::from_millis(ms)
            );
        }
        for bad in ["49", "60001", "-1", "1000.5", "\"1000\"", "null", "true"] {
            let text = format!("{{\"poll_interval_ms\": {bad}}}");
            let e = Options::parse(Some(&text)).unwrap_err().to_string();
            assert!(
                e.contains("poll_interval_ms must be an integer from 50 to 60000"),
                "{e}"
            );
        }
    }

    #[test]
    fn options_refuse_unknown_keys_by_name() {
        let e = Options::parse(Some(r#"{"poll_interval_ms": 100, "poll": 1, "max": 2}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown options \"max\", \"poll\""), "{e}");
        assert!(e.contains("the worker takes poll_interval_ms"), "{e}");
        let e = Options::parse(Some(r#"{"x": 1}"#)).unwrap_err().to_string();
        assert!(e.starts_with("unknown option \"x\""), "{e}");
    }

    #[test]
    fn options_must_be_a_json_object() {
        for bad in ["", "[]", "1", "{", "\"x\""] {
            assert!(Options::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    fn worker() -> Arc<Worker> {
        Arc::new(Worker::new(
            "/tmp/x.db".into(),
            &Options::default(),
            "wal".into(),
        ))
    }

    #[test]
    fn stop_waits_for_the_thread_and_reports_jobs_done() {
        let w = worker();
        let thread = {
            let w = Arc::clone(&w);
            std::thread::spawn(move || {
                let _finished = Finished(&w);
                w.state().jobs_done = 3;
                while !w.stop_requested() {
                    w.sleep();
                }
            })
        };
        *w.thread.lock().unwrap() = Some(thread);
        assert_eq!(
            w.stop(Duration::from_secs(10)),
            json!({"stopped": true, "jobs_done": 3})
        );
        assert_eq!(w.stop(Duration::from_secs(10)), not_running());
        let status = w.status();
        assert_eq!(status["running"], json!(false));
        assert!(status["stopped_at"].is_string());
    }

    #[test]
    fn stop_that_times_out_names_the_job() {
        let w = worker();
        w.state().current_job = Some(42);
        let out = w.stop(Duration::from_millis(50));
        assert_eq!(out["stopped"], json!(false));
        let reason = out["reason"].as_str().unwrap();
        assert!(reason.starts_with("still finishing job 42"), "{reason}");
        assert_eq!(w.status()["stopping"], json!(true));
        assert_eq!(w.status()["running"], json!(true));
    }

    #[test]
    fn guarded_records_errors_and_panics() {
        let w = worker();
        assert_eq!(guarded(&w, None, "step", || Ok(7)), Some(7));
        assert!(w.state().last_error.is_none());
        assert_eq!(
            guarded::<()>(&w, Some(5), "running jobs", || Err(Error::invalid("boom"))),
            None
        );
        let e = w.state().last_error.clone().unwrap();
        assert!(e.ends_with("running jobs (job 5): boom"), "{e}");
        assert_eq!(guarded::<()>(&w, None, "step", || panic!("kaboom")), None);
        let e = w.state().last_error.clone().unwrap();
        assert!(e.contains("panic") && e.ends_with("kaboom"), "{e}");
    }
}
