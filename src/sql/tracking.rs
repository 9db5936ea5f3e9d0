//! cloud_sync_track(table), cloud_sync_untrack(table).

use crate::error::Result;
use crate::sqlite::{Call, Output};
use crate::sync::tracking;

pub fn track(call: &Call) -> Result<Output> {
    let table = call.text(0, "table")?;
    Ok(Output::Text(tracking::track(&call.db, &table)?.to_string()))
}

pub fn untrack(call: &Call) -> Result<Output> {
    let table = call.text(0, "table")?;
    Ok(Output::Text(
        tracking::untrack(&call.db, &table)?.to_string(),
    ))
}
