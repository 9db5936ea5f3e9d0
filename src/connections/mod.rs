//! Saved connections: stored encrypted, shown redacted, opened only to connect. Who saved,
//! replaced, deleted and last tested each is kept beside them (`history`).

mod history;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::local::schema;
use crate::remote::{ConnInfo, Session};
use crate::secret::{Keyring, SecretString};
use crate::shown;
use crate::sqlite::{Db, Param};
use crate::sync::tracking;

pub const MAX_NAME_LEN: usize = 64;

/// Names are short identifiers, so a name can never be mistaken for a connection string.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "a connection name is 1 to {MAX_NAME_LEN} letters, digits, '_', '-' or '.'"
        )))
    }
}

/// Validates, encrypts and stores `connection_string` under `name`, replacing any connection
/// of that name, on behalf of the connection's `actor`. Returns the connection's id.
pub fn save(
    db: &Db,
    keyring: &Keyring,
    name: &str,
    connection_string: &SecretString,
    actor: Option<&str>,
) -> Result<i64> {
    validate_name(name)?;
    let info = ConnInfo::parse(connection_string.expose())?;
    let sealed = keyring.seal(name, connection_string)?;
    schema::require_writable(db, "save a connection")?;
    db.atomically(|| {
        // Saved again with another target: what was exported before is not there.
        let earlier = db.query_row(
            "SELECT id, display FROM cloud_sync_connections WHERE name = ?1",
            &[Param::Text(name)],
            |r| Ok((r.int(0), r.text(1).unwrap_or_default())),
        )?;
        if let Some((id, display)) = &earlier {
            if *display != info.display() {
                tracking::forget_connection(db, *id)?;
            }
        }
        db.execute(
            "INSERT INTO cloud_sync_connections
               (name, connection_string_encrypted, display, created_by, updated_by)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (name) DO UPDATE SET
               connection_string_encrypted = excluded.connection_string_encrypted,
               display = excluded.display,
               updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
               updated_by = excluded.updated_by",
            &[
                Param::Text(name),
                Param::Text(&sealed),
                Param::Text(&info.display()),
                Param::text_or_null(actor),
            ],
        )?;
        let action = if earlier.is_some() {
            history::Action::Replaced
        } else {
            history::Action::Created
        };
        history::record(db, name, action, actor)?;
        id_of(db, name)?.ok_or_else(|| Error::local("the saved connection vanished"))
    })
}

fn id_of(db: &Db, name: &str) -> Result<Option<i64>> {
    db.query_row(
        "SELECT id FROM cloud_sync_connections WHERE name = ?1",
        &[Param::Text(name)],
        |row| Ok(row.int(0)),
    )
}

/// The id of the saved connection `name`; an unknown name is an error that lists the saved ones.
pub fn id(db: &Db, name: &str) -> Result<i64> {
    validate_name(name)?;
    schema::require_installed(db)?;
    id_of(db, name)?.ok_or_else(|| unknown(db, name))
}

/// Every saved connection as (id, name), ordered by name.
pub fn list(db: &Db) -> Result<Vec<(i64, String)>> {
    schema::require_installed(db)?;
    let mut stmt = db.prepare("SELECT id, name FROM cloud_sync_connections ORDER BY name")?;
    let mut all = Vec::new();
    while stmt.step()? {
        all.push((stmt.int(0), stmt.text(1).unwrap_or_default()));
    }
    Ok(all)
}

fn unknown(db: &Db, name: &str) -> Error {
    let names: Vec<String> = saved_names(db).unwrap_or_default();
    let known = if names.is_empty() {
        "no connection is saved yet; save one with cloud_sync_save(name, connection_string)".into()
    } else {
        format!("saved connections: {}", names.join(", "))
    };
    Error::invalid(format!(
        "unknown connection {}: {known}",
        shown::quoted(name, '\'')
    ))
}

