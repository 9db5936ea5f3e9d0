//! cloud_sync_save, cloud_sync_test, cloud_sync_delete, cloud_sync_rekey.

use crate::connections;
use crate::error::Result;
use crate::remote::ConnInfo;
use crate::secret::{Keyring, SecretString};
use crate::sqlite::{Call, Output};

pub fn save(call: &Call) -> Result<Output> {
    let name = call.text(0, "name")?;
    let connection_string = SecretString::new(call.text(1, "connection_string")?);
    let keyring = Keyring::from_env()?;
    let actor = call.actor();
    let id = connections::save(
        &call.db,
        &keyring,
        &name,
        &connection_string,
        actor.as_deref(),
    )?;
    Ok(Output::Int(id))
}

/// Accepts a saved connection's name (its test is recorded) or a connection string (names
/// cannot contain `=` or `/`; nothing is recorded).
pub fn test(call: &Call) -> Result<Output> {
    let target = SecretString::new(call.text(0, "name or connection string")?);
    let report = if connections::validate_name(target.expose()).is_ok() {
        connections::test_saved(&call.db, target.expose(), call.actor().as_deref())?
    } else {
        connections::test(&ConnInfo::parse(target.expose())?)?
    };
    Ok(Output::Text(report.to_string()))
}

pub fn delete(call: &Call) -> Result<Output> {
    let name = call.text(0, "name")?;
    connections::delete(&call.db, &name, call.actor().as_deref())?;
    Ok(Output::Int(1))
}

pub fn rekey(call: &Call) -> Result<Output> {
    let keyring = Keyring::from_env()?;
    let count = connections::rekey(&call.db, &keyring, call.actor().as_deref())?;
    Ok(Output::Int(count))
}
