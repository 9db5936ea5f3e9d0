//! The constraints and indexes of the local tables an import creates, from what the remote
//! table declares (`remote::constraints`): NOT NULL and constant defaults on the columns, unique
//! constraints and foreign keys (`DEFERRABLE INITIALLY DEFERRED`) in the CREATE TABLE, and the
//! other indexes built once the rows are in. Existing local tables are never altered. What does
//! not translate is a "not created" note of the table's summary.

use postgres::Transaction;

use crate::error::Result;
use crate::local::constraints as local_rules;
use crate::local::tables;
use crate::mapping::{self, Constant, ForeignKey, PgType};
use crate::remote::catalog::RemoteColumn;
use crate::remote::constraints as remote_rules;
use crate::sqlite::{Db, Param};

/// What the import declares on a table it creates.
#[derive(Debug, Default)]
pub struct LocalRules {
    /// What follows each column's type, in column order.
    pub clauses: Vec<String>,
    /// UNIQUE and FOREIGN KEY table constraints.
    pub table_constraints: Vec<String>,
    /// CREATE INDEX statements, run after the rows are in.
    pub indexes: Vec<String>,
    pub not_created: Vec<String>,
}

/// The new local table `name`, the remote `"schema"."table"` `remote`, its columns and their
/// local `declared` types, its primary key, and `created`: the tables this import creates.
pub struct NewTable<'a> {
    pub name: &'a str,
    pub remote: &'a str,
    pub schema: &'a str,
    pub columns: &'a [&'a RemoteColumn],
    pub declared: &'a [String],
    pub key: &'a [String],
    pub created: &'a [String],
}

/// The rules of the new local table; `claimed`: names this import's tables and earlier indexes
/// take, to which each index planned here adds its own.
pub fn plan(
    tx: &mut Transaction,
    db: &Db,
    table: &NewTable,
    claimed: &mut Vec<String>,
) -> Result<LocalRules> {
    let read = remote_rules::read(tx, table.remote)?;
    let mut rules = LocalRules {
        not_created: read.not_created,
        ..LocalRules::default()
    };
    for (column, declared) in table.columns.iter().zip(table.declared) {
        let mut clause = String::new();
        if column.not_null {
            clause.push_str(" NOT NULL");
        }
        if let Some((_, written)) = read.defaults.iter().find(|(c, _)| c == &column.name) {
            match default_for(table, column, declared, written) {
                Ok(Some(expression)) => clause.push_str(&format!(" DEFAULT {expression}")),
                Ok(None) => {}
                Err(why) => rules
                    .not_created
                    .push(format!("column {}: {why}", column.name)),
            }
        }
        rules.clauses.push(clause);
    }
    for index in &read.indexes {
        let name = index.name.as_deref().unwrap_or_default();
        if index.constraint {
            rules
                .table_constraints
                .push(mapping::sqlite_table_constraint(Ok(index)));
        } else if name_taken(db, name)? {
            rules.not_created.push(format!(
                "index {name}: the local database already has a table or index of that name"
            ));
        } else if let Some(other) = claimed.iter().find(|c| c.eq_ignore_ascii_case(name)) {
            rules.not_created.push(format!(
                "index {name}: this import creates {other} already, and SQLite names tables and \
                 indexes without regard to case"
            ));
        } else {
            claimed.push(name.to_string());
            rules
                .indexes
                .push(mapping::sqlite_index(table.name, index, name));
        }
    }
    for (schema, fk) in &read.foreign_keys {
        match why_not_referenced(db, table, schema, fk)? {
            Some(why) => rules.not_created.push(format!(
                "FOREIGN KEY ({}) REFERENCES {schema}.{}: {why}",
                fk.columns.join(", "),
                fk.parent
            )),
            None => rules
                .table_constraints
                .push(mapping::sqlite_table_constraint(Err(fk))),
        }
    }
    Ok(rules)
}

/// The local default of `column` from the remote one (`written` by `pg_get_expr()`); `None` for
/// the sequence of a single integer key, which SQLite's INTEGER PRIMARY KEY numbers itself.
fn default_for(
    table: &NewTable,
    column: &RemoteColumn,
    declared: &str,
    written: &str,
) -> Result<Option<String>, String> {
    let numbers_itself = table.key == [column.name.clone()]
        && declared.eq_ignore_ascii_case("INTEGER")
        && written.starts_with("nextval(");
    if numbers_itself {
        return Ok(None);
    }
    match Constant::from_postgres(written)? {
        None => Ok(None),
        Some(constant) => constant
            .for_sqlite(PgType::parse(&column.spelling), mapping::affinity(declared))
            .map(Some),
    }
}

/// Whether `name` is already a table, index, view or trigger of the local database.
fn name_taken(db: &Db, name: &str) -> Result<bool> {
    Ok(db
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE name = ?1 COLLATE NOCASE",
            &[Param::Text(name)],
            |_| Ok(()),
        )?
        .is_some())
}

/// Why the foreign key `fk` cannot be declared locally, `None` when it can: its parent must be
/// in the same schema and be a table this import creates (whose remote key or unique constraint
/// comes along), or a local table keyed or unique on exactly the referenced columns (SQLite
/// refuses writes to a child whose parent key has no unique index).
fn why_not_referenced(
    db: &Db,
    table: &NewTable,
    schema: &str,
    fk: &ForeignKey,
) -> Result<Option<String>> {
    if schema != table.schema {
        return Ok(Some(format!(
            "the referenced table is in another schema than {}",
            table.schema
        )));
    }
    if table.created.contains(&fk.parent) {
        return Ok(None);
    }
    if !tables::eligible(db)?.contains(&fk.parent) {
        return Ok(Some(
            "the referenced table is neither local nor created by this import".into(),
        ));
    }
    let parent = tables::describe(db, &fk.parent)?;
    let mut wanted: Vec<&str> = fk.parent_columns.iter().map(String::as_str).collect();
    wanted.sort_unstable();
    let mut key: Vec<&str> = parent.key().iter().map(|c| c.name.as_str()).collect();
    key.sort_unstable();
    let unique = local_rules::read(db, &parent)?.indexes.iter().any(|i| {
        let mut columns = i.column_names();
        columns.sort_unstable();
        i.unique && columns == wanted
    });
    Ok((key != wanted && !unique).then(|| {
        "the local referenced table has no primary key or unique index on exactly the \
         referenced columns"
            .to_string()
    }))
}
