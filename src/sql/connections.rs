//! cloud_sync_save, cloud_sync_test, cloud_sync_delete, cloud_sync_rekey.

use crate::connections;
use crate::error::Result;
use crate::remote::{ConnInfo, Session};
use crate::secret::{Keyring, SecretString};
use crate::sqlite::{Call, Output};

pub fn save(call: &Call) -> Result<Output> {
    let name = call.text(0, "name")?;
    let connection_string = SecretString::new(call.text(1, "connection_string")?);
    let keyring = Keyring::from_env()?;
    let id = connections::save(&call.db, &keyring, &name, &connection_string)?;
    Ok(Output::Int(id))
}

/// Accepts a saved connection's name or a connection string (names cannot contain `=` or `/`).
pub fn test(call: &Call) -> Result<Output> {
    let target = SecretString::new(call.text(0, "name or connection string")?);
    let info = if connections::validate_name(target.expose()).is_ok() {
        connections::open(&call.db, &Keyring::from_env()?, target.expose())?
    } else {
        ConnInfo::parse(target.expose())?
    };
    let mut session = Session::connect(&info)?;
    let mut report = session.probe()?;
    report["target"] = info.display().into();
    Ok(Output::Text(report.to_string()))
}

pub fn delete(call: &Call) -> Result<Output> {
    connections::delete(&call.db, &call.text(0, "name")?)?;
    Ok(Output::Int(1))
}

pub fn rekey(call: &Call) -> Result<Output> {
    let count = connections::rekey(&call.db, &Keyring::from_env()?)?;
    Ok(Output::Int(count))
}
