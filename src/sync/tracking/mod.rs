//! Change tracking: three triggers per tracked table append the key of every changed row to
//! `cloud_sync_changes`, and per connection and remote schema a watermark says which of those
//! changes the remote already has. An incremental export reads the changes after its watermark.
//!
//! The triggers are plain SQL (`quote()` of the key columns), so every writer of the file
//! records changes, whether or not it has cloud_sync loaded.
//!
//! This module owns what a tracking is: its row in `cloud_sync_tracked_tables` (`Tracked`) and
//! the names of its three triggers. The rest is one module a job: `triggers` starts and stops a
//! tracking (and writes the trigger SQL), `integrity` tells whether the table is still the one
//! tracked, `watermarks` reads the changes after a watermark and moves it after an export,
//! `keys` decodes the key text the triggers write.

mod integrity;
mod keys;
mod triggers;
mod watermarks;

use serde_json::{json, Value};

use crate::error::Result;
use crate::local::tables::LocalTable;
use crate::sqlite::Db;

pub use integrity::integrity;
pub use keys::KeyValue;
pub use triggers::{track, untrack};
pub use watermarks::{forget_connection, high_water, watermark, Advance, Window};

/// The kinds of change, one trigger each.
const KINDS: [&str; 3] = ["insert", "update", "delete"];

/// A tracked table as recorded by `cloud_sync_track`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    pub id: i64,
    pub table: String,
    /// The key and columns when tracking began (JSON text), to notice a table altered since.
    key_columns: String,
    columns: String,
}

/// The name of the trigger that records changes of `kind` to `table`.
fn trigger_name(kind: &str, table: &str) -> String {
    format!("cloud_sync_{kind}_{table}")
}

/// Key and columns as recorded: names, declared types and key positions.
fn fingerprint(local: &LocalTable) -> (String, String) {
    let key: Vec<&str> = local.key().iter().map(|c| c.name.as_str()).collect();
    let columns: Vec<Value> = local
        .columns
        .iter()
        .map(|c| json!([c.name, c.decl_type, c.pk_position]))
        .collect();
    (json!(key).to_string(), Value::from(columns).to_string())
}

/// Every tracked table.
pub fn all(db: &Db) -> Result<Vec<Tracked>> {
    let mut stmt = db.prepare(
        "SELECT id, table_name, key_columns, columns FROM cloud_sync_tracked_tables ORDER BY table_name",
    )?;
    let mut found = Vec::new();
    while stmt.step()? {
        found.push(Tracked {
            id: stmt.int(0),
            table: stmt.text(1).unwrap_or_default(),
            key_columns: stmt.text(2).unwrap_or_default(),
            columns: stmt.text(3).unwrap_or_default(),
        });
    }
    Ok(found)
}

fn find(db: &Db, table: &str) -> Result<Option<Tracked>> {
    Ok(all(db)?.into_iter().find(|t| t.table == table))
}
