//! The workers of this process: the process-wide registry by database file, and each worker's
//! shared state, which `status` reports, `stop` asks to stop, and the thread updates as it runs.
//!
//! The registry is `PerProcess`: a process forked from ours (a pre-forking server, Python's
//! `multiprocessing`) starts with no worker, as it has none of our threads, and never waits on
//! a lock or a state that one of our threads held when it forked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::options::Options;
use crate::error::{Error, Result};
use crate::jobs::database_file;
use crate::jobs::per_process::PerProcess;
use crate::sqlite::Db;
use crate::sync::now_iso;

/// The workers of this process, by canonical database file. A stopped worker stays until the
/// next start, so `status` can still report how its run ended.
static WORKERS: PerProcess<Mutex<HashMap<PathBuf, Arc<Worker>>>> = PerProcess::new();

fn workers() -> MutexGuard<'static, HashMap<PathBuf, Arc<Worker>>> {
    // Nothing panics while holding it; if something did, the map is still consistent.
    WORKERS.get().lock().unwrap_or_else(|e| e.into_inner())
}

/// One worker: what `status` reports, and what `stop` and the thread share.
pub(super) struct Worker {
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
pub(super) struct State {
    pub(super) stop_requested: bool,
    /// The thread has closed its connection and is returning.
    pub(super) finished: bool,
    pub(super) current_job: Option<i64>,
    pub(super) jobs_done: u64,
    pub(super) last_error: Option<String>,
    pub(super) stopped_at: Option<String>,
}

impl Worker {
    pub(super) fn new(database: String, options: &Options, journal_mode: String) -> Worker {
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

    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        // A panic never happens while the lock is held; if one did, the state is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn record_error(&self, message: String) {
        self.state().last_error = Some(format!("{}: {message}", now_iso()));
    }

    /// Whether the thread may begin another poll: not once a stop was requested.
    pub(super) fn begin_step(&self) -> bool {
        !self.state().stop_requested
    }

    pub(super) fn end_step(&self, jobs_run: usize) {
        self.state().jobs_done += jobs_run as u64;
    }

    /// Sleeps for the poll interval, or less if a stop is asked for meanwhile.
    pub(super) fn sleep(&self) {
        let state = self.state();
        let _unused = self
            .changed
            .wait_timeout_while(state, self.poll_interval, |s| !s.stop_requested)
            .unwrap_or_else(|e| e.into_inner());
    }

    /// Records that the thread has closed its connection and is returning, and wakes whoever
    /// waits for that.
    pub(super) fn finish(&self) {
        let mut state = self.state();
        state.finished = true;
        state.current_job = None;
        state.stopped_at = Some(now_iso());
        self.changed.notify_all();
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

pub(super) fn not_running() -> Value {
    json!({"stopped": false, "reason": "not running"})
}

/// The status of the worker registered for `key`, with `"already_running": true`, if it runs;
/// `None` if there is none or it has finished; an error if it is stopping.
pub(super) fn running(key: &Path) -> Result<Option<Value>> {
    let existing = workers().get(key).cloned();
    Ok(existing
        .as_deref()
        .map(already_running)
        .transpose()?
        .flatten())
}

/// Registers a worker for `key` and starts its thread with `spawn`, unless another connection
/// started one meanwhile: then that one's status, and `spawn` is dropped unused (closing the
/// connection it owns).
pub(super) fn register(
    key: PathBuf,
    options: &Options,
    journal_mode: String,
    spawn: impl FnOnce(Arc<Worker>) -> Result<JoinHandle<()>>,
) -> Result<Value> {
    let mut workers = workers();
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
        options,
        journal_mode,
    ));
    let handle = spawn(Arc::clone(&worker))?;
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

/// Asks the worker (running or stopped) of `db`'s database file to stop, and waits up to `wait`
/// for it to finish; `None` when that file has no worker.
pub(super) fn stop(db: &Db, wait: Duration) -> Result<Option<Value>> {
    Ok(find(db)?.map(|worker| worker.stop(wait)))
}

/// The status of the worker (running or stopped) of `db`'s database file, if it has one.
pub(super) fn status(db: &Db) -> Result<Option<Value>> {
    Ok(find(db)?.map(|worker| Value::Object(worker.status())))
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
pub(super) fn canonical(file: &str) -> Result<PathBuf> {
    std::fs::canonicalize(file).map_err(|e| {
        Error::local(format!(
            "cannot find the database file {file} for the worker: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
                w.state().jobs_done = 3;
                while !w.state().stop_requested {
                    w.sleep();
                }
                w.finish();
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
}
