//! Schedules (continuous sync): jobs the running worker queues by itself, every period and/or,
//! for an export, once local changes to its tables have gone quiet.
//!
//! A schedule's job is checked exactly as queuing that job by hand checks it (`enqueue`), when
//! the schedule is created and again at every run, and it is then a job like any other: a row in
//! `cloud_sync_jobs`, a log, a report. A scheduled export is always incremental, so it needs no
//! confirmation, and a schedule is refused until each of its tables has had a confirmed full
//! export to its connection; that is what stands in for the preview a full export confirms.
//!
//! This module creates and removes schedules. `options` reads a definition, `store` keeps it
//! with what its runs did, `pending` reads from the local change log what a scheduled export
//! would send, `due` says when a schedule may run, `run` is the worker's side.

mod due;
mod options;
mod pending;
mod run;
mod store;

use serde_json::{json, Value};

use self::options::{Definition, Kind};
use self::pending::Pending;
use super::enqueue::{self, Checked};
use crate::error::{Error, Result};
use crate::local::schema;
use crate::sqlite::Db;
use crate::sync::now_iso;
use crate::{audit, connections};

pub use run::Scheduler;

/// Creates the schedule `name` from `options_json`, or replaces it, on behalf of the
/// connection's `actor`; nothing changes when a check fails. Returns what it saved.
pub fn schedule(db: &Db, name: &str, options_json: &str, actor: Option<&str>) -> Result<Value> {
    validate_name(name)?;
    let mut definition = Definition::parse(options_json)?;
    definition.requested_by = audit::requester(definition.requested_by.as_deref(), actor)?;
    schema::require_writable(db, "save a schedule")?;
    let prepared = prepare(db, &definition)?;
    let now = now_iso();
    let replaced = store::save(db, name, &definition, &now)?;
    Ok(json!({
        "name": name,
        "replaced": replaced,
        "connection": definition.connection,
        "kind": definition.kind.as_str(),
        "every_s": definition.every_s,
        "on_change": definition.on_change,
        "debounce_ms": definition.debounce_ms,
        "created_by": definition.requested_by,
        "job_options": prepared.job.options,
        "tables": prepared.tables,
        "pending_changes": prepared.pending.map(|p| p.records()),
        "next_run_at": now,
    }))
}

/// Removes the schedule `name`. A job it queued stays, as any job does.
pub fn unschedule(db: &Db, name: &str) -> Result<Value> {
    validate_name(name)?;
    schema::require_writable(db, "remove a schedule")?;
    if !store::remove(db, name)? {
        let names = store::names(db)?;
        let known = if names.is_empty() {
            "there is no schedule".to_string()
        } else {
            format!("schedules: {}", names.join(", "))
        };
        return Err(Error::invalid(format!(
            "unknown schedule '{name}': {known}"
        )));
    }
    Ok(json!({"name": name, "removed": true}))
}

/// Schedule names follow the rule of connection names: short identifiers.
fn validate_name(name: &str) -> Result<()> {
    connections::validate_name(name).map_err(|_| {
        Error::invalid(format!(
            "a schedule name is 1 to {} letters, digits, '_', '-' or '.'",
            connections::MAX_NAME_LEN
        ))
    })
}

/// A schedule's next job, checked.
struct Prepared {
    job: Checked,
    /// An export's tables.
    tables: Option<Vec<String>>,
    /// What an export would send.
    pending: Option<Pending>,
}

/// Checks the job `definition` queues as queuing it checks it, and, for an export, that every
/// table it selects can go incrementally, and what it would send. The job is requested by the
/// schedule's creator.
fn prepare(db: &Db, definition: &Definition) -> Result<Prepared> {
    let connection = &definition.connection;
    let job_options = definition.job_options_json();
    match definition.kind {
        Kind::Export => {
            let connection_id = connections::id(db, connection)?;
            let export = enqueue::check_export(db, connection_id, connection, Some(&job_options))?;
            let pending = pending::of_export(
                db,
                connection,
                connection_id,
                &export.options.schema,
                &export.tables,
            )?;
            let mut job = export.job;
            job.options.insert("mode".into(), "incremental".into());
            job.requested_by = definition.requested_by.clone();
            Ok(Prepared {
                job,
                tables: Some(export.tables),
                pending: Some(pending),
            })
        }
        Kind::Import => {
            let mut job = enqueue::check_import(db, connection, None, Some(&job_options))?;
            job.requested_by = definition.requested_by.clone();
            Ok(Prepared {
                job,
                tables: None,
                pending: None,
            })
        }
    }
}
