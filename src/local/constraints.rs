//! What a local table declares beyond its columns and primary key, as SQLite describes it: the
//! constant defaults, unique constraints and indexes, plain indexes and foreign keys that an
//! export can create remotely, and a "not created" note for each thing that cannot be (an
//! expression default, an expression CHECK, a partial or expression index, an index with a
//! collation Postgres does not have).

use crate::error::Result;
use crate::mapping::{Constant, ForeignKey, ForeignKeyAction, Index, IndexColumn};
use crate::sql_text::quote;
use crate::sqlite::{Db, Param};

use super::tables::{self, LocalTable};

/// The rules of one local table that can cross, and the notes about those that cannot.
#[derive(Debug, Default)]
pub struct LocalRules {
    /// Column, constant (columns whose default is NULL have none).
    pub defaults: Vec<(String, Constant)>,
    /// Unique constraints, unique indexes and plain indexes, not the primary key's.
    pub indexes: Vec<Index>,
    pub foreign_keys: Vec<ForeignKey>,
    pub not_created: Vec<String>,
}

/// Reads the rules of `table`.
pub fn read(db: &Db, table: &LocalTable) -> Result<LocalRules> {
    let mut rules = LocalRules::default();
    read_defaults(db, table, &mut rules)?;
    read_indexes(db, &table.name, &mut rules)?;
    read_foreign_keys(db, &table.name, &mut rules)?;
    let sql = db
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            &[Param::Text(&table.name)],
            |row| Ok(row.text(0)),
        )?
        .flatten()
        .unwrap_or_default();
    for check in checks(&sql) {
        rules
            .not_created
            .push(format!("{check}: expression CHECKs are not translated"));
    }
    Ok(rules)
}

fn read_defaults(db: &Db, table: &LocalTable, rules: &mut LocalRules) -> Result<()> {
    let mut stmt = db.prepare(
        "SELECT name, dflt_value FROM pragma_table_xinfo(?1, 'main')
         WHERE dflt_value IS NOT NULL AND hidden < 2 ORDER BY cid",
    )?;
    stmt.bind_all(&[Param::Text(&table.name)])?;
    while stmt.step()? {
        let column = stmt.text(0).unwrap_or_default();
        match Constant::from_sqlite(&stmt.text(1).unwrap_or_default()) {
            Ok(Some(constant)) => rules.defaults.push((column, constant)),
            Ok(None) => {}
            Err(why) => rules.not_created.push(format!("column {column}: {why}")),
        }
    }
    Ok(())
}

fn read_indexes(db: &Db, table: &str, rules: &mut LocalRules) -> Result<()> {
    let mut list = db.prepare(
        "SELECT l.name, l.\"unique\", l.origin, l.partial, s.sql
         FROM pragma_index_list(?1, 'main') l
         LEFT JOIN sqlite_schema s ON s.type = 'index' AND s.name = l.name
         WHERE l.origin <> 'pk' ORDER BY l.seq DESC",
    )?;
    list.bind_all(&[Param::Text(table)])?;
    while list.step()? {
        let name = list.text(0).unwrap_or_default();
        let origin = list.text(2).unwrap_or_default();
        // A UNIQUE constraint's index has no SQL of its own.
        let shown = list
            .text(4)
            .unwrap_or_else(|| format!("UNIQUE index {name}"));
        if list.int(3) != 0 {
            rules
                .not_created
                .push(format!("{shown}: partial indexes are not translated"));
            continue;
        }
        let mut columns = Vec::new();
        let mut why_not = None;
        let mut info = db.prepare(
            "SELECT cid, name, \"desc\", coll FROM pragma_index_xinfo(?1, 'main')
             WHERE key ORDER BY seqno",
        )?;
        info.bind_all(&[Param::Text(&name)])?;
        while info.step()? {
            let column = info.text(1).unwrap_or_default();
            let collation = info.text(3).unwrap_or_default();
            if info.int(0) < 0 {
                why_not = Some("indexes on expressions are not translated".to_string());
            } else if !collation.eq_ignore_ascii_case("BINARY") {
                why_not = Some(format!(
                    "column {column} is indexed with collation {collation}, which Postgres \
                     does not have"
                ));
            }
            columns.push(IndexColumn {
                name: column,
                descending: info.int(2) != 0,
            });
        }
        match why_not {
            Some(why) => rules.not_created.push(format!("{shown}: {why}")),
            None => rules.indexes.push(Index {
                name: (origin == "c").then_some(name),
                columns,
                unique: list.int(1) != 0,
                constraint: origin == "u",
            }),
        }
    }
    Ok(())
}

