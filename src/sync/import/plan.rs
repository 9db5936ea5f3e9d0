//! Planning an import before anything is written: which tables it covers once the remote's
//! tables are known, and for each table its columns (how each is read remotely and stored
//! locally), the CREATE TABLE of one that only the remote has, its remote rows, and the problems
//! that keep it from being imported.

use postgres::Transaction;

use super::constraints::{self, NewTable};
use super::sql::{self, Column};
use crate::error::{Error, Result};
use crate::local::tables;
use crate::mapping::{self, Affinity, Incoming, ROWID_COLUMN};
use crate::remote::catalog::{self, Catalog, RemoteColumn};
use crate::sql_text::quote;
use crate::sqlite::Db;
use crate::sync::options::ImportOptions;
use crate::sync::PlanProblem;

pub struct ColumnPlan {
    pub name: String,
    pub incoming: Incoming,
    /// Selected as `::text`.
    pub cast: bool,
    pub affinity: Affinity,
    pub is_key: bool,
}

impl ColumnPlan {
    /// A local column declared `decl_type`, filled from a remote column of type `spelling`.
    fn new(name: &str, spelling: &str, decl_type: &str, is_key: bool) -> ColumnPlan {
        let (incoming, cast) = Incoming::of(spelling);
        ColumnPlan {
            name: name.to_string(),
            incoming,
            cast,
            affinity: mapping::affinity(decl_type),
            is_key,
        }
    }

    pub fn sql(&self) -> Column<'_> {
        Column {
            name: &self.name,
            cast: self.cast,
            is_key: self.is_key,
        }
    }
}

pub struct TablePlan {
    pub name: String,
    /// `"schema"."table"`.
    pub remote: String,
    pub columns: Vec<ColumnPlan>,
    /// `CREATE TABLE` for a table that exists only remotely.
    pub create: Option<String>,
    /// The CREATE INDEX statements of that table, run after its rows are in.
    pub indexes: Vec<String>,
    /// What that table declares remotely that is not created locally.
    pub not_created: Vec<String>,
    pub remote_rows: u64,
    pub problems: Vec<PlanProblem>,
}

impl TablePlan {
    pub fn key(&self) -> impl Iterator<Item = &ColumnPlan> {
        self.columns.iter().filter(|c| c.is_key)
    }

    /// The problem of a remote value that `column` cannot take unchanged, with the fix: the
    /// local type that keeps it, by the column_types option for a table the import creates.
    pub fn value_problem(&self, column: &ColumnPlan, why: &str) -> String {
        let keeps = match column.incoming {
            Incoming::Numeric => "TEXT",
            Incoming::Int2 | Incoming::Int4 | Incoming::Int8 => "INTEGER",
            _ => return why.to_string(),
        };
        if self.create.is_some() {
            let entry = serde_json::json!({ format!("{}.{}", self.name, column.name): keeps });
            format!("{why}: import it as {keeps} with the column_types option, {entry}")
        } else {
            format!("{why}: declare the local column {keeps} to keep it exactly")
        }
    }

    /// The columns as the statements name them, in the order they are read and written.
    pub fn sql_columns(&self) -> Vec<Column<'_>> {
        self.columns.iter().map(ColumnPlan::sql).collect()
    }
}

/// The names in the `tables`, `exclude` and `use_rowid` options that are not local tables:
/// with `create_tables`, each must be a remote table.
#[derive(Debug, Default)]
pub struct NotLocal {
    pub tables: Vec<String>,
    pub exclude: Vec<String>,
    pub use_rowid: Vec<String>,
}

/// Which tables an import covers, once the remote schema's tables are known.
#[derive(Debug, PartialEq, Eq)]
pub struct Scope {
    /// Selected local tables that the remote schema has: the tables imported into.
    pub existing: Vec<String>,
    /// Selected local tables that the remote schema lacks.
    pub local_only: Vec<String>,
    /// Remote tables without a local table, not excluded and, with a `tables` option, named in
    /// it: the tables `create_tables` creates.
    pub remote_only: Vec<String>,
    /// The first name in `tables`, then in `exclude`, then in `use_rowid`, that is neither a
    /// local nor a remote table, with the option that names it.
    pub unknown: Option<(&'static str, String)>,
}

/// `selected`: the local tables `select_tables` chose; `local`: every eligible local table.
pub fn scope(
    selected: &[String],
    local: &[String],
    remote: &[String],
    not_local: &NotLocal,
    options: &ImportOptions,
) -> Scope {
    let (existing, local_only) = selected.iter().cloned().partition(|t| remote.contains(t));
    let remote_only = remote
        .iter()
        .filter(|t| !local.contains(t) && !options.exclude.contains(t))
        .filter(|t| {
            options
                .tables
                .as_ref()
                .is_none_or(|named| named.contains(t))
        })
        .cloned()
        .collect();
    let nowhere = |option: &'static str, names: &[String]| {
        names
            .iter()
            .find(|t| !remote.contains(t))
            .map(|t| (option, t.clone()))
    };
    Scope {
        existing,
        local_only,
        remote_only,
        unknown: nowhere("tables", &not_local.tables)
            .or_else(|| nowhere("exclude", &not_local.exclude))
            .or_else(|| nowhere("use_rowid", &not_local.use_rowid)),
    }
}

