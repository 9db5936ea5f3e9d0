//! The SQL surface: each function reads its arguments, calls the domain, returns the result.

pub mod connections;
pub mod export;
pub mod import;
pub mod jobs;
pub mod meta;
pub mod report;
pub mod tracking;
pub mod worker;

use crate::error::{Error, Result};
use crate::sqlite::Call;

/// Argument `i` as dry_run: the integer 0 (the real `job`) or 1 (a dry run).
fn dry_run(call: &Call, i: usize, job: &str) -> Result<bool> {
    match call
        .is_integer(i)
        .then(|| call.int(i, "dry_run"))
        .transpose()?
    {
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        _ => Err(Error::invalid(format!(
            "argument {} (dry_run) must be the integer 0 (full {job}) or 1 (dry run)",
            i + 1
        ))),
    }
}
