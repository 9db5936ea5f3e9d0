//! Export options, parsed strictly: an unknown key or a wrong type is an error that names it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::remote::deadlines;
use crate::{audit, integer, options_json, shown};

/// The options an export takes.
pub const KNOWN: &[&str] = &[
    "tables",
    "exclude",
    "schema",
    "create_tables",
    "confirm",
    "confirm_max_age_s",
    "use_rowid",
    "column_types",
    "max_attempts",
    "retry_base_s",
    "retry_cap_s",
    "mode",
    "propagate_deletes",
    "distribute",
    "reference",
    "colocate_with",
    "requested_by",
    deadlines::READ_TIMEOUT,
    deadlines::STATEMENT_TIMEOUT,
    deadlines::IDLE_IN_TRANSACTION_TIMEOUT,
    deadlines::KEEPALIVE,
];

/// How an export compares: every row, or only the rows changed since the last export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Full,
    Incremental,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Incremental => "incremental",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExportOptions {
    /// Only these tables (`None`: every eligible table).
    pub tables: Option<Vec<String>>,
    pub exclude: Vec<String>,
    /// The remote schema.
    pub schema: String,
    /// Create remote tables that do not exist.
    pub create_tables: bool,
    /// For a full export: the succeeded dry-run job it confirms.
    pub confirm: Option<i64>,
    pub confirm_max_age_s: i64,
    /// Tables without a primary key that the user opts in to export keyed by their rowid.
    pub use_rowid: Vec<String>,
    /// Explicit Postgres types for created tables, keyed `table.column`.
    pub column_types: BTreeMap<String, String>,
    pub max_attempts: i64,
    /// `None`: per table, incremental where it can be, else full.
    pub mode: Option<Mode>,
    /// `None`: true for tables exported incrementally, false for full ones.
    pub propagate_deletes: Option<bool>,
    /// Citus: the distribution column of each table the export creates as a distributed table.
    pub distribute: BTreeMap<String, String>,
    /// Citus: the tables the export creates as reference tables.
    pub reference: Vec<String>,
    /// Citus: per table of `distribute`, the table to colocate it with (or `none`).
    pub colocate_with: BTreeMap<String, String>,
    /// Who the job is requested by, as the option names them (see `audit::requester`).
    pub requested_by: Option<String>,
}

impl ExportOptions {
    /// Whether an option only Citus can carry out is set.
    pub fn uses_citus(&self) -> bool {
        !(self.distribute.is_empty() && self.reference.is_empty() && self.colocate_with.is_empty())
    }
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            tables: None,
            exclude: Vec::new(),
            schema: "public".into(),
            create_tables: true,
            confirm: None,
            confirm_max_age_s: 3600,
            use_rowid: Vec::new(),
            column_types: BTreeMap::new(),
            max_attempts: 5,
            mode: None,
            propagate_deletes: None,
            distribute: BTreeMap::new(),
            reference: Vec::new(),
            colocate_with: BTreeMap::new(),
            requested_by: None,
        }
    }
}

fn names(key: &str, value: &Value) -> Result<Vec<String>> {
    let wrong = || Error::invalid(format!("option {key} must be an array of table names"));
    value
        .as_array()
        .ok_or_else(wrong)?
        .iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(wrong))
        .collect()
}

/// The options object (`None`: empty), read strictly (see [`options_json`]).
fn object(json: Option<&str>) -> Result<Map<String, Value>> {
    match json {
        None => Ok(Map::new()),
        Some(text) => options_json::object(text, "options", r#"'{"tables": ["items"]}'"#),
    }
}

fn unknown_option(key: &str, known: &[&str]) -> Error {
    Error::invalid(format!(
        "unknown option {}: known options are {}",
        shown::quoted(key, '"'),
        known.join(", ")
    ))
}

/// The remote schema: a non-empty name, and not one of PostgreSQL's temporary or system ones.
fn schema(value: &Value) -> Result<String> {
    let name = value
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::invalid("option schema must be a non-empty string"))?;
    crate::remote::schema::refuse_reserved(name)?;
    Ok(name.to_string())
}

/// A `column_types` object: `"table.column"` -> a type, as text.
fn column_types(value: &Value, what: &str, example: &str) -> Result<BTreeMap<String, String>> {
    let wrong = || {
        Error::invalid(format!(
            "option column_types must map \"table.column\" to {what}, like {example}"
        ))
    };
    let mut types = BTreeMap::new();
    for (column, ty) in value.as_object().ok_or_else(wrong)? {
        if !column.contains('.') {
            return Err(wrong());
        }
        types.insert(column.clone(), ty.as_str().ok_or_else(wrong)?.to_string());
    }
    Ok(types)
}

