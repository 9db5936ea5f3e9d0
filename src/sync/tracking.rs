//! Change tracking: three triggers per tracked table append the key of every changed row to
//! `cloud_sync_changes`, and per connection and remote schema a watermark says which of those
//! changes the remote already has. An incremental export reads the changes after its watermark.
//!
//! The triggers are plain SQL (`quote()` of the key columns), so every writer of the file
//! records changes, whether or not it has cloud_sync loaded.

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::local::schema;
use crate::local::tables::{self, LocalTable};
use crate::sql_text::{quote, sql_literal};
use crate::sqlite::{Db, Param, Value as SqlValue};

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

/// Starts tracking `table`, or re-tracks it when it changed since it was tracked. Returns what
/// `cloud_sync_track` shows.
pub fn track(db: &Db, table: &str) -> Result<Value> {
    schema::require_writable(db, "track a table")?;
    require_trackable(db, table)?;
    let local = tables::describe(db, table)?;
    if local.key().is_empty() {
        return Err(Error::invalid(format!(
            "table {table} cannot be tracked: tracking needs a primary key to name rows (rowids \
             can change on VACUUM); give the table one"
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
            db.exec(&format!("DROP TRIGGER main.{}", quote(&stray)))?;
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
        db.exec(&triggers_sql(&tracked, &local))?;
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
            "{table} cannot be tracked: it is {kind}; only the application's ordinary tables can"
        ),
        None => format!("table \"{table}\" does not exist in the main database"),
    }))
}

