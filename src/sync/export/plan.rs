//! Planning one table's export before anything is written: its columns and their remote types
//! (from the existing remote table, or chosen for a new one), full or incremental, how many rows
//! it reads, and the problems that keep it from being exported.

use super::constraints::RemoteRules;
use super::distribution::Distribution;
use super::incremental::{incremental_window, Tracking};
use super::sql::{self, Column};
use crate::error::{Error, Result};
use crate::local::tables::LocalTable;
use crate::mapping::{self, Affinity, PgType, Profile, ROWID_COLUMN};
use crate::remote::catalog::{Catalog, RemoteColumn};
use crate::shown;
use crate::sql_text::quote;
use crate::sqlite::{Db, Value};
use crate::sync::options::{ExportOptions, Mode};
use crate::sync::summary::TableCounts;
use crate::sync::tracking::Window;
use crate::sync::PlanProblem;

/// How the local rowid is read: `_rowid_` is the spelling a column is least likely to shadow.
pub const ROWID_EXPR: &str = "_rowid_";

/// Postgres truncates longer identifiers; we refuse them instead.
const MAX_IDENTIFIER_BYTES: usize = 63;

pub struct ColumnPlan {
    pub name: String,
    pub sqlite_type: String,
    /// The local column's affinity: which storage class its values come back in on import.
    pub affinity: Affinity,
    pub ty: PgType,
    /// The expression that reads it locally.
    pub local_expr: String,
    pub is_key: bool,
}

pub struct TablePlan {
    pub name: String,
    /// `"schema"."table"`.
    pub remote: String,
    pub columns: Vec<ColumnPlan>,
    /// The key columns in key order (the order the tracking triggers record them in).
    pub key_order: Vec<String>,
    pub create: bool,
    /// `Some` for an incremental export: the changes it ships.
    pub window: Option<Window>,
    /// Set when the table is tracked: its watermark moves once the export commits.
    pub tracking_id: Option<i64>,
    pub propagate_deletes: bool,
    /// Rows it reads: every local row, or every changed key.
    pub source_rows: u64,
    /// Change records read (incremental).
    pub changes: u64,
    /// Rows are read with their rowid last, to name a row whose key is NULL (SQLite allows it
    /// in a key that is not an INTEGER PRIMARY KEY) or that has no key.
    pub reads_rowid: bool,
    /// No primary key and not named by `use_rowid`: never exported, but a dry run still checks
    /// its values, so that one preview lists every problem.
    pub keyless: bool,
    pub problems: Vec<PlanProblem>,
    /// For a table the export creates: its constraints and indexes (`constraints::plan`).
    pub rules: RemoteRules,
    /// For a table the export creates on Citus: distributed or reference (`distribution::plan`).
    pub distribution: Option<Distribution>,
}

impl TablePlan {
    pub fn key(&self) -> impl Iterator<Item = &ColumnPlan> {
        self.columns.iter().filter(|c| c.is_key)
    }

    /// The key columns in key order.
    pub fn key_in_order(&self) -> Result<Vec<&ColumnPlan>> {
        self.key_order
            .iter()
            .map(|k| self.columns.iter().find(|c| &c.name == k))
            .collect::<Option<_>>()
            .ok_or_else(|| Error::local(format!("table {}: key columns not planned", self.name)))
    }

    /// Whether a dry run checks the values of this table although it is not exported: it is
    /// keyless and has no other problem (with one, the columns' types may not be known).
    pub fn checks_values_only(&self) -> bool {
        self.keyless && self.problems.len() == 1
    }

    /// The columns as the statements name and type them, in table order.
    pub fn sql_columns(&self) -> Vec<Column<'_>> {
        self.columns.iter().map(ColumnPlan::sql).collect()
    }

    pub fn mode(&self) -> Mode {
        if self.window.is_some() {
            Mode::Incremental
        } else {
            Mode::Full
        }
    }

    /// Counts before anything is counted. An incremental export does not read the whole remote
    /// table, so it has no count of remote-only rows.
    pub fn zero_counts(&self) -> TableCounts {
        TableCounts {
            remote_only: self.window.is_none().then_some(0),
            ..TableCounts::default()
        }
    }
}

impl TablePlan {
    /// The problem of a value of `column` that its remote type cannot take or would give back
    /// changed, with the fix: for a table the export creates, the column_types entry that keeps
    /// it; for an existing remote table, the type to give the remote column.
    pub fn value_problem(&self, column: &ColumnPlan, value: Value, why: &str) -> String {
        let Some(keeps) = mapping::type_that_keeps(column.ty, value, column.affinity) else {
            return why.to_string();
        };
        if self.create {
            let entry =
                serde_json::json!({ format!("{}.{}", self.name, column.name): keeps.sql() });
            format!("{why}: name a type that keeps it with the column_types option, {entry}")
        } else {
            format!(
                "{why}: change the value, or the remote column's type (ALTER TABLE {} ALTER \
                 COLUMN {} TYPE {})",
                self.remote,
                quote(&column.name),
                keeps.sql()
            )
        }
    }
}