/// An object mapping table names to names (`what`), like `example`.
fn names_by_table(
    key: &str,
    value: &Value,
    what: &str,
    example: &str,
) -> Result<BTreeMap<String, String>> {
    let wrong = || {
        Error::invalid(format!(
            "option {key} must map table names to {what}, like {example}"
        ))
    };
    let mut map = BTreeMap::new();
    for (table, name) in value.as_object().ok_or_else(wrong)? {
        let name = name.as_str().filter(|n| !n.is_empty()).ok_or_else(wrong)?;
        map.insert(table.clone(), name.to_string());
    }
    Ok(map)
}

/// The Citus options agree: a table is distributed or reference, not both, and only a
/// distributed table is colocated.
fn check_citus_options(options: &ExportOptions) -> Result<()> {
    if let Some(both) = options
        .reference
        .iter()
        .find(|t| options.distribute.contains_key(*t))
    {
        return Err(Error::invalid(format!(
            "options distribute and reference both name {}: a table is either distributed or \
             a reference table",
            shown::quoted(both, '"')
        )));
    }
    if let Some(table) = options
        .colocate_with
        .keys()
        .find(|t| !options.distribute.contains_key(*t))
    {
        return Err(Error::invalid(format!(
            "option colocate_with names {}, which option distribute does not: only a \
             distributed table is colocated",
            shown::quoted(table, '"')
        )));
    }
    Ok(())
}

/// `true` or `false`, or 1 or 0 in any form the integer rule takes (`1.0`, `"1"`), as SQL
/// and hosts without a boolean type write them.
pub fn boolean(key: &str, value: &Value) -> Result<bool> {
    match (value, integer::from_json(value)) {
        (Value::Bool(b), _) => Ok(*b),
        (_, Some(0)) => Ok(false),
        (_, Some(1)) => Ok(true),
        _ => Err(Error::invalid(format!(
            "option {key} must be true or false, not {}",
            shown::json(value)
        ))),
    }
}

/// Whether `key` sets one of the job's remote deadlines, which the runner reads from the
/// stored options (see [`deadlines`]).
fn is_deadline(key: &str) -> bool {
    deadlines::OPTIONS.iter().any(|(name, _)| *name == key)
}

/// A positive integer, in any form the integer rule takes (`3`, `3.0`, `"3"`).
fn positive(key: &str, value: &Value) -> Result<i64> {
    integer::from_json(value).filter(|v| *v > 0).ok_or_else(|| {
        Error::invalid(format!(
            "option {key} must be a positive integer, not {}",
            shown::json(value)
        ))
    })
}