fn read_foreign_keys(db: &Db, table: &str, rules: &mut LocalRules) -> Result<()> {
    let mut stmt = db.prepare(
        "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete
         FROM pragma_foreign_key_list(?1, 'main') ORDER BY id DESC, seq",
    )?;
    stmt.bind_all(&[Param::Text(table)])?;
    let mut rows: Vec<(i64, String, String, Option<String>, String, String)> = Vec::new();
    while stmt.step()? {
        rows.push((
            stmt.int(0),
            stmt.text(1).unwrap_or_default(),
            stmt.text(2).unwrap_or_default(),
            stmt.text(3),
            stmt.text(4).unwrap_or_default(),
            stmt.text(5).unwrap_or_default(),
        ));
    }
    let mut ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    ids.dedup();
    for id in ids {
        let parts: Vec<_> = rows.iter().filter(|r| r.0 == id).collect();
        let (_, parent, _, _, on_update, on_delete) = parts[0];
        let columns: Vec<String> = parts.iter().map(|r| r.2.clone()).collect();
        let shown = format!("FOREIGN KEY ({}) REFERENCES {parent}", columns.join(", "));
        let mut parent_columns: Vec<String> = parts.iter().filter_map(|r| r.3.clone()).collect();
        if parent_columns.is_empty() {
            // REFERENCES parent, without columns: the parent's primary key.
            parent_columns = match tables::describe(db, parent) {
                Ok(p) => p.key().iter().map(|c| c.name.clone()).collect(),
                Err(_) => Vec::new(),
            };
        }
        if parent_columns.len() != columns.len() {
            rules.not_created.push(format!(
                "{shown}: the referenced table does not exist or has no primary key"
            ));
            continue;
        }
        match (
            ForeignKeyAction::parse(on_delete),
            ForeignKeyAction::parse(on_update),
        ) {
            (Some(on_delete), Some(on_update)) => rules.foreign_keys.push(ForeignKey {
                name: None,
                columns,
                parent: parent.clone(),
                parent_columns,
                on_delete,
                on_update,
            }),
            _ => rules.not_created.push(format!(
                "{shown}: ON DELETE {on_delete} ON UPDATE {on_update} is not translated"
            )),
        }
    }
    Ok(())
}

/// How many rows of `table` have all the columns of `fk` set and no parent row with those
/// values: the rows a foreign key check refuses.
pub fn orphans(db: &Db, table: &str, fk: &ForeignKey) -> Result<u64> {
    let set: Vec<String> = fk
        .columns
        .iter()
        .map(|c| format!("c.{} IS NOT NULL", quote(c)))
        .collect();
    let matched: Vec<String> = fk
        .columns
        .iter()
        .zip(&fk.parent_columns)
        .map(|(c, p)| format!("p.{} = c.{}", quote(p), quote(c)))
        .collect();
    let sql = format!(
        "SELECT count(*) FROM {} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})",
        quote(table),
        set.join(" AND "),
        quote(&fk.parent),
        matched.join(" AND ")
    );
    Ok(db.query_row(&sql, &[], |row| Ok(row.int(0)))?.unwrap_or(0) as u64)
}

/// The `CHECK (...)` clauses of a CREATE TABLE statement, as written.
fn checks(sql: &str) -> Vec<String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if let Some(after) = skip_quoted(&chars, i) {
            i = after;
        } else if chars[i].is_alphabetic() || chars[i] == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if !word.eq_ignore_ascii_case("CHECK") {
                continue;
            }
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            let open = i;
            let mut depth = 0;
            while i < chars.len() {
                if let Some(after) = skip_quoted(&chars, i) {
                    i = after;
                    continue;
                }
                depth += match chars[i] {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                i += 1;
                if depth == 0 {
                    break;
                }
            }
            let body: String = chars[open..i].iter().collect();
            found.push(format!("CHECK {body}"));
        } else {
            i += 1;
        }
    }
    found
}

/// Where a quoted name, string or comment starting at `i` ends; `None` when none starts there.
fn skip_quoted(chars: &[char], i: usize) -> Option<usize> {
    let end_of = |close: &str, from: usize| {
        let close: Vec<char> = close.chars().collect();
        (from..chars.len())
            .find(|&j| chars[j..].starts_with(&close))
            .map_or(chars.len(), |j| j + close.len())
    };
    match (chars[i], chars.get(i + 1)) {
        (q @ ('\'' | '"' | '`'), _) => {
            // A doubled quote inside is part of it: the run goes on after it.
            let mut j = i + 1;
            loop {
                j = end_of(&q.to_string(), j);
                if chars.get(j) != Some(&q) {
                    return Some(j);
                }
                j += 1;
            }
        }
        ('[', _) => Some(end_of("]", i + 1)),
        ('-', Some('-')) => Some(end_of("\n", i + 2)),
        ('/', Some('*')) => Some(end_of("*/", i + 2)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_are_found_outside_names_strings_and_comments() {
        let sql = "CREATE TABLE t (\"check\" int CHECK (\"check\" > 0), -- CHECK (no)
                   note text DEFAULT 'CHECK (no)', [CHECK] int, /* check(no) */
                   CONSTRAINT positive check((a + b) > length(')')))";
        assert_eq!(
            checks(sql),
            vec![
                "CHECK (\"check\" > 0)".to_string(),
                "CHECK ((a + b) > length(')'))".to_string()
            ]
        );
        assert!(checks("CREATE TABLE checked (checks int)").is_empty());
    }
}
