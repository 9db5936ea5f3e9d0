//! Starting and stopping a tracking: `cloud_sync_track` records the table and creates its three
//! triggers, `cloud_sync_untrack` drops them with the table's pending changes and watermarks.
//! The trigger SQL is built by pure functions, so its exact text is tested here.

use serde_json::{json, Value};

use super::{all, find, fingerprint, integrity, trigger_name, Tracked, KINDS};
use crate::error::{Error, Result};
use crate::local::schema;
use crate::local::tables::{self, LocalTable};
use crate::shown;
use crate::sql_text::quote;
use crate::sqlite::{Db, Param};

/// Starts tracking `table`, or re-tracks it when it changed since it was tracked. Returns what
/// `cloud_sync_track` shows.
pub fn track(db: &Db, table: &str) -> Result<Value> {
    schema::require_writable(db, "track a table")?;
    require_trackable(db, table)?;
    let local = tables::describe(db, table)?;
    if local.key().is_empty() {
        return Err(Error::invalid(format!(
            "table {} cannot be tracked: tracking needs a primary key to name rows (rowids \
             can change on VACUUM); give the table one",
            shown::quoted(table, '"')
        )));
    }
    let (key_columns, columns) = fingerprint(&local);
    db.atomically(|| {
        let status = match find(db, table)? {
            Some(tracked) if integrity(db, &tracked).is_ok() => {
                return Ok(described(&tracked, &local, "already tracked"));
            }
            Some(tracked) => {
                forget(db, &tracked)?;
                "re-tracked"
            }
            None => "tracked",
        };
        // Triggers of an earlier tracking that followed the table here through a rename.
        for stray in stray_triggers(db, table)? {
            db.exec(&drop_trigger(&stray))?;
        }
        db.execute(
            "INSERT INTO cloud_sync_tracked_tables (table_name, key_columns, columns)
             VALUES (?1, ?2, ?3)",
            &[
                Param::Text(table),
                Param::Text(&key_columns),
                Param::Text(&columns),
            ],
        )?;
        let tracked = find(db, table)?.ok_or_else(|| Error::local("the tracked table vanished"))?;
        db.exec(&create_triggers(
            tracked.id,
            &tracked.table,
            &key_names(&local),
        ))?;
        Ok(described(&tracked, &local, status))
    })
}

/// Only the application's ordinary tables can be tracked: the ones an export covers.
fn require_trackable(db: &Db, table: &str) -> Result<()> {
    if tables::eligible(db)?.iter().any(|t| t == table) {
        return Ok(());
    }
    let kind = db
        .query_row(
            "SELECT type FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
            &[Param::Text(table)],
            |r| Ok(r.text(0).unwrap_or_default()),
        )?
        .map(|kind| match kind.as_str() {
            "virtual" => "a virtual table".to_string(),
            "shadow" => "the shadow table of a virtual table".to_string(),
            "view" => "a view".to_string(),
            _ if table.starts_with("cloud_sync_") => "one of cloud_sync's own tables".to_string(),
            _ => "one of SQLite's own tables".to_string(),
        });
    Err(Error::invalid(match kind {
        Some(kind) => format!(
            "{} cannot be tracked: it is {kind}; only the application's ordinary tables can",
            shown::quoted(table, '"')
        ),
        None => format!(
            "table {} does not exist in the main database",
            shown::quoted(table, '"')
        ),
    }))
}

/// The primary key's column names, in key order: the order the triggers record a key in.
fn key_names(local: &LocalTable) -> Vec<&str> {
    local.key().iter().map(|c| c.name.as_str()).collect()
}

fn described(tracked: &Tracked, local: &LocalTable, status: &str) -> Value {
    json!({
        "table": tracked.table,
        "tracking_id": tracked.id,
        "key": key_names(local),
        "triggers": KINDS.iter().map(|k| trigger_name(k, &tracked.table)).collect::<Vec<_>>(),
        "status": status,
    })
}

