//! The application's tables as SQLite describes them.

use crate::error::{Error, Result};
use crate::shown;
use crate::sqlite::{Db, Param};

#[derive(Debug, Clone)]
pub struct LocalColumn {
    pub name: String,
    /// The declared type as written (`""` when none).
    pub decl_type: String,
    pub not_null: bool,
    pub has_default: bool,
    /// 1-based position in the primary key, 0 when not part of it.
    pub pk_position: i64,
}

#[derive(Debug, Clone)]
pub struct LocalTable {
    pub name: String,
    /// Stored columns in declaration order; generated columns are left out (they are computed
    /// locally and cannot be written back).
    pub columns: Vec<LocalColumn>,
    pub generated: Vec<String>,
    /// False for a `WITHOUT ROWID` table: its rows have no rowid, and its key is never NULL.
    pub has_rowid: bool,
}

impl LocalTable {
    /// The primary key's columns, in key order.
    pub fn key(&self) -> Vec<&LocalColumn> {
        let mut key: Vec<&LocalColumn> =
            self.columns.iter().filter(|c| c.pk_position > 0).collect();
        key.sort_by_key(|c| c.pk_position);
        key
    }
}

/// Ordinary tables of `main` that cloud_sync may sync: not SQLite's own, not cloud_sync's, not
/// virtual tables or their shadow tables. In name order.
pub fn eligible(db: &Db) -> Result<Vec<String>> {
    let mut stmt = db
        .prepare(
            "SELECT name FROM pragma_table_list
             WHERE schema = 'main' AND type = 'table'
               AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
               AND name NOT LIKE 'cloud\\_sync\\_%' ESCAPE '\\'
             ORDER BY name",
        )
        .map_err(|e| {
            Error::local(format!(
                "cannot list tables (cloud_sync needs SQLite 3.37 or newer): {e}"
            ))
        })?;
    let mut names = Vec::new();
    while stmt.step()? {
        names.extend(stmt.text(0));
    }
    Ok(names)
}

/// The eligible tables that `tables` (all when `None`) and `exclude` select, in name order. A
/// name in any of these lists, or in the `other` named options, that is not an eligible table
/// is an error naming it and the tables there are.
pub fn select(
    db: &Db,
    tables: Option<&[String]>,
    exclude: &[String],
    other: &[(&str, &[String])],
) -> Result<Vec<String>> {
    let eligible = eligible(db)?;
    let named = [("tables", tables.unwrap_or_default()), ("exclude", exclude)];
    for (option, names) in named.iter().chain(other) {
        if let Some(unknown) = names.iter().find(|n| !eligible.contains(n)) {
            return Err(Error::invalid(format!(
                "unknown table {} in option {option}: the local tables cloud_sync can sync are {}",
                shown::quoted(unknown, '"'),
                if eligible.is_empty() {
                    "none".to_string()
                } else {
                    eligible.join(", ")
                }
            )));
        }
    }
    Ok(eligible
        .into_iter()
        .filter(|t| tables.is_none_or(|names| names.contains(t)) && !exclude.contains(t))
        .collect())
}

/// `names` reordered so that a table comes after the tables its foreign keys reference, so rows
/// can be written table by table with foreign keys enforced. Tables in a cycle keep their order.
pub fn parents_first(db: &Db, names: &[String]) -> Result<Vec<String>> {
    let mut parents = Vec::new();
    for name in names {
        let mut stmt = db.prepare("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?1)")?;
        stmt.bind_all(&[Param::Text(name)])?;
        let mut referenced = Vec::new();
        while stmt.step()? {
            referenced.extend(stmt.text(0).filter(|t| t != name && names.contains(t)));
        }
        parents.push(referenced);
    }
    let mut ordered: Vec<String> = Vec::with_capacity(names.len());
    while ordered.len() < names.len() {
        let ready = (0..names.len()).find(|&i| {
            !ordered.contains(&names[i]) && parents[i].iter().all(|p| ordered.contains(p))
        });
        // A cycle: take the first remaining table and let the constraints speak.
        let next = ready.unwrap_or_else(|| {
            (0..names.len())
                .find(|&i| !ordered.contains(&names[i]))
                .expect("one remains")
        });
        ordered.push(names[next].clone());
    }
    Ok(ordered)
}

/// Describes one table of `main`.
pub fn describe(db: &Db, name: &str) -> Result<LocalTable> {
    let mut stmt = db.prepare(
        "SELECT name, type, \"notnull\", pk, hidden, dflt_value IS NOT NULL
         FROM pragma_table_xinfo(?1, 'main') ORDER BY cid",
    )?;
    stmt.bind_all(&[Param::Text(name)])?;
    let mut table = LocalTable {
        name: name.to_string(),
        columns: Vec::new(),
        generated: Vec::new(),
        has_rowid: true,
    };
    while stmt.step()? {
        let column = stmt.text(0).unwrap_or_default();
        // hidden: 2 and 3 are generated columns (virtual and stored).
        if stmt.int(4) >= 2 {
            table.generated.push(column);
            continue;
        }
        table.columns.push(LocalColumn {
            name: column,
            decl_type: stmt.text(1).unwrap_or_default(),
            not_null: stmt.int(2) != 0,
            pk_position: stmt.int(3),
            has_default: stmt.int(5) != 0,
        });
    }
    if table.columns.is_empty() {
        return Err(Error::invalid(format!(
            "there is no table {} in the main database",
            shown::quoted(name, '"')
        )));
    }
    let mut without_rowid =
        db.prepare("SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1")?;
    without_rowid.bind_all(&[Param::Text(name)])?;
    table.has_rowid = !(without_rowid.step()? && without_rowid.int(0) != 0);
    Ok(table)
}
