//! cloud_sync_export(name [, dry_run [, options_json]]) and cloud_sync_export(dry_run).

use crate::error::{Error, Result};
use crate::jobs;
use crate::sqlite::{Call, Output};

/// Argument `i` as dry_run: the integer 0 (full export) or 1 (dry run).
fn dry_run(call: &Call, i: usize) -> Result<bool> {
    let wrong = || {
        Error::invalid(format!(
            "argument {} (dry_run) must be the integer 0 (full export) or 1 (dry run)",
            i + 1
        ))
    };
    if !call.is_integer(i) {
        return Err(wrong());
    }
    match call.int(i, "dry_run")? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(wrong()),
    }
}

/// `cloud_sync_export(name)`: a dry run; `cloud_sync_export(dry_run)`: the only connection.
pub fn export_1(call: &Call) -> Result<Output> {
    let id = if call.is_integer(0) {
        jobs::enqueue_export(&call.db, None, dry_run(call, 0)?, None)?
    } else {
        let name = call.text(0, "connection name")?;
        jobs::enqueue_export(&call.db, Some(&name), true, None)?
    };
    Ok(Output::Int(id))
}

pub fn export_2(call: &Call) -> Result<Output> {
    let name = call.text(0, "connection name")?;
    let dry_run = dry_run(call, 1)?;
    Ok(Output::Int(jobs::enqueue_export(
        &call.db,
        Some(&name),
        dry_run,
        None,
    )?))
}

pub fn export_3(call: &Call) -> Result<Output> {
    let name = call.text(0, "connection name")?;
    let dry_run = dry_run(call, 1)?;
    let options = call.text(2, "options JSON")?;
    Ok(Output::Int(jobs::enqueue_export(
        &call.db,
        Some(&name),
        dry_run,
        Some(&options),
    )?))
}
