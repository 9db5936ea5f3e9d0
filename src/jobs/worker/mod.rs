//! The background worker: one thread per database file per process, with its own connection.
//!
//! `start` runs on the caller's thread: it checks the options (`options`) and the database,
//! opens the worker's own connection to the same file (`sqlite::connection::Connection`), and
//! moves it into a new, detached thread (`run_loop`). The host's connection never leaves the
//! caller's thread, so the host may close it while the worker runs. The thread recovers
//! orphaned jobs once, then runs due jobs one at a time (`runner::run_due(db, Some(1))`),
//! sleeping `poll_interval_ms` when there is nothing to run. Nothing a job does (an error, a
//! panic) ends the thread; only `stop` does, between jobs: a job in progress always runs to its
//! end.
//!
//! The registry of workers (`registry`) is a process-wide static that is never dropped, and the
//! threads are detached: a process may exit with a worker running, and its exit neither waits
//! for the worker nor is cut short by it. A job in progress then dies with the process, as in a
//! kill, and is recovered at the next start. The registry is per process: a child forked from
//! this process starts with no worker, since it has none of the threads.

mod options;
mod registry;
mod run_loop;

use std::time::Duration;

use serde_json::{json, Value};

use super::database_file;
use crate::error::{Error, Result};
use crate::local::schema;
use crate::sqlite::connection::{self, Connection};
use crate::sqlite::Db;
use options::Options;

/// How long `stop` waits for the worker to finish its current job.
pub const STOP_WAIT: Duration = Duration::from_secs(60);

/// Starts the worker of `db`'s database file, or reports the one already running.
pub fn start(db: &Db, options: Option<&str>) -> Result<Value> {
    let options = Options::parse(options)?;
    let file = database_file(db)?;
    if file.is_empty() {
        return Err(connection::in_memory());
    }
    schema::require_writable(db, "start the worker")?;
    let key = registry::canonical(&file)?;
    if let Some(running) = registry::running(&key)? {
        return Ok(running);
    }
    // Opened here, on the caller's thread, so that a refusal is this call's error. It is
    // opened by the name the host's connection reports, so both connections name the database
    // alike (the registry of running jobs identifies a run by that name).
    let conn = Connection::open(&file)?;
    let journal_mode = conn.journal_mode().to_string();
    registry::register(key, &options, journal_mode, move |worker| {
        std::thread::Builder::new()
            .name("cloud_sync worker".into())
            .spawn(move || run_loop::run(&worker, conn))
            .map_err(|e| Error::local(format!("cannot start the worker's thread: {e}")))
    })
}

/// Asks the worker of `db`'s database file to stop, and waits up to `STOP_WAIT` for it to finish
/// its current job and close its connection.
pub fn stop(db: &Db) -> Result<Value> {
    Ok(registry::stop(db, STOP_WAIT)?.unwrap_or_else(registry::not_running))
}

/// What the worker of `db`'s database file is doing.
pub fn status(db: &Db) -> Result<Value> {
    if let Some(status) = registry::status(db)? {
        return Ok(status);
    }
    let file = database_file(db)?;
    let database = registry::canonical(&file)
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
