//! cloud_sync_schedule(name, options_json), cloud_sync_unschedule(name).

use crate::error::Result;
use crate::jobs::schedule;
use crate::sqlite::{Call, Output};

pub fn schedule(call: &Call) -> Result<Output> {
    let name = call.text(0, "name")?;
    let options = call.text(1, "options JSON")?;
    Ok(Output::Text(
        schedule::schedule(&call.db, &name, &options, call.actor().as_deref())?.to_string(),
    ))
}

pub fn unschedule(call: &Call) -> Result<Output> {
    let name = call.text(0, "name")?;
    Ok(Output::Text(
        schedule::unschedule(&call.db, &name)?.to_string(),
    ))
}