/// The remote table `name` of `schema` is, quoted.
pub fn remote_name(schema: &str, name: &str) -> String {
    format!("{}.{}", quote(schema), quote(name))
}

/// A local table that the remote schema also has, as `catalog` describes it. A keyless one
/// named by `use_rowid` is matched by its rowid, which the remote keeps in its `rowid` column
/// (as an export with `use_rowid` wrote it).
pub fn plan_existing(
    catalog: &Catalog,
    db: &Db,
    name: &str,
    options: &ImportOptions,
) -> Result<TablePlan> {
    let local = tables::describe(db, name)?;
    let remote = remote_name(&options.schema, name);
    let remote_columns = catalog.columns(&remote).unwrap_or_default();
    let mut problems = Vec::new();
    let by_rowid = local.key().is_empty() && options.use_rowid.contains(&local.name);
    let key: Vec<&str> = if by_rowid {
        vec![ROWID_COLUMN]
    } else {
        local.key().iter().map(|c| c.name.as_str()).collect()
    };
    if key.is_empty() {
        problems.push(PlanProblem::table(
            "has no primary key, so remote rows cannot be matched with local ones: add one, or \
             opt in with the use_rowid option (the remote rowid column gives each row its rowid)",
        ));
    } else if !key
        .iter()
        .all(|k| remote_columns.iter().any(|r| r.name == *k))
        || !catalog.has_unique_key(&remote, &key)
    {
        problems.push(PlanProblem::table(format!(
            "the remote table's key differs from the local key ({}): rows cannot be matched",
            key.join(", ")
        )));
    }
    let single_integer_key =
        key.len() == 1 && !by_rowid && local.key()[0].decl_type.eq_ignore_ascii_case("INTEGER");
    let mut columns = Vec::new();
    if by_rowid {
        if let Some(r) = remote_columns.iter().find(|r| r.name == ROWID_COLUMN) {
            columns.push(ColumnPlan::new(ROWID_COLUMN, &r.spelling, "INTEGER", true));
        }
    }
    for column in &local.columns {
        match remote_columns.iter().find(|r| r.name == column.name) {
            Some(r) => columns.push(ColumnPlan::new(
                &column.name,
                &r.spelling,
                &column.decl_type,
                column.pk_position > 0,
            )),
            // An INTEGER PRIMARY KEY can be filled by SQLite itself.
            None if column.not_null
                && !column.has_default
                && !(column.pk_position > 0 && single_integer_key) =>
            {
                problems.push(PlanProblem::column(
                    &column.name,
                    format!(
                        "local column \"{}\" is NOT NULL without a default, and the remote \
                         table has no such column",
                        column.name
                    ),
                ))
            }
            None => {}
        }
    }
    Ok(TablePlan {
        name: name.to_string(),
        remote,
        columns,
        create: None,
        indexes: Vec::new(),
        not_created: Vec::new(),
        remote_rows: 0,
        problems,
    })
}

/// A remote table with no local counterpart, to create locally (`create_tables`), each column
/// of the type `column_types` names or else the one its remote type maps to, with the
/// constraints and indexes that translate; `created`: the tables this import creates;
/// `claimed`: the names its tables and indexes take (each index planned here adds its own). Named
/// by `use_rowid`, its remote `rowid` key becomes the new table's rowids, not a column of it.
pub fn plan_new(
    tx: &mut Transaction,
    db: &Db,
    name: &str,
    options: &ImportOptions,
    created: &[String],
    claimed: &mut Vec<String>,
) -> Result<TablePlan> {
    let schema = &options.schema;
    let remote = remote_name(schema, name);
    let remote_columns = catalog::columns(tx, &remote)?.unwrap_or_default();
    let key = catalog::primary_key(tx, &remote)?;
    let by_rowid = options.use_rowid.contains(&name.to_string());
    let mut problems = Vec::new();
    if key.is_empty() {
        problems.push(PlanProblem::table(
            "the remote table has no primary key, so a local table cannot match its rows: add one \
             remotely",
        ));
    } else if by_rowid && key != [ROWID_COLUMN] {
        problems.push(PlanProblem::table(format!(
            "option use_rowid names it, but its remote primary key is ({}), not a {ROWID_COLUMN} \
             column as an export with use_rowid makes: leave it out of use_rowid",
            key.join(", ")
        )));
    }
    // The rowid goes first, as the export with use_rowid placed it; it is no declared column.
    let (rowid, user): (Vec<&RemoteColumn>, Vec<&RemoteColumn>) = remote_columns
        .iter()
        .partition(|r| by_rowid && r.name == ROWID_COLUMN);
    let declared: Vec<String> = user
        .iter()
        .map(
            |r| match options.column_types.get(&format!("{name}.{}", r.name)) {
                Some(named) => named.clone(),
                None => mapping::sqlite_type_for(&r.spelling),
            },
        )
        .collect();
    let columns = rowid
        .iter()
        .map(|r| ColumnPlan::new(ROWID_COLUMN, &r.spelling, "INTEGER", true))
        .chain(user.iter().zip(&declared).map(|(r, decl_type)| {
            ColumnPlan::new(&r.name, &r.spelling, decl_type, key.contains(&r.name))
        }))
        .collect();
    let declared_key: &[String] = if by_rowid { &[] } else { &key };
    let rules = constraints::plan(
        tx,
        db,
        &NewTable {
            name,
            remote: &remote,
            schema,
            columns: &user,
            declared: &declared,
            key: declared_key,
            created,
        },
        claimed,
    )?;
    let create = sql::create_table(
        name,
        &user,
        &declared,
        &rules.clauses,
        declared_key,
        &rules.table_constraints,
    );
    Ok(TablePlan {
        name: name.to_string(),
        remote,
        columns,
        create: Some(create),
        indexes: rules.indexes,
        not_created: rules.not_created,
        remote_rows: 0,
        problems,
    })
}

