//! cloud_sync_set_actor(name), cloud_sync_actor(): who acts on this connection.

use crate::audit;
use crate::error::{Error, Result};
use crate::sqlite::argument::shown;
use crate::sqlite::{Call, Output, Value};

/// Names who acts on this connection until it closes or this is called again; NULL clears it.
/// Returns what it set.
pub fn set_actor(call: &Call) -> Result<Output> {
    let actor = match call.value(0) {
        Value::Null => None,
        Value::Text(_) => Some(call.text(0, "actor")?),
        other => {
            return Err(Error::invalid(format!(
                "argument 1 (actor) must be text ({}) or NULL to clear it, not {}",
                audit::RULE,
                shown(other)
            )))
        }
    };
    if let Some(name) = &actor {
        audit::validate(name)?;
    }
    call.connection.set_actor(actor.clone());
    Ok(actor.map_or(Output::Null, Output::Text))
}

/// Who acts on this connection, or NULL.
pub fn actor(call: &Call) -> Result<Output> {
    Ok(call.actor().map_or(Output::Null, Output::Text))
}