/// cloud_sync triggers on `table` (the ones a rename carried along).
fn stray_triggers(db: &Db, table: &str) -> Result<Vec<String>> {
    let mut stmt = db.prepare(
        "SELECT name FROM sqlite_schema
         WHERE type = 'trigger' AND tbl_name = ?1 AND name LIKE 'cloud\\_sync\\_%' ESCAPE '\\'",
    )?;
    stmt.bind_all(&[Param::Text(table)])?;
    let mut names = Vec::new();
    while stmt.step()? {
        names.extend(stmt.text(0));
    }
    Ok(names)
}

/// Stops tracking `table`: its triggers, pending changes and watermarks go. Works also when the
/// table was renamed or dropped meanwhile.
pub fn untrack(db: &Db, table: &str) -> Result<Value> {
    schema::require_writable(db, "untrack a table")?;
    db.atomically(|| {
        let tracked = find(db, table)?.ok_or_else(|| {
            let tracked: Vec<String> = all(db)
                .map(|all| all.into_iter().map(|t| t.table).collect())
                .unwrap_or_default();
            Error::invalid(format!(
                "table {} is not tracked: the tracked tables are {}",
                shown::quoted(table, '"'),
                if tracked.is_empty() {
                    "none".to_string()
                } else {
                    tracked.join(", ")
                }
            ))
        })?;
        let dropped = forget(db, &tracked)?;
        Ok(json!({"table": table, "untracked": true, "changes_dropped": dropped}))
    })
}

/// Drops a tracking's triggers, changes, watermarks and record. Returns the changes dropped.
fn forget(db: &Db, tracked: &Tracked) -> Result<i64> {
    for kind in KINDS {
        db.exec(&drop_trigger_if_exists(&trigger_name(kind, &tracked.table)))?;
    }
    let id = [Param::Int(tracked.id)];
    let dropped = db.execute("DELETE FROM cloud_sync_changes WHERE tracking_id = ?1", &id)?;
    db.execute(
        "DELETE FROM cloud_sync_watermarks WHERE tracking_id = ?1",
        &id,
    )?;
    db.execute("DELETE FROM cloud_sync_tracked_tables WHERE id = ?1", &id)?;
    Ok(dropped)
}

/// The three triggers of tracking `tracking_id` on `table`, whose primary key is `key` (in key
/// order). Each appends (tracking id, quoted key, kind); an update of a key column is the delete
/// of the old key and the insert of the new one.
fn create_triggers(tracking_id: i64, table: &str, key: &[&str]) -> String {
    let key_of = |row: &str| {
        key.iter()
            .map(|c| format!("quote({row}.{})", quote(c)))
            .collect::<Vec<_>>()
            .join(" || ',' || ")
    };
    let key_changed = key
        .iter()
        .map(|c| format!("OLD.{0} IS NOT NEW.{0}", quote(c)))
        .collect::<Vec<_>>()
        .join(" OR ");
    let (id, quoted_table) = (tracking_id, quote(table));
    let insert = "INSERT INTO cloud_sync_changes (tracking_id, key, kind)";
    let name = |kind: &str| quote(&trigger_name(kind, table));
    format!(
        "CREATE TRIGGER main.{ins} AFTER INSERT ON {quoted_table} BEGIN
           {insert} VALUES ({id}, {new}, 'insert');
         END;
         CREATE TRIGGER main.{upd} AFTER UPDATE ON {quoted_table} BEGIN
           {insert} SELECT {id}, {old}, 'delete' WHERE {key_changed};
           {insert} VALUES ({id}, {new}, CASE WHEN {key_changed} THEN 'insert' ELSE 'update' END);
         END;
         CREATE TRIGGER main.{del} AFTER DELETE ON {quoted_table} BEGIN
           {insert} VALUES ({id}, {old}, 'delete');
         END;",
        ins = name("insert"),
        upd = name("update"),
        del = name("delete"),
        new = key_of("NEW"),
        old = key_of("OLD"),
    )
}

