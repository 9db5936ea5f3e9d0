//! cloud_sync_export(name [, dry_run [, options_json]]) and cloud_sync_export(dry_run).

use crate::error::Result;
use crate::jobs;
use crate::sqlite::{Call, Output};

/// `cloud_sync_export(name)`: a dry run; `cloud_sync_export(dry_run)`: the only connection.
/// A number is the flag, text the name (so `'1'` names a connection).
pub fn export_1(call: &Call) -> Result<Output> {
    let id = if call.is_number(0) {
        let dry_run = super::dry_run(call, 0, "export")?;
        jobs::enqueue_export(&call.db, None, dry_run, None, call.actor().as_deref())?
    } else {
        let name = call.text(0, "connection name")?;
        jobs::enqueue_export(&call.db, Some(&name), true, None, call.actor().as_deref())?
    };
    Ok(Output::Int(id))
}

pub fn export_2(call: &Call) -> Result<Output> {
    let name = call.text(0, "connection name")?;
    let dry_run = super::dry_run(call, 1, "export")?;
    Ok(Output::Int(jobs::enqueue_export(
        &call.db,
        Some(&name),
        dry_run,
        None,
        call.actor().as_deref(),
    )?))
}

pub fn export_3(call: &Call) -> Result<Output> {
    let name = call.text(0, "connection name")?;
    let dry_run = super::dry_run(call, 1, "export")?;
    let options = call.text(2, "options JSON")?;
    Ok(Output::Int(jobs::enqueue_export(
        &call.db,
        Some(&name),
        dry_run,
        Some(&options),
        call.actor().as_deref(),
    )?))
}