/// Every `column_types` entry must name a column of a table the import creates (`created`), and
/// a SQLite type: a name, and digits in parentheses (`TEXT`, `NUMERIC(10,2)`).
pub fn check_column_types(options: &ImportOptions, created: &[&TablePlan]) -> Result<()> {
    for (column, declared) in &options.column_types {
        let (table, name) = column.split_once('.').unwrap_or_default();
        let known = created
            .iter()
            .any(|t| t.name == table && t.columns.iter().any(|c| c.name == name));
        if !known {
            return Err(Error::invalid(format!(
                "option column_types names {column}, which is not a column of a table this \
                 import creates (create_tables, for a table only the remote has)"
            )));
        }
        let (type_name, size) = declared.split_once('(').unwrap_or((declared, ")"));
        let plain = type_name
            .trim()
            .starts_with(|c: char| c.is_ascii_alphabetic())
            && type_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ' ')
            && size.strip_suffix(')').is_some_and(|digits| {
                digits
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ',' || c == ' ')
            });
        if !plain {
            return Err(Error::invalid(format!(
                "option column_types gives {column} the type \"{declared}\": name a SQLite \
                 type, like TEXT or NUMERIC(10,2)"
            )));
        }
    }
    Ok(())
}

/// The statement that counts the rows of the remote table of `plan`, in the import's snapshot.
pub fn count_remote_rows(plan: &TablePlan) -> crate::remote::batch::Step {
    crate::remote::batch::Step::of_table(
        &plan.name,
        "counting rows failed",
        sql::count_rows(&plan.remote),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_scope_sorts_tables_by_where_they_are() {
        let options = ImportOptions {
            exclude: names(&["secret"]),
            ..ImportOptions::default()
        };
        let scope = scope(
            &names(&["a", "b"]),
            &names(&["a", "b", "secret"]),
            &names(&["a", "new", "secret", "private"]),
            &NotLocal::default(),
            &options,
        );
        assert_eq!(
            scope,
            Scope {
                existing: names(&["a"]),
                local_only: names(&["b"]),
                remote_only: names(&["new", "private"]),
                unknown: None,
            }
        );
    }

    #[test]
    fn a_tables_option_limits_the_remote_only_tables_and_names_the_unknown_one() {
        let options = ImportOptions {
            tables: Some(names(&["a", "new", "ghost"])),
            create_tables: true,
            ..ImportOptions::default()
        };
        let not_local = NotLocal {
            tables: names(&["new", "ghost"]),
            exclude: names(&["phantom"]),
            use_rowid: Vec::new(),
        };
        let scope = scope(
            &names(&["a"]),
            &names(&["a", "b"]),
            &names(&["a", "new", "other"]),
            &not_local,
            &options,
        );
        assert_eq!(scope.existing, names(&["a"]));
        assert_eq!(scope.remote_only, names(&["new"]));
        assert_eq!(scope.unknown, Some(("tables", "ghost".to_string())));
    }

    #[test]
    fn exclude_keeps_out_a_remote_only_table_and_names_one_that_is_nowhere() {
        // Local tables a and b; remote tables a, audit and new; b is excluded too.
        let scope_excluding = |excluded: &str| {
            let options = ImportOptions {
                exclude: names(&["b", excluded]),
                create_tables: true,
                ..ImportOptions::default()
            };
            let not_local = NotLocal {
                tables: Vec::new(),
                exclude: names(&[excluded]),
                use_rowid: Vec::new(),
            };
            let remote = names(&["a", "audit", "new"]);
            scope(
                &names(&["a"]),
                &names(&["a", "b"]),
                &remote,
                &not_local,
                &options,
            )
        };
        let kept_out = scope_excluding("audit");
        assert_eq!(kept_out.remote_only, names(&["new"]));
        assert_eq!(kept_out.unknown, None);
        let typo = scope_excluding("audti");
        assert_eq!(typo.remote_only, names(&["audit", "new"]));
        assert_eq!(typo.unknown, Some(("exclude", "audti".to_string())));
    }
}
