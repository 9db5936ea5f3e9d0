//! cloud_sync_import(name [, dry_run [, strategy [, options_json]]]).

use crate::error::Result;
use crate::jobs;
use crate::sqlite::{Call, Output};

/// Reads the first `arity` arguments (the others take their defaults: a dry run, the strategy
/// of the options or skip, no options) and queues the import.
fn import(call: &Call, arity: usize) -> Result<Output> {
    let name = call.text(0, "connection name")?;
    let dry_run = if arity > 1 {
        super::dry_run(call, 1, "import")?
    } else {
        true
    };
    let strategy = if arity > 2 {
        Some(call.text(2, "strategy")?)
    } else {
        None
    };
    let options = if arity > 3 {
        Some(call.text(3, "options JSON")?)
    } else {
        None
    };
    Ok(Output::Int(jobs::enqueue_import(
        &call.db,
        &name,
        dry_run,
        strategy.as_deref(),
        options.as_deref(),
        call.actor().as_deref(),
    )?))
}

/// `cloud_sync_import(name)`: a dry run, strategy skip.
pub fn import_1(call: &Call) -> Result<Output> {
    import(call, 1)
}

pub fn import_2(call: &Call) -> Result<Output> {
    import(call, 2)
}

pub fn import_3(call: &Call) -> Result<Output> {
    import(call, 3)
}

pub fn import_4(call: &Call) -> Result<Output> {
    import(call, 4)
}