impl ColumnPlan {
    pub fn sql(&self) -> Column<'_> {
        Column {
            name: &self.name,
            ty: self.ty,
            is_key: self.is_key,
        }
    }
}

/// Every `column_types` entry must name a column of a selected table and a supported type.
pub fn check_column_types(locals: &[LocalTable], options: &ExportOptions) -> Result<()> {
    for (column, spelling) in &options.column_types {
        let (table, name) = column.split_once('.').unwrap_or_default();
        let known = locals
            .iter()
            .find(|t| t.name == table)
            .is_some_and(|t| t.columns.iter().any(|c| c.name == name));
        if !known {
            return Err(Error::invalid(format!(
                "option column_types names {}, which is not a column of a table this export \
                 selects: name it \"table.column\" after a column of one of {}",
                shown::quoted(column, '"'),
                locals
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if PgType::parse(spelling).is_none() {
            return Err(Error::invalid(format!(
                "option column_types gives {} the type {}, which cloud_sync cannot write; \
                 supported: {}",
                shown::quoted(column, '"'),
                shown::quoted(spelling, '"'),
                mapping::SUPPORTED_TYPES
            )));
        }
    }
    Ok(())
}

/// The remote table `name` of `schema` is, quoted.
pub fn remote_name(schema: &str, name: &str) -> String {
    format!("{}.{}", quote(schema), quote(name))
}

/// Plans the export of `local`, whose remote table `catalog` describes (it holds no entry when
/// the table does not exist).
pub fn plan_table(
    catalog: &Catalog,
    db: &Db,
    local: &LocalTable,
    options: &ExportOptions,
    tracking: Option<&Tracking>,
) -> Result<TablePlan> {
    let name = &local.name;
    let remote = remote_name(&options.schema, name);
    let mut problems = Vec::new();
    let too_long = |identifier: &str| {
        format!(
            "the name \"{identifier}\" is longer than Postgres's {MAX_IDENTIFIER_BYTES} bytes; \
             rename it"
        )
    };
    if name.len() > MAX_IDENTIFIER_BYTES {
        problems.push(PlanProblem::table(too_long(name)));
    }
    for column in local.columns.iter().map(|c| &c.name) {
        if column.len() > MAX_IDENTIFIER_BYTES {
            problems.push(PlanProblem::column(column, too_long(column)));
        }
    }
    let mut columns = local_columns(local, options, &mut problems);
    let keyless = !columns.iter().any(|c| c.is_key);
    // With use_rowid the rowid is the key column already.
    let reads_rowid = local.has_rowid && !columns.iter().any(|c| c.local_expr == ROWID_EXPR);
    let create = match catalog.columns(&remote) {
        None if !options.create_tables => {
            problems.push(PlanProblem::table(format!(
                "the remote table {}.{name} does not exist, and create_tables is false",
                options.schema
            )));
            false
        }
        None => {
            choose_types(db, local, options, &mut columns, &mut problems)?;
            true
        }
        Some(remote_columns) => {
            match_remote(
                catalog,
                &remote,
                remote_columns,
                &mut columns,
                &mut problems,
            );
            false
        }
    };
    let window = incremental_window(name, options, tracking, create)?;
    let (source_rows, changes) = match &window {
        Some(window) => {
            let (changes, keys) = window.counts(db)?;
            (keys, changes)
        }
        None => {
            let rows = db
                .query_row(&sql::local_count(name), &[], |r| Ok(r.int(0)))?
                .unwrap_or(0) as u64;
            (rows, 0)
        }
    };
    Ok(TablePlan {
        name: name.clone(),
        remote,
        columns,
        key_order: local.key().iter().map(|c| c.name.clone()).collect(),
        create,
        propagate_deletes: options.propagate_deletes.unwrap_or(window.is_some()),
        window,
        tracking_id: tracking.map(|t| t.tracking_id),
        source_rows,
        changes,
        reads_rowid,
        keyless,
        problems,
        rules: RemoteRules::default(),
        distribution: None,
    })
}

/// The local columns, typed `text` until matched or chosen; a table without a primary key gets
/// its rowid as the key when `use_rowid` names it.
fn local_columns(
    local: &LocalTable,
    options: &ExportOptions,
    problems: &mut Vec<PlanProblem>,
) -> Vec<ColumnPlan> {
    let mut columns: Vec<ColumnPlan> = local
        .columns
        .iter()
        .map(|c| ColumnPlan {
            name: c.name.clone(),
            sqlite_type: c.decl_type.clone(),
            affinity: mapping::affinity(&c.decl_type),
            ty: PgType::Text,
            local_expr: quote(&c.name),
            is_key: c.pk_position > 0,
        })
        .collect();
    if local.key().is_empty() {
        if options.use_rowid.contains(&local.name) {
            columns.insert(
                0,
                ColumnPlan {
                    name: ROWID_COLUMN.into(),
                    sqlite_type: "INTEGER".into(),
                    affinity: Affinity::Integer,
                    ty: PgType::BigInt,
                    local_expr: ROWID_EXPR.into(),
                    is_key: true,
                },
            );
        } else {
            problems.push(PlanProblem::table(
                "has no primary key, so rows cannot be matched with the remote ones: add one, or \
                 opt in with the use_rowid option (its rowid becomes the remote key)",
            ));
        }
    }
    columns
}

/// The types of a remote table to create: `column_types` where it names the column, otherwise
/// the type the declared type (and for some, the values) call for.
fn choose_types(
    db: &Db,
    local: &LocalTable,
    options: &ExportOptions,
    columns: &mut [ColumnPlan],
    problems: &mut Vec<PlanProblem>,
) -> Result<()> {
    let profiles = profiles(db, local)?;
    // The synthetic rowid key already has its type; every other column reads a local one.
    for column in columns.iter_mut().filter(|c| c.local_expr != ROWID_EXPR) {
        let explicit = options
            .column_types
            .get(&format!("{}.{}", local.name, column.name));
        let profile = profiles
            .iter()
            .find(|(n, _)| n == &column.name)
            .map(|(_, p)| p);
        let chosen = match explicit {
            Some(spelling) => PgType::parse(spelling).ok_or_else(|| spelling.clone()),
            None => mapping::type_for_new_column(&column.sqlite_type, profile),
        };
        match chosen {
            // A declared DECIMAL(p,s) whose numbers do not all fit it gets plain numeric, which
            // keeps them all; a type named in column_types is taken as named.
            Ok(ty @ PgType::Numeric(Some(_)))
                if explicit.is_none()
                    && !Profile::numbers_fit(db, &local.name, &column.name, ty)? =>
            {
                column.ty = PgType::Numeric(None)
            }
            Ok(ty) => column.ty = ty,
            Err(why) => problems.push(PlanProblem::column(
                &column.name,
                format!("column {} {why}", column.name),
            )),
        }
    }
    Ok(())
}

/// The types of an existing remote table, and what keeps its columns or key from taking the
/// local rows.
fn match_remote(
    catalog: &Catalog,
    remote: &str,
    remote_columns: &[RemoteColumn],
    columns: &mut [ColumnPlan],
    problems: &mut Vec<PlanProblem>,
) {
    for column in columns.iter_mut() {
        match remote_columns.iter().find(|r| r.name == column.name) {
            None => problems.push(PlanProblem::column(
                &column.name,
                format!(
                    "the remote table has no column \"{}\": add it (ALTER TABLE {remote} ADD \
                     COLUMN {} ...)",
                    column.name,
                    quote(&column.name)
                ),
            )),
            Some(r) => match PgType::parse(&r.spelling) {
                Some(ty) => column.ty = ty,
                None => problems.push(PlanProblem::column(
                    &column.name,
                    format!(
                        "remote column \"{}\" has type {}, which cloud_sync cannot write \
                         (supported: {})",
                        column.name,
                        r.spelling,
                        mapping::SUPPORTED_TYPES
                    ),
                )),
            },
        }
    }
    for r in remote_columns {
        if r.not_null && !r.has_default && !columns.iter().any(|c| c.name == r.name) {
            problems.push(PlanProblem::column(
                &r.name,
                format!(
                    "remote column \"{}\" is NOT NULL without a default and has no local \
                     counterpart",
                    r.name
                ),
            ));
        }
    }
    let key: Vec<&str> = columns
        .iter()
        .filter(|c| c.is_key)
        .map(|c| c.name.as_str())
        .collect();
    if !key.is_empty() && !catalog.has_unique_key(remote, &key) {
        problems.push(PlanProblem::table(format!(
            "the remote table has no unique constraint on its key ({}): add one (ALTER \
             TABLE {remote} ADD UNIQUE ({}))",
            key.join(", "),
            key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ")
        )));
    }
}

/// One aggregate query gives the value profile of every column whose type depends on its values.
fn profiles(db: &Db, local: &LocalTable) -> Result<Vec<(String, Profile)>> {
    let needing: Vec<&str> = local
        .columns
        .iter()
        .filter(|c| mapping::needs_profile(&c.decl_type))
        .map(|c| c.name.as_str())
        .collect();
    let found = Profile::read_all(db, &local.name, &needing)?;
    Ok(needing.iter().map(|c| c.to_string()).zip(found).collect())
}
