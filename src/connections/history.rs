//! What happened to saved connections, and who did it: every save, replacement and deletion
//! (`cloud_sync_connection_events`, which outlives a deleted connection), and each saved
//! connection's last test (on its row). Nothing here holds a connection string: a name, an
//! actor, and a test's result or error, whose messages never hold a secret.

use serde_json::{json, Value};

use crate::error::Result;
use crate::local::schema;
use crate::sqlite::{Db, Param};
use crate::sync::now_iso;

/// What happened to a saved connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Replaced,
    Deleted,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Replaced => "replaced",
            Action::Deleted => "deleted",
        }
    }
}

/// Records that `actor` (`None`: no one named) did `action` to the connection `name`, in the
/// caller's transaction.
pub fn record(db: &Db, name: &str, action: Action, actor: Option<&str>) -> Result<()> {
    db.execute(
        "INSERT INTO cloud_sync_connection_events (at, connection_name, action, actor)
         VALUES (?1, ?2, ?3, ?4)",
        &[
            Param::Text(&now_iso()),
            Param::Text(name),
            Param::Text(action.as_str()),
            Param::text_or_null(actor),
        ],
    )?;
    Ok(())
}

/// What a test's outcome records: its JSON result, or `{"ok": false, "error": <message>}`.
fn last_test(outcome: &Result<Value>) -> String {
    match outcome {
        Ok(report) => report.to_string(),
        Err(e) => json!({"ok": false, "error": e.to_string()}).to_string(),
    }
}

/// Records `outcome` as the last test of the saved connection `name`, by `actor`. A database
/// this connection cannot write (read-only, query-only, or of an earlier version opened only
/// read-only since) records nothing; neither does a name no connection has.
pub fn record_test(
    db: &Db,
    name: &str,
    actor: Option<&str>,
    outcome: &Result<Value>,
) -> Result<()> {
    if !schema::is_writable(db)? || !schema::is_current(db)? {
        return Ok(());
    }
    db.execute(
        "UPDATE cloud_sync_connections
         SET last_tested_at = ?2, last_tested_by = ?3, last_test = ?4
         WHERE name = ?1",
        &[
            Param::Text(name),
            Param::Text(&now_iso()),
            Param::text_or_null(actor),
            Param::Text(&last_test(outcome)),
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn a_test_records_its_result_or_its_error() {
        assert_eq!(
            last_test(&Ok(json!({"ok": true, "verified": true}))),
            r#"{"ok":true,"verified":true}"#
        );
        assert_eq!(
            last_test(&Err(Error::invalid("the server said \"no\""))),
            r#"{"error":"the server said \"no\"","ok":false}"#
        );
    }
}
