//! What a remote table declares beyond its columns and primary key, as the Postgres catalog
//! describes it: the defaults, unique constraints and indexes, plain indexes, foreign keys and
//! CHECKs of a table an import creates locally. Indexes with a predicate, on expressions, of
//! another kind than btree, with INCLUDE columns or a non-default collation, exclusion
//! constraints and CHECKs are "not created" notes, with their definition.

use postgres::types::Type;
use postgres::Transaction;

use super::session::remote_error;
use crate::error::Result;
use crate::mapping::{ForeignKey, ForeignKeyAction, Index, IndexColumn};

/// The rules of one remote table, and what cannot cross, as notes.
#[derive(Debug, Default)]
pub struct CatalogRules {
    /// Column, default expression as `pg_get_expr()` writes it.
    pub defaults: Vec<(String, String)>,
    pub indexes: Vec<Index>,
    /// With the schema of the referenced table.
    pub foreign_keys: Vec<(String, ForeignKey)>,
    pub not_created: Vec<String>,
}

/// Reads the rules of `remote` (a quoted `"schema"."table"`).
pub fn read(tx: &mut Transaction, remote: &str) -> Result<CatalogRules> {
    let mut rules = CatalogRules::default();
    let failed =
        |e: &postgres::Error| remote_error(&format!("cannot read the constraints of {remote}"), e);
    for row in tx
        .query_typed(DEFAULTS, &[(&remote, Type::TEXT)])
        .map_err(|e| failed(&e))?
    {
        rules.defaults.push((row.get(0), row.get(1)));
    }
    for row in tx
        .query_typed(INDEXES, &[(&remote, Type::TEXT)])
        .map_err(|e| failed(&e))?
    {
        let (name, unique, contype, plain, definition): (
            String,
            bool,
            Option<String>,
            bool,
            String,
        ) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        let columns: Vec<String> = row.get(5);
        let descending: Vec<bool> = row.get(6);
        if !plain || contype.as_deref() == Some("x") {
            rules.not_created.push(format!(
                "{definition}: only btree indexes on plain columns, without predicate, INCLUDE \
                 or collation, are translated"
            ));
            continue;
        }
        rules.indexes.push(Index {
            name: Some(name),
            columns: columns
                .into_iter()
                .zip(descending)
                .map(|(name, descending)| IndexColumn { name, descending })
                .collect(),
            unique,
            constraint: contype.as_deref() == Some("u"),
        });
    }
    for row in tx
        .query_typed(FOREIGN_KEYS, &[(&remote, Type::TEXT)])
        .map_err(|e| failed(&e))?
    {
        let columns: Vec<String> = row.get(3);
        let definition: String = row.get(8);
        let (on_delete, on_update): (String, String) = (row.get(5), row.get(6));
        let full_match = row.get::<_, String>(7) == "f" && columns.len() > 1;
        match (
            ForeignKeyAction::parse(&on_delete),
            ForeignKeyAction::parse(&on_update),
        ) {
            (Some(on_delete), Some(on_update)) if !full_match => rules.foreign_keys.push((
                row.get(2),
                ForeignKey {
                    name: Some(row.get(0)),
                    columns,
                    parent: row.get(1),
                    parent_columns: row.get(4),
                    on_delete,
                    on_update,
                },
            )),
            _ => rules
                .not_created
                .push(format!("{definition}: SQLite has no MATCH FULL")),
        }
    }
    for row in tx
        .query_typed(CHECKS, &[(&remote, Type::TEXT)])
        .map_err(|e| failed(&e))?
    {
        rules.not_created.push(format!(
            "{}: expression CHECKs are not translated",
            row.get::<_, String>(0)
        ));
    }
    Ok(rules)
}

const DEFAULTS: &str = "
    SELECT a.attname::text, pg_get_expr(d.adbin, d.adrelid)
    FROM pg_attrdef d
    JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
    WHERE d.adrelid = to_regclass($1) AND a.attgenerated = '' AND NOT a.attisdropped
    ORDER BY a.attnum";

/// Every index but the primary key's: name, unique, the constraint it backs (`u` unique, `x`
/// exclusion), whether it is plain (btree, key columns only, no predicate or expression,
/// default collations), its definition, its columns and which are descending.
const INDEXES: &str = "
    SELECT ic.relname::text, i.indisunique, con.contype::text,
           am.amname = 'btree' AND i.indpred IS NULL AND i.indexprs IS NULL
             AND i.indnkeyatts = i.indnatts
             AND NOT EXISTS (SELECT 1 FROM unnest(i.indcollation::oid[]) c WHERE c NOT IN (0, 100)),
           pg_get_indexdef(i.indexrelid),
           array(SELECT a.attname::text
                 FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                 ORDER BY k.n),
           array(SELECT (o & 1) = 1 FROM unnest(i.indoption::int2[]) WITH ORDINALITY o(o, n)
                 ORDER BY n)
    FROM pg_index i
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_am am ON am.oid = ic.relam
    LEFT JOIN pg_constraint con
      ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('u', 'x')
    WHERE i.indrelid = to_regclass($1) AND NOT i.indisprimary
    ORDER BY 1";

/// Foreign keys: name, referenced table and schema, columns, referenced columns, actions on
/// delete and update, match type, definition.
const FOREIGN_KEYS: &str = "
    SELECT con.conname::text, pc.relname::text, pn.nspname::text,
           array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(attnum, n)
                 JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                 ORDER BY k.n),
           array(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(attnum, n)
                 JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                 ORDER BY k.n),
           con.confdeltype::text, con.confupdtype::text, con.confmatchtype::text,
           pg_get_constraintdef(con.oid)
    FROM pg_constraint con
    JOIN pg_class pc ON pc.oid = con.confrelid
    JOIN pg_namespace pn ON pn.oid = pc.relnamespace
    WHERE con.conrelid = to_regclass($1) AND con.contype = 'f'
    ORDER BY 1";

const CHECKS: &str = "
    SELECT pg_get_constraintdef(oid) FROM pg_constraint
    WHERE conrelid = to_regclass($1) AND contype = 'c' ORDER BY conname";