fn described(tracked: &Tracked, local: &LocalTable, status: &str) -> Value {
    json!({
        "table": tracked.table,
        "tracking_id": tracked.id,
        "key": local.key().iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
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

/// The three triggers. Each appends (tracking id, quoted key, kind); an update of a key column
/// is the delete of the old key and the insert of the new one.
fn triggers_sql(tracked: &Tracked, local: &LocalTable) -> String {
    let key = local.key();
    let key_of = |row: &str| {
        key.iter()
            .map(|c| format!("quote({row}.{})", quote(&c.name)))
            .collect::<Vec<_>>()
            .join(" || ',' || ")
    };
    let key_changed = key
        .iter()
        .map(|c| format!("OLD.{0} IS NOT NEW.{0}", quote(&c.name)))
        .collect::<Vec<_>>()
        .join(" OR ");
    let (id, table) = (tracked.id, quote(&tracked.table));
    let insert = "INSERT INTO cloud_sync_changes (tracking_id, key, kind)";
    let name = |kind: &str| quote(&trigger_name(kind, &tracked.table));
    format!(
        "CREATE TRIGGER main.{ins} AFTER INSERT ON {table} BEGIN
           {insert} VALUES ({id}, {new}, 'insert');
         END;
         CREATE TRIGGER main.{upd} AFTER UPDATE ON {table} BEGIN
           {insert} SELECT {id}, {old}, 'delete' WHERE {key_changed};
           {insert} VALUES ({id}, {new}, CASE WHEN {key_changed} THEN 'insert' ELSE 'update' END);
         END;
         CREATE TRIGGER main.{del} AFTER DELETE ON {table} BEGIN
           {insert} VALUES ({id}, {old}, 'delete');
         END;",
        ins = name("insert"),
        upd = name("update"),
        del = name("delete"),
        new = key_of("NEW"),
        old = key_of("OLD"),
    )
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
                "table {table} is not tracked: the tracked tables are {}",
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
        db.exec(&format!(
            "DROP TRIGGER IF EXISTS main.{}",
            quote(&trigger_name(kind, &tracked.table))
        ))?;
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

/// Whether the table is still the one tracked: it exists, with the same columns and key, and
/// carries its three triggers. The error says what happened and how to fix it.
pub fn integrity(db: &Db, tracked: &Tracked) -> Result<()> {
    let table = &tracked.table;
    let retrack = format!(
        "run SELECT cloud_sync_track({}) to track it as it is now (its next export is then a \
         full one)",
        sql_literal(table)
    );
    let exists = db
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            &[Param::Text(table)],
            |_| Ok(()),
        )?
        .is_some();
    if !exists {
        let untrack = format!("SELECT cloud_sync_untrack({})", sql_literal(table));
        // A rename carries the triggers along: they name the table's new name.
        let renamed_to = db.query_row(
            "SELECT tbl_name FROM sqlite_schema WHERE type = 'trigger' AND name = ?1",
            &[Param::Text(&trigger_name("insert", table))],
            |r| Ok(r.text(0).unwrap_or_default()),
        )?;
        return Err(Error::invalid(match renamed_to {
            Some(new) => format!(
                "tracked table {table} was renamed to {new}: run {untrack}, then SELECT \
                 cloud_sync_track({}) (its next export is then a full one)",
                sql_literal(&new)
            ),
            None => format!(
                "tracked table {table} no longer exists: it was dropped (or renamed) while \
                 tracked; run {untrack}, and SELECT cloud_sync_track('<its new name>') if it \
                 was renamed"
            ),
        }));
    }
    let (key_columns, columns) = fingerprint(&tables::describe(db, table)?);
    if key_columns != tracked.key_columns || columns != tracked.columns {
        return Err(Error::invalid(format!(
            "tracked table {table} was altered since it was tracked (its columns or key \
             changed), so rows changed by the alteration were not recorded: {retrack}"
        )));
    }
    let mut stmt = db.prepare(
        "SELECT count(*) FROM sqlite_schema
         WHERE type = 'trigger' AND tbl_name = ?1 AND name IN (?2, ?3, ?4)",
    )?;
    let names: Vec<String> = KINDS.iter().map(|k| trigger_name(k, table)).collect();
    stmt.bind_all(&[
        Param::Text(table),
        Param::Text(&names[0]),
        Param::Text(&names[1]),
        Param::Text(&names[2]),
    ])?;
    stmt.step()?;
    if stmt.int(0) != 3 {
        return Err(Error::invalid(format!(
            "tracked table {table} lost change-tracking triggers ({} expected), so changes may \
             not have been recorded: {retrack}",
            names.join(", ")
        )));
    }
    Ok(())
}

/// The highest change sequence this snapshot holds: every change up to it is visible, because
/// SQLite has one writer at a time and the sequence only grows.
pub fn high_water(db: &Db) -> Result<i64> {
    Ok(db
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'cloud_sync_changes'",
            &[],
            |r| Ok(r.int(0)),
        )?
        .unwrap_or(0))
}

/// The last change of `tracking_id` exported to this connection and remote schema.
pub fn watermark(
    db: &Db,
    tracking_id: i64,
    connection_id: i64,
    schema: &str,
) -> Result<Option<i64>> {
    db.query_row(
        "SELECT seq FROM cloud_sync_watermarks
         WHERE tracking_id = ?1 AND connection_id = ?2 AND schema = ?3",
        &[
            Param::Int(tracking_id),
            Param::Int(connection_id),
            Param::Text(schema),
        ],
        |r| Ok(r.int(0)),
    )
}

/// The changes of one tracked table after one watermark, up to the snapshot's high water.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub tracking_id: i64,
    pub after: i64,
    pub through: i64,
}

impl Window {
    const WHERE: &'static str = "tracking_id = ?1 AND seq > ?2 AND seq <= ?3";

    fn params(&self) -> [Param<'static>; 3] {
        [
            Param::Int(self.tracking_id),
            Param::Int(self.after),
            Param::Int(self.through),
        ]
    }

    /// (change records, distinct keys) in the window.
    pub fn counts(&self, db: &Db) -> Result<(u64, u64)> {
        let sql = format!(
            "SELECT count(*), count(DISTINCT key) FROM cloud_sync_changes WHERE {}",
            Self::WHERE
        );
        Ok(db
            .query_row(&sql, &self.params(), |r| {
                Ok((r.int(0) as u64, r.int(1) as u64))
            })?
            .unwrap_or((0, 0)))
    }

    /// Calls `each` with the decoded key of every row changed in the window, once per key.
    pub fn for_each_key(
        &self,
        db: &Db,
        width: usize,
        mut each: impl FnMut(&[KeyValue]) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = db.prepare(&format!(
            "SELECT DISTINCT key FROM cloud_sync_changes WHERE {}",
            Self::WHERE
        ))?;
        stmt.bind_all(&self.params())?;
        while stmt.step()? {
            let text = stmt.text(0).unwrap_or_default();
            let key = decode_key(&text, width).ok_or_else(|| {
                Error::local(format!(
                    "cloud_sync_changes holds a key that is not in the format its triggers \
                     write ({}): untrack and track the table again",
                    text.chars().take(80).collect::<String>()
                ))
            })?;
            each(&key)?;
        }
        Ok(())
    }
}

/// One value of a recorded key, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl KeyValue {
    pub fn as_sql(&self) -> SqlValue<'_> {
        match self {
            KeyValue::Null => SqlValue::Null,
            KeyValue::Integer(i) => SqlValue::Integer(*i),
            KeyValue::Real(r) => SqlValue::Real(*r),
            KeyValue::Text(t) => SqlValue::Text(t.as_bytes()),
            KeyValue::Blob(b) => SqlValue::Blob(b),
        }
    }
}

