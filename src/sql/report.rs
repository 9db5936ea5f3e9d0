//! cloud_sync_report(job_id [, format]).

use crate::error::Result;
use crate::jobs::report;
use crate::sqlite::{Call, Output};

pub fn report(call: &Call) -> Result<Output> {
    let id = call.int(0, "job id")?;
    let format = if call.arg_count() > 1 {
        call.text(1, "format")?
    } else {
        "json".to_string()
    };
    Ok(Output::Text(report::render(&call.db, id, &format)?))
}