fn saved_names(db: &Db) -> Result<Vec<String>> {
    let mut stmt = db.prepare("SELECT name FROM cloud_sync_connections ORDER BY name")?;
    let mut names = Vec::new();
    while stmt.step()? {
        names.extend(stmt.text(0));
    }
    Ok(names)
}

/// Deletes the connection `name` on behalf of the connection's `actor`. Jobs that used it keep
/// its name in their history, and the connection events its deletion.
pub fn delete(db: &Db, name: &str, actor: Option<&str>) -> Result<()> {
    validate_name(name)?;
    schema::require_writable(db, "delete a connection")?;
    let id = id_of(db, name)?.ok_or_else(|| unknown(db, name))?;
    db.atomically(|| {
        tracking::forget_connection(db, id)?;
        db.execute(
            "DELETE FROM cloud_sync_connections WHERE id = ?1",
            &[Param::Int(id)],
        )?;
        history::record(db, name, history::Action::Deleted, actor)
    })
}

/// Connects to the saved connection `name` and says what it found (the server, TLS, the round
/// trip), as JSON. The outcome, success or error, is recorded on the connection as its last
/// test by the connection's `actor`, unless the database is read-only; an error is still the
/// result.
pub fn test_saved(db: &Db, name: &str, actor: Option<&str>) -> Result<Value> {
    let outcome = Keyring::from_env()
        .and_then(|keyring| open(db, &keyring, name))
        .and_then(|info| test(&info));
    let recorded = history::record_test(db, name, actor, &outcome);
    // The test's own error comes first: recording it is secondary.
    let report = outcome?;
    recorded?;
    Ok(report)
}

/// Connects to `info` and says what it found, as JSON, with the target in its redacted form.
pub fn test(info: &ConnInfo) -> Result<Value> {
    let mut session = Session::connect(info)?;
    let mut report = session.probe()?;
    report["target"] = info.display().into();
    Ok(report)
}

/// Opens the saved connection `name` and parses it.
pub fn open(db: &Db, keyring: &Keyring, name: &str) -> Result<ConnInfo> {
    validate_name(name)?;
    schema::require_installed(db)?;
    let sealed = db
        .query_row(
            "SELECT connection_string_encrypted FROM cloud_sync_connections WHERE name = ?1",
            &[Param::Text(name)],
            |row| Ok(row.text(0).unwrap_or_default()),
        )?
        .ok_or_else(|| unknown(db, name))?;
    let plain = keyring.open(name, &sealed)?;
    ConnInfo::parse(plain.expose())
}

/// Re-encrypts every saved connection under the current key, opening each with the current or
/// the previous key, on behalf of the connection's `actor` (who the rows were last updated by).
/// All or nothing: one connection that does not open changes nothing.
pub fn rekey(db: &Db, keyring: &Keyring, actor: Option<&str>) -> Result<i64> {
    keyring.current()?;
    schema::require_writable(db, "re-encrypt connections")?;
    db.atomically(|| {
        let mut rows = Vec::new();
        {
            let mut stmt = db.prepare(
                "SELECT id, name, connection_string_encrypted FROM cloud_sync_connections ORDER BY id",
            )?;
            while stmt.step()? {
                rows.push((stmt.int(0), stmt.text(1).unwrap_or_default(), stmt.text(2).unwrap_or_default()));
            }
        }
        for (id, name, sealed) in &rows {
            let plain = keyring.open(name, sealed)?;
            let resealed = keyring.seal(name, &plain)?;
            db.execute(
                "UPDATE cloud_sync_connections
                 SET connection_string_encrypted = ?1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
                     updated_by = ?3
                 WHERE id = ?2",
                &[Param::Text(&resealed), Param::Int(*id), Param::text_or_null(actor)],
            )?;
        }
        Ok(rows.len() as i64)
    })
}

#[cfg(test)]
mod tests {
    use super::validate_name;

    #[test]
    fn names_are_short_identifiers() {
        for good in ["prod", "neon-main", "a.b_c", &"x".repeat(64)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "has space",
            "host=x",
            "postgres://u@h",
            &"x".repeat(65),
            "é",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