/// Parses what the triggers write: `width` SQL literals as `quote()` renders them (NULL,
/// integers, reals, 'text' with '' escapes, X'hex'), joined by ','. `None` when malformed.
pub fn decode_key(text: &str, width: usize) -> Option<Vec<KeyValue>> {
    let mut rest = text;
    let mut values = Vec::with_capacity(width);
    loop {
        let (value, after) = literal(rest)?;
        values.push(value);
        match after.strip_prefix(',') {
            Some(next) => rest = next,
            None if after.is_empty() => break,
            None => return None,
        }
    }
    (values.len() == width).then_some(values)
}

/// One literal at the start of `text`, and what follows it.
fn literal(text: &str) -> Option<(KeyValue, &str)> {
    if let Some(after) = text.strip_prefix("NULL") {
        return Some((KeyValue::Null, after));
    }
    if let Some(body) = text.strip_prefix('\'') {
        let mut value = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '\'' {
                value.push(c);
            } else if body[i + 1..].starts_with('\'') {
                value.push('\'');
                chars.next();
            } else {
                return Some((KeyValue::Text(value), &body[i + 1..]));
            }
        }
        return None;
    }
    if let Some(body) = text.strip_prefix("X'") {
        let end = body.find('\'')?;
        let hex = &body[..end];
        if hex.len() % 2 != 0 {
            return None;
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        return Some((KeyValue::Blob(bytes), &body[end + 1..]));
    }
    let end = text.find(',').unwrap_or(text.len());
    let number = &text[..end];
    let value = match number.parse::<i64>() {
        Ok(i) => KeyValue::Integer(i),
        // quote() writes infinity as 9.0e+999, which parses to infinity as well.
        Err(_) => KeyValue::Real(number.parse::<f64>().ok()?),
    };
    Some((value, &text[end..]))
}

/// After the remote COMMIT of an export: the watermarks of the tables it exported move to the
/// snapshot's high water, unless their tracking or the connection's target changed meanwhile;
/// then changes every watermark has passed are pruned.
pub struct Advance<'a> {
    pub connection_id: i64,
    /// The redacted target the export went to: a connection re-saved elsewhere meanwhile
    /// keeps no watermark from it.
    pub target: &'a str,
    pub schema: &'a str,
    pub job_id: i64,
    pub through: i64,
}

impl Advance<'_> {
    pub fn save(&self, db: &Db, tracking_ids: &[i64]) -> Result<()> {
        db.atomically(|| {
            for &id in tracking_ids {
                db.execute(
                    "INSERT INTO cloud_sync_watermarks (tracking_id, connection_id, schema, seq, job_id)
                     SELECT ?1, ?2, ?3, ?4, ?5
                     WHERE EXISTS (SELECT 1 FROM cloud_sync_tracked_tables WHERE id = ?1)
                       AND EXISTS (SELECT 1 FROM cloud_sync_connections WHERE id = ?2 AND display = ?6)
                     ON CONFLICT (tracking_id, connection_id, schema) DO UPDATE SET
                       seq = max(seq, excluded.seq), job_id = excluded.job_id,
                       exported_at = excluded.exported_at",
                    &[
                        Param::Int(id),
                        Param::Int(self.connection_id),
                        Param::Text(self.schema),
                        Param::Int(self.through),
                        Param::Int(self.job_id),
                        Param::Text(self.target),
                    ],
                )?;
                db.execute(
                    "DELETE FROM cloud_sync_changes WHERE tracking_id = ?1
                       AND seq <= (SELECT min(seq) FROM cloud_sync_watermarks WHERE tracking_id = ?1)",
                    &[Param::Int(id)],
                )?;
            }
            Ok(())
        })
    }
}

/// A connection deleted or re-saved with another target: its watermarks no longer describe
/// what its remote holds.
pub fn forget_connection(db: &Db, connection_id: i64) -> Result<()> {
    db.execute(
        "DELETE FROM cloud_sync_watermarks WHERE connection_id = ?1",
        &[Param::Int(connection_id)],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{decode_key, KeyValue};

    #[test]
    fn keys_decode_from_what_quote_writes() {
        assert_eq!(decode_key("5", 1), Some(vec![KeyValue::Integer(5)]));
        assert_eq!(
            decode_key("'a,''b''',-2,X'00FF',NULL,1.5", 5),
            Some(vec![
                KeyValue::Text("a,'b'".into()),
                KeyValue::Integer(-2),
                KeyValue::Blob(vec![0, 255]),
                KeyValue::Null,
                KeyValue::Real(1.5),
            ])
        );
        assert_eq!(
            decode_key("9.0e+999", 1),
            Some(vec![KeyValue::Real(f64::INFINITY)])
        );
        assert_eq!(decode_key("'é'", 1), Some(vec![KeyValue::Text("é".into())]));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in ["", "'open", "5,6", "X'0'", "abc", "5;"] {
            assert_eq!(decode_key(bad, 1), None, "{bad}");
        }
        assert_eq!(decode_key("5", 2), None);
    }
}
