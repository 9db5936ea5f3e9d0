//! What the remote database says about its tables: one table at a time, or every table of a
//! job at once (`Catalog`), in the statements of one batch.

use std::collections::HashMap;

use postgres::types::Type;
use postgres::Transaction;

use super::batch::{Answer, Step};
use super::session::remote_error;
use crate::error::{Error, Result};
use crate::sql_text::sql_literal;

pub struct RemoteColumn {
    pub name: String,
    /// `format_type()` of the column's type.
    pub spelling: String,
    pub not_null: bool,
    pub has_default: bool,
}

/// The columns and unique keys of several tables, and the relations of their schema, as
/// read by the three statements of `Catalog::steps` in one round trip.
#[derive(Default)]
pub struct Catalog {
    columns: HashMap<String, Vec<RemoteColumn>>,
    unique_keys: HashMap<String, Vec<Vec<String>>>,
    /// Every relation of the schema (tables, indexes, sequences, views): the names taken.
    pub relations: Vec<String>,
    /// The ordinary and partitioned tables of the schema, by name.
    pub tables: Vec<String>,
}

impl Catalog {
    /// The steps that read the catalog of `remotes` (quoted `"schema"."table"` names) and the
    /// relations of `schema`, for a batch; `Catalog::read` takes their answers.
    pub fn steps(remotes: &[String], schema: &str) -> Vec<Step> {
        let [columns, keys, relations] = Catalog::statements(remotes, schema);
        vec![
            Step::plain("cannot read the columns of the remote tables", columns),
            Step::plain("cannot read the indexes of the remote tables", keys),
            Step::plain(
                &format!("cannot list the relations of schema {schema}"),
                relations,
            ),
        ]
    }

    /// The statements of `steps`. Names travel as literals, so that the statements can go in
    /// a simple-query batch.
    fn statements(remotes: &[String], schema: &str) -> [String; 3] {
        let names = format!(
            "unnest(ARRAY[{}]::text[]) r(name)",
            remotes
                .iter()
                .map(|r| sql_literal(r))
                .collect::<Vec<_>>()
                .join(", ")
        );
        [
            // A table without columns still gives one row (NULL attname): it exists.
            format!(
                "SELECT r.name, a.attname::text, format_type(a.atttypid, a.atttypmod), \
                 a.attnotnull, a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' \
                 FROM {names} JOIN pg_class c ON c.oid = to_regclass(r.name) \
                 LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 \
                 AND NOT a.attisdropped ORDER BY r.name, a.attnum"
            ),
            format!(
                "SELECT r.name, array_to_json(array(SELECT a.attname::text FROM unnest(i.indkey) k \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k))::text \
                 FROM {names} JOIN pg_index i ON i.indrelid = to_regclass(r.name) \
                 WHERE i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL"
            ),
            format!(
                "SELECT c.relname::text, c.relkind IN ('r', 'p') FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {} ORDER BY 1",
                sql_literal(schema)
            ),
        ]
    }

    /// The catalog from the answers to `statements`, in order.
    pub fn read(answers: &[Answer]) -> Result<Catalog> {
        let [columns, keys, relations] = answers else {
            return Err(Error::remote("the catalog batch gave no answer"));
        };
        let mut catalog = Catalog::default();
        for row in &columns.rows {
            let table = row.get(0).unwrap_or_default().to_string();
            let found = catalog.columns.entry(table).or_default();
            if let Some(name) = row.get(1) {
                found.push(RemoteColumn {
                    name: name.to_string(),
                    spelling: row.get(2).unwrap_or_default().to_string(),
                    not_null: row.get(3) == Some("t"),
                    has_default: row.get(4) == Some("t"),
                });
            }
        }
        for row in &keys.rows {
            let key: Vec<String> = serde_json::from_str(row.get(1).unwrap_or("[]"))
                .map_err(|e| Error::remote(format!("an index's columns could not be read: {e}")))?;
            let table = row.get(0).unwrap_or_default().to_string();
            catalog.unique_keys.entry(table).or_default().push(key);
        }
        for row in &relations.rows {
            let name = row.get(0).unwrap_or_default().to_string();
            if row.get(1) == Some("t") {
                catalog.tables.push(name.clone());
            }
            catalog.relations.push(name);
        }
        Ok(catalog)
    }

    /// The columns of `remote`, `None` when it does not exist.
    pub fn columns(&self, remote: &str) -> Option<&[RemoteColumn]> {
        self.columns.get(remote).map(Vec::as_slice)
    }

    /// Whether a unique index without predicate covers exactly `key` (in any order).
    pub fn has_unique_key(&self, remote: &str, key: &[&str]) -> bool {
        let mut wanted: Vec<&str> = key.to_vec();
        wanted.sort_unstable();
        self.unique_keys.get(remote).is_some_and(|keys| {
            keys.iter().any(|columns| {
                let mut columns: Vec<&str> = columns.iter().map(String::as_str).collect();
                columns.sort_unstable();
                columns == wanted
            })
        })
    }
}

/// The columns of `remote` (a quoted `"schema"."table"`), `None` when it does not exist.
pub fn columns(tx: &mut Transaction, remote: &str) -> Result<Option<Vec<RemoteColumn>>> {
    let exists = tx
        .query_typed_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[(&remote, Type::TEXT)],
        )
        .map_err(|e| remote_error(&format!("cannot look up {remote}"), &e))?
        .get::<_, bool>(0);
    if !exists {
        return Ok(None);
    }
    let rows = tx
        .query_typed(
            "SELECT attname::text, format_type(atttypid, atttypmod), attnotnull,
                    atthasdef OR attidentity <> '' OR attgenerated <> ''
             FROM pg_attribute
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped
             ORDER BY attnum",
            &[(&remote, Type::TEXT)],
        )
        .map_err(|e| remote_error(&format!("cannot read the columns of {remote}"), &e))?;
    Ok(Some(
        rows.iter()
            .map(|r| RemoteColumn {
                name: r.get(0),
                spelling: r.get(1),
                not_null: r.get(2),
                has_default: r.get(3),
            })
            .collect(),
    ))
}

/// The primary key columns of `remote`, in key order (empty when it has none).
pub fn primary_key(tx: &mut Transaction, remote: &str) -> Result<Vec<String>> {
    let rows = tx
        .query_typed(
            "SELECT a.attname::text FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, n)
             JOIN pg_attribute a ON a.attnum = k.attnum
             WHERE i.indrelid = to_regclass($1) AND i.indisprimary AND a.attrelid = i.indrelid
             ORDER BY k.n",
            &[(&remote, Type::TEXT)],
        )
        .map_err(|e| remote_error(&format!("cannot read the primary key of {remote}"), &e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