fn drop_trigger(name: &str) -> String {
    format!("DROP TRIGGER main.{}", quote(name))
}

fn drop_trigger_if_exists(name: &str) -> String {
    format!("DROP TRIGGER IF EXISTS main.{}", quote(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_record_a_one_column_key() {
        assert_eq!(
            create_triggers(7, "items", &["id"]),
            "CREATE TRIGGER main.\"cloud_sync_insert_items\" AFTER INSERT ON \"items\" BEGIN
           INSERT INTO cloud_sync_changes (tracking_id, key, kind) VALUES (7, quote(NEW.\"id\"), 'insert');
         END;
         CREATE TRIGGER main.\"cloud_sync_update_items\" AFTER UPDATE ON \"items\" BEGIN
           INSERT INTO cloud_sync_changes (tracking_id, key, kind) SELECT 7, quote(OLD.\"id\"), 'delete' WHERE OLD.\"id\" IS NOT NEW.\"id\";
           INSERT INTO cloud_sync_changes (tracking_id, key, kind) VALUES (7, quote(NEW.\"id\"), CASE WHEN OLD.\"id\" IS NOT NEW.\"id\" THEN 'insert' ELSE 'update' END);
         END;
         CREATE TRIGGER main.\"cloud_sync_delete_items\" AFTER DELETE ON \"items\" BEGIN
           INSERT INTO cloud_sync_changes (tracking_id, key, kind) VALUES (7, quote(OLD.\"id\"), 'delete');
         END;"
        );
    }

    #[test]
    fn triggers_join_a_composite_key_in_key_order_and_quote_every_name() {
        assert_eq!(
            create_triggers(2, "my \"t\"", &["b", "a\"x"]),
            "CREATE TRIGGER main.\"cloud_sync_insert_my \"\"t\"\"\" AFTER INSERT ON \"my \"\"t\"\"\" BEGIN
           INSERT INTO cloud_sync_changes (tracking_id, key, kind) VALUES (2, quote(NEW.\"b\") || ',' || quote(NEW.\"a\"\"x\"), 'insert');
         END;
         CREATE TRIGGER main.\"cloud_sync_update_my \"\"t\"\"\" AFTER UPDATE ON \"my \"\"t\"\"\" BEGIN
           INSERT INTO cloud_sync_changes (tracking_id, key, kind) SELECT 2, quote(OLD.\"b\") || ',' || quote(OLD.\"a\"\"x\"), 'delete' WHERE OLD.\"b\" IS NOT NEW.\"b\" OR OLD.\"a\"\"x\" IS NOT NEW.\"a\"\"x\";
           INSERT INTO cloud_sync_changes (tracking_id, key, kind) VALUES (2, quote(NEW.\"b\") || ',' || quote(NEW.\"a\"\"x\"), CASE WHEN OLD.\"b\" IS NOT NEW.\"b\" OR OLD.\"a\"\"x\" IS NOT NEW.\"a\"\"x\" THEN 'insert' ELSE 'update' END);
         END;
         CREATE TRIGGER main.\"cloud_sync_delete_my \"\"t\"\"\" AFTER DELETE ON \"my \"\"t\"\"\" BEGIN
           INSERT INTO cloud_sync_changes (tracking_id, key, kind) VALUES (2, quote(OLD.\"b\") || ',' || quote(OLD.\"a\"\"x\"), 'delete');
         END;"
        );
    }

    #[test]
    fn triggers_are_dropped_from_main_by_quoted_name() {
        assert_eq!(
            drop_trigger("cloud_sync_insert_old"),
            "DROP TRIGGER main.\"cloud_sync_insert_old\""
        );
        assert_eq!(
            drop_trigger_if_exists(&trigger_name("update", "a\"b")),
            "DROP TRIGGER IF EXISTS main.\"cloud_sync_update_a\"\"b\""
        );
    }
}
