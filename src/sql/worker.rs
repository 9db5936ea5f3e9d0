//! cloud_sync_worker_start([options_json]), cloud_sync_worker_stop(), cloud_sync_worker_status().

use crate::error::Result;
use crate::jobs::worker;
use crate::sqlite::{Call, Output};

pub fn start(call: &Call) -> Result<Output> {
    let options = if call.arg_count() > 0 {
        Some(call.text(0, "options JSON")?)
    } else {
        None
    };
    Ok(Output::Text(
        worker::start(&call.db, options.as_deref())?.to_string(),
    ))
}

pub fn stop(call: &Call) -> Result<Output> {
    Ok(Output::Text(worker::stop(&call.db)?.to_string()))
}

pub fn status(call: &Call) -> Result<Output> {
    Ok(Output::Text(worker::status(&call.db)?.to_string()))
}
