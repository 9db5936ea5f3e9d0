//! The SQL surface: each function reads its arguments, calls the domain, returns the result.

pub mod actor;
pub mod connections;
pub mod export;
pub mod import;
pub mod jobs;
pub mod meta;
pub mod report;
pub mod schedule;
pub mod tracking;
pub mod worker;

use crate::error::{Error, Result};
use crate::sqlite::argument::{exact_integer, shown};
use crate::sqlite::Call;

/// Argument `i` as dry_run: 0 (the real `job`) or 1 (a dry run), given as any value that stands
/// for that integer exactly (`1`, `1.0`, `'1'`).
fn dry_run(call: &Call, i: usize, job: &str) -> Result<bool> {
    let value = call.value(i);
    match exact_integer(value) {
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        _ => Err(Error::invalid(format!(
            "argument {} (dry_run) must be the integer 0 (full {job}) or 1 (dry run), not {}",
            i + 1,
            shown(value)
        ))),
    }
}