impl ExportOptions {
    /// Parses the options JSON object (`None` or empty text: all defaults).
    pub fn parse(json: Option<&str>) -> Result<ExportOptions> {
        let mut options = ExportOptions::default();
        for (key, value) in &object(json)? {
            match key.as_str() {
                "tables" => options.tables = Some(names(key, value)?),
                "exclude" => options.exclude = names(key, value)?,
                "use_rowid" => options.use_rowid = names(key, value)?,
                "schema" => options.schema = schema(value)?,
                "create_tables" => options.create_tables = boolean(key, value)?,
                "confirm" => options.confirm = Some(positive(key, value)?),
                "mode" => {
                    options.mode =
                        Some(match value.as_str() {
                            Some("full") => Mode::Full,
                            Some("incremental") => Mode::Incremental,
                            _ => return Err(Error::invalid(
                                "option mode must be \"full\" or \"incremental\" (leave it out \
                                 for incremental wherever a table can be)",
                            )),
                        })
                }
                "propagate_deletes" => options.propagate_deletes = Some(boolean(key, value)?),
                "confirm_max_age_s" => options.confirm_max_age_s = positive(key, value)?,
                "max_attempts" => options.max_attempts = positive(key, value)?,
                "retry_base_s" | "retry_cap_s" => {
                    positive(key, value)?;
                }
                "column_types" => {
                    options.column_types =
                        column_types(value, "a Postgres type", r#"{"events.at": "timestamptz"}"#)?
                }
                "distribute" => {
                    options.distribute = names_by_table(
                        key,
                        value,
                        "their distribution column",
                        r#"{"items": "id"}"#,
                    )?
                }
                "reference" => options.reference = names(key, value)?,
                "colocate_with" => {
                    options.colocate_with = names_by_table(
                        key,
                        value,
                        "the table to colocate them with",
                        r#"{"events": "items"}"#,
                    )?
                }
                "requested_by" => options.requested_by = Some(audit::requested_by_option(value)?),
                deadline if is_deadline(deadline) => {
                    positive(key, value)?;
                }
                unknown => return Err(unknown_option(unknown, KNOWN)),
            }
        }
        check_citus_options(&options)?;
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_every_key() {
        assert_eq!(
            ExportOptions::parse(None).unwrap(),
            ExportOptions::default()
        );
        let o = ExportOptions::parse(Some(
            r#"{"tables":["a","b"],"exclude":["c"],"schema":"s","create_tables":false,
                "confirm":7,"confirm_max_age_s":60,"use_rowid":["log"],
                "column_types":{"a.at":"timestamptz"},"max_attempts":3,
                "mode":"incremental","propagate_deletes":false}"#,
        ))
        .unwrap();
        assert_eq!(
            (o.mode, o.propagate_deletes),
            (Some(Mode::Incremental), Some(false))
        );
        assert_eq!(o.tables, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(
            (o.schema.as_str(), o.create_tables, o.confirm),
            ("s", false, Some(7))
        );
        assert_eq!(o.column_types["a.at"], "timestamptz");
        assert!(!o.uses_citus());
        let o = ExportOptions::parse(Some(
            r#"{"distribute":{"a":"id","b":"id"},"reference":["c"],"colocate_with":{"b":"a"}}"#,
        ))
        .unwrap();
        assert_eq!(
            (o.distribute["a"].as_str(), o.reference.as_slice()),
            ("id", ["c".to_string()].as_slice())
        );
        assert_eq!(o.colocate_with["b"], "a");
        assert!(o.uses_citus());
    }

    #[test]
    fn integers_and_booleans_take_every_exact_form() {
        let o = ExportOptions::parse(Some(
            r#"{"confirm":1.0,"confirm_max_age_s":"60","max_attempts":" 3 ",
                "create_tables":0,"propagate_deletes":"1.0","retry_base_s":2.0,
                "read_timeout_s":2,"statement_timeout_s":"5","idle_in_transaction_timeout_s":7.0,
                "keepalive_s":9}"#,
        ))
        .unwrap();
        assert_eq!(
            (o.confirm, o.confirm_max_age_s, o.max_attempts),
            (Some(1), 60, 3)
        );
        assert_eq!((o.create_tables, o.propagate_deletes), (false, Some(true)));
        let o = ImportOptions::parse(Some(
            r#"{"create_tables":1.0,"max_attempts":"2","read_timeout_s":"2","keepalive_s":1}"#,
        ))
        .unwrap();
        assert_eq!((o.create_tables, o.max_attempts), (true, 2));
    }

    #[test]
    fn bad_options_are_named() {
        for (json, expected) in [
            ("[1]", "JSON object"),
            ("{", "not valid JSON"),
            (r#"{"tabels":[]}"#, "unknown option \"tabels\""),
            (r#"{"tables":"a"}"#, "array of table names"),
            (r#"{"confirm":-1}"#, "confirm must be a positive integer"),
            (r#"{"create_tables":2}"#, "true or false, not 2"),
            (r#"{"confirm":1.5}"#, "positive integer, not 1.5"),
            (r#"{"confirm":"7x"}"#, "positive integer, not \"7x\""),
            (r#"{"max_attempts":true}"#, "positive integer, not true"),
            (r#"{"column_types":{"at":"date"}}"#, "table.column"),
            (r#"{"mode":"delta"}"#, "\"full\" or \"incremental\""),
            (r#"{"propagate_deletes":"yes"}"#, "true or false"),
            (
                r#"{"distribute":["a"]}"#,
                "map table names to their distribution column",
            ),
            (r#"{"distribute":{"a":""}}"#, "like {\"items\": \"id\"}"),
            (r#"{"reference":"a"}"#, "array of table names"),
            (
                r#"{"distribute":{"a":"id"},"reference":["a"]}"#,
                "both name \"a\"",
            ),
            (
                r#"{"colocate_with":{"b":"a"}}"#,
                "colocate_with names \"b\", which option distribute does not",
            ),
            (
                r#"{"read_timeout_s":0}"#,
                "read_timeout_s must be a positive integer",
            ),
            (
                r#"{"keepalive_s":"1s"}"#,
                "keepalive_s must be a positive integer",
            ),
        ] {
            let message = ExportOptions::parse(Some(json)).unwrap_err().to_string();
            assert!(message.contains(expected), "{json}: {message}");
        }
    }
}

/// How an import treats a local row whose key the remote also has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Leave the local row exactly as it is.
    Skip,
    /// Replace every column with the remote value.
    Overwrite,
    /// Take the remote value where it is not NULL, keep the local one where it is.
    Merge,
}

impl Strategy {
    pub fn parse(text: &str) -> Result<Strategy> {
        match text {
            "skip" => Ok(Strategy::Skip),
            "overwrite" => Ok(Strategy::Overwrite),
            "merge" => Ok(Strategy::Merge),
            other => Err(Error::invalid(format!(
                "unknown strategy {}: use skip (keep local rows), overwrite (take the \
                 remote rows) or merge (take the remote values that are not NULL)",
                shown::quoted(other, '"')
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Skip => "skip",
            Strategy::Overwrite => "overwrite",
            Strategy::Merge => "merge",
        }
    }
}

/// The options an import takes.
pub const KNOWN_IMPORT: &[&str] = &[
    "tables",
    "exclude",
    "schema",
    "create_tables",
    "strategy",
    "column_types",
    "max_attempts",
    "retry_base_s",
    "retry_cap_s",
    "use_rowid",
    "requested_by",
    deadlines::READ_TIMEOUT,
    deadlines::STATEMENT_TIMEOUT,
    deadlines::IDLE_IN_TRANSACTION_TIMEOUT,
    deadlines::KEEPALIVE,
];

#[derive(Debug, Clone, PartialEq)]
pub struct ImportOptions {
    /// Only these tables (`None`: every local table the remote schema has).
    pub tables: Option<Vec<String>>,
    pub exclude: Vec<String>,
    pub schema: String,
    /// Create local tables for remote tables that have none.
    pub create_tables: bool,
    pub strategy: Strategy,
    /// SQLite declared types for columns of tables the import creates, keyed `table.column`.
    pub column_types: BTreeMap<String, String>,
    /// Keyless tables whose rows the remote keys by rowid (exported with `use_rowid`).
    pub use_rowid: Vec<String>,
    pub max_attempts: i64,
    /// Who the job is requested by, as the option names them (see `audit::requester`).
    pub requested_by: Option<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            tables: None,
            exclude: Vec::new(),
            schema: "public".into(),
            create_tables: false,
            strategy: Strategy::Skip,
            column_types: BTreeMap::new(),
            use_rowid: Vec::new(),
            max_attempts: 5,
            requested_by: None,
        }
    }
}

impl ImportOptions {
    /// Parses the options JSON object; the strategy travels inside it as `strategy`.
    pub fn parse(json: Option<&str>) -> Result<ImportOptions> {
        let mut options = ImportOptions::default();
        for (key, value) in &object(json)? {
            match key.as_str() {
                "tables" => options.tables = Some(names(key, value)?),
                "exclude" => options.exclude = names(key, value)?,
                "schema" => options.schema = schema(value)?,
                "create_tables" => options.create_tables = boolean(key, value)?,
                "strategy" => {
                    options.strategy = Strategy::parse(value.as_str().ok_or_else(|| {
                        Error::invalid("option strategy must be skip, overwrite or merge")
                    })?)?
                }
                "column_types" => {
                    options.column_types =
                        column_types(value, "a SQLite type", r#"{"prices.amount": "TEXT"}"#)?
                }
                "use_rowid" => options.use_rowid = names(key, value)?,
                "max_attempts" => options.max_attempts = positive(key, value)?,
                // Read by the retry policy from the stored options; checked here.
                "retry_base_s" | "retry_cap_s" => {
                    positive(key, value)?;
                }
                "requested_by" => options.requested_by = Some(audit::requested_by_option(value)?),
                deadline if is_deadline(deadline) => {
                    positive(key, value)?;
                }
                unknown => return Err(unknown_option(unknown, KNOWN_IMPORT)),
            }
        }
        Ok(options)
    }
}

#[cfg(test)]
mod import_tests {
    use super::*;

    #[test]
    fn import_options() {
        let o = ImportOptions::parse(Some(
            r#"{"strategy":"merge","create_tables":true,"column_types":{"p.amount":"TEXT"},
                "use_rowid":["log"]}"#,
        ))
        .unwrap();
        assert_eq!(o.use_rowid, ["log"]);
        assert_eq!(
            (o.strategy, o.create_tables, o.schema.as_str()),
            (Strategy::Merge, true, "public")
        );
        assert_eq!(o.column_types["p.amount"], "TEXT");
        assert_eq!(
            ImportOptions::parse(None).unwrap(),
            ImportOptions::default()
        );
        for (json, expected) in [
            (r#"{"strategy":"replace"}"#, "unknown strategy \"replace\""),
            (r#"{"confirm":1}"#, "unknown option \"confirm\""),
            (r#"{"create_tables":"yes"}"#, "true or false"),
            (r#"{"column_types":{"amount":"TEXT"}}"#, "to a SQLite type"),
            (
                r#"{"statement_timeout_s":-5}"#,
                "must be a positive integer",
            ),
        ] {
            let message = ImportOptions::parse(Some(json)).unwrap_err().to_string();
            assert!(message.contains(expected), "{json}: {message}");
        }
    }
}
