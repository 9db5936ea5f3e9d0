//! What the remote database says about its tables.

use postgres::types::Type;
use postgres::Transaction;

use super::session::remote_error;
use crate::error::Result;

pub struct RemoteColumn {
    pub name: String,
    /// `format_type()` of the column's type.
    pub spelling: String,
    pub not_null: bool,
    pub has_default: bool,
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

/// Whether a unique index without predicate covers exactly `key` (in any order).
pub fn has_unique_key(tx: &mut Transaction, remote: &str, key: &[&str]) -> Result<bool> {
    let rows = tx
        .query_typed(
            "SELECT array(SELECT a.attname::text FROM unnest(i.indkey) k
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k)
             FROM pg_index i
             WHERE i.indrelid = to_regclass($1) AND i.indisunique
               AND i.indpred IS NULL AND i.indexprs IS NULL",
            &[(&remote, Type::TEXT)],
        )
        .map_err(|e| remote_error(&format!("cannot read the indexes of {remote}"), &e))?;
    let mut wanted: Vec<&str> = key.to_vec();
    wanted.sort_unstable();
    Ok(rows.iter().any(|row| {
        let mut columns: Vec<String> = row.get(0);
        columns.sort_unstable();
        columns == wanted
    }))
}

/// The ordinary and partitioned tables of `schema`, by name.
pub fn tables(tx: &mut Transaction, schema: &str) -> Result<Vec<String>> {
    let rows = tx
        .query_typed(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY 1",
            &[(&schema, Type::TEXT)],
        )
        .map_err(|e| remote_error(&format!("cannot list the tables of schema {schema}"), &e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
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
