//! The summary of one job, as export and import write it into `cloud_sync_jobs.summary` and as
//! views, reports and confirmations read it back. One typed shape, so a field is named in one
//! place and a reader cannot misspell it.
//!
//! Export-only and import-only fields are `Option`s left out of the JSON when absent. Reading is
//! lenient (missing fields take their defaults, unknown ones are ignored) so that summaries
//! written by earlier versions still load.

use std::ops::AddAssign;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::options::Mode;

/// One count that is either always there (`u64`) or not always measured (`Option<u64>`).
trait Count: Copy {
    fn add(&mut self, other: Self);
    fn value(self) -> Option<u64>;
}

impl Count for u64 {
    fn add(&mut self, other: Self) {
        *self += other;
    }
    fn value(self) -> Option<u64> {
        Some(self)
    }
}

impl Count for Option<u64> {
    /// Adding to an unmeasured count starts from zero: a total counts what was measured.
    fn add(&mut self, other: Self) {
        *self = Some(self.unwrap_or(0) + other.unwrap_or(0));
    }
    fn value(self) -> Option<u64> {
        self
    }
}

/// Declares the counts once: the struct, its serde names, and the column list of
/// `cloud_sync_job_tables` all come from this list.
macro_rules! table_counts {
    ($($(#[$doc:meta])* $name:ident: $ty:ty,)*) => {
        /// What a job did to one table, or to all of them (the summary's `totals`).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct TableCounts {
            $($(#[$doc])* #[serde(default)] pub $name: $ty,)*
        }

        impl TableCounts {
            /// The counts' names, in the order of `cloud_sync_job_tables`' columns.
            pub const FIELDS: [&'static str; table_counts!(@len $($name)*)] =
                [$(stringify!($name)),*];

            /// Each count, in the order of `FIELDS` (`None` where it was not measured).
            pub fn values(&self) -> [Option<u64>; table_counts!(@len $($name)*)] {
                [$(Count::value(self.$name)),*]
            }
        }

        impl AddAssign for TableCounts {
            fn add_assign(&mut self, other: Self) {
                $(Count::add(&mut self.$name, other.$name);)*
            }
        }
    };
    (@len $($name:ident)*) => { 0 $(+ table_counts!(@one $name))* };
    (@one $name:ident) => { 1 };
}

table_counts! {
    /// Rows read from the source (for an incremental export: changed keys).
    source_rows: u64,
    inserts: u64,
    updates: u64,
    /// Rows compared and found equal: not written.
    unchanged: u64,
    /// Rows not written because of a problem.
    skipped: u64,
    deletes: u64,
    /// Remote rows with no local counterpart; `None` where the remote table was not scanned
    /// (an incremental export).
    remote_only: Option<u64>,
    problems: u64,
}

impl TableCounts {
    /// The starting point of a total: every count measured, and zero.
    pub fn zero() -> Self {
        TableCounts {
            remote_only: Some(0),
            ..TableCounts::default()
        }
    }

    /// The count named `field` (one of `FIELDS`).
    pub fn get(&self, field: &str) -> Option<u64> {
        let at = Self::FIELDS.iter().position(|f| *f == field)?;
        self.values()[at]
    }
}

/// The columns of `cloud_sync_job_tables`: the table, then every count.
pub const JOB_TABLE_COLUMNS: [&str; TableCounts::FIELDS.len() + 1] = {
    let mut columns = ["table_name"; TableCounts::FIELDS.len() + 1];
    let mut i = 0;
    while i < TableCounts::FIELDS.len() {
        columns[i + 1] = TableCounts::FIELDS[i];
        i += 1;
    }
    columns
};

/// A local column and the remote type it maps to (exports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSummary {
    pub name: String,
    pub sqlite_type: String,
    pub postgres_type: String,
}

/// One table of a job. A field missing from a stored summary reads as its default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TableSummary {
    pub table: String,
    /// `schema.table` as the user wrote them (unquoted).
    pub remote_table: String,
    pub key: Vec<String>,
    /// Whether the job created the table (a dry run: would create it).
    pub created: bool,
    /// Export: how this table went (`full` or `incremental`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Export: change records read (incremental; 0 for a full export).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<u64>,
    /// Export: whether remote rows gone locally are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate_deletes: Option<bool>,
    #[serde(flatten)]
    pub counts: TableCounts,
    /// Export: the column mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<ColumnSummary>>,
    /// A created table (a dry run: one to create): what it declares on the other side that the
    /// job does not create (an expression CHECK, a partial index...), each with the reason.
    /// Notes, not problems: they block nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_created: Vec<String>,
    pub ms: f64,
}

impl TableSummary {
    /// A table's summary with the fields every job has; the caller sets its own kind's fields.
    pub(crate) fn new(
        table: &str,
        schema: &str,
        key: Vec<String>,
        created: bool,
        counts: TableCounts,
        ms: f64,
    ) -> TableSummary {
        TableSummary {
            table: table.to_string(),
            remote_table: format!("{schema}.{table}"),
            key,
            created,
            counts,
            ms,
            ..TableSummary::default()
        }
    }
}

/// A problem found in the data or the schema. `key` is the row's key as an object (null for a
/// table-level problem), `column` the column at fault (null when not about one column).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub table: String,
    pub key: Value,
    pub column: Option<String>,
    pub problem: String,
}

/// A count of a confirmed export that differs from its dry run's (`None`: not counted, or the
/// table was not in the dry run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub table: String,
    pub count: String,
    pub dry_run: Option<u64>,
    pub export: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Timings {
    pub connect_ms: f64,
    pub total_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Export,
    Import,
}

/// The summary of one job. A field missing from a stored summary reads as its default, so
/// summaries of earlier versions load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub kind: Kind,
    pub dry_run: bool,
    /// Import: `skip`, `overwrite` or `merge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// The redacted connection target.
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub schema: String,
    /// Export: whether the job created the remote schema (a dry run: would create it), as it
    /// did not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_created: Option<bool>,
    /// Export: the `mode` option as given (absent: each table chose).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Export: the `propagate_deletes` option as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate_deletes: Option<bool>,
    /// Export: the last change record this export covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<i64>,
    /// Export: `false` when the remote committed but the watermark could not be saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark_saved: Option<bool>,
    #[serde(default)]
    pub tables: Vec<TableSummary>,
    #[serde(default)]
    pub totals: TableCounts,
    /// Import: selected local tables the remote schema does not have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_only_tables: Option<Vec<String>>,
    /// Import: remote tables not imported because no local table has their name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_only_tables: Option<Vec<String>>,
    /// The first problems found (at most `Problems::MAX_LISTED`).
    #[serde(default)]
    pub problems: Vec<Problem>,
    /// Every problem found, listed or not. Required: a summary without it cannot vouch for a
    /// problem-free dry run.
    pub problems_total: u64,
    #[serde(default)]
    pub timings: Timings,
    #[serde(default)]
    pub rows_per_s: f64,
    /// A confirmed export: the dry run it confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_dry_run: Option<i64>,
    /// A confirmed export: the counts that differ from its dry run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differences_from_dry_run: Option<Vec<Difference>>,
}

impl Summary {
    /// A summary of `tables` with the fields every job has (totals and rate derived); the
    /// caller sets its own kind's fields.
    pub(crate) fn new(
        kind: Kind,
        dry_run: bool,
        target: String,
        schema: String,
        tables: Vec<TableSummary>,
        problems: super::Problems,
        timings: Timings,
    ) -> Summary {
        let totals = Summary::total(&tables);
        Summary {
            kind,
            dry_run,
            strategy: None,
            target,
            schema,
            schema_created: None,
            mode: None,
            propagate_deletes: None,
            watermark: None,
            watermark_saved: None,
            tables,
            totals,
            local_only_tables: None,
            remote_only_tables: None,
            problems: problems.listed,
            problems_total: problems.total,
            timings,
            rows_per_s: Summary::rate(totals.source_rows, timings.total_ms),
            confirmed_dry_run: None,
            differences_from_dry_run: None,
        }
    }

    /// Reads a stored summary; `None` when the text is not a summary.
    pub fn parse(text: &str) -> Option<Summary> {
        serde_json::from_str(text).ok()
    }

    /// The sum of the tables' counts.
    fn total(tables: &[TableSummary]) -> TableCounts {
        tables.iter().fold(TableCounts::zero(), |mut total, t| {
            total += t.counts;
            total
        })
    }

    /// Rows read per second over the whole job.
    fn rate(rows: u64, total_ms: f64) -> f64 {
        (rows as f64 / (total_ms / 1000.0).max(1e-9)).round()
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a summary always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, counts: TableCounts) -> TableSummary {
        TableSummary {
            table: name.into(),
            remote_table: format!("public.{name}"),
            key: vec!["id".into()],
            created: false,
            mode: Some(Mode::Incremental),
            changes: Some(3),
            propagate_deletes: Some(true),
            counts,
            columns: None,
            not_created: Vec::new(),
            ms: 1.5,
        }
    }

    #[test]
    fn the_count_names_are_the_serialized_names_in_column_order() {
        let json = serde_json::to_value(TableCounts::zero()).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut fields = TableCounts::FIELDS.to_vec();
        let mut sorted = keys.clone();
        fields.sort();
        sorted.sort();
        assert_eq!(sorted, fields);
        assert_eq!(JOB_TABLE_COLUMNS[0], "table_name");
        assert_eq!(&JOB_TABLE_COLUMNS[1..], &TableCounts::FIELDS[..]);
    }

    #[test]
    fn totals_add_what_was_measured() {
        let full = TableCounts {
            source_rows: 5,
            inserts: 2,
            unchanged: 3,
            remote_only: Some(4),
            ..TableCounts::default()
        };
        let incremental = TableCounts {
            source_rows: 1,
            deletes: 1,
            remote_only: None,
            ..TableCounts::default()
        };
        let total = Summary::total(&[table("a", full), table("b", incremental)]);
        assert_eq!(total.source_rows, 6);
        assert_eq!(total.deletes, 1);
        assert_eq!(total.remote_only, Some(4));
        assert_eq!(total.get("inserts"), Some(2));
        assert_eq!(
            Summary::total(&[table("b", incremental)]).remote_only,
            Some(0)
        );
    }

    #[test]
    fn a_table_reads_back_as_written_with_its_counts_at_the_top_level() {
        let written = table(
            "items",
            TableCounts {
                inserts: 7,
                ..TableCounts::default()
            },
        );
        let json = serde_json::to_value(&written).unwrap();
        assert_eq!(json["inserts"], 7);
        assert_eq!(json["remote_only"], Value::Null);
        assert_eq!(json["mode"], "incremental");
        assert!(json.get("columns").is_none());
        let read: TableSummary = serde_json::from_value(json).unwrap();
        assert_eq!(read, written);
    }

    #[test]
    fn summaries_of_earlier_versions_still_load() {
        // An import summary as version 0.1 stored it: no export fields, an unknown extra field.
        let text = r#"{"kind":"import","dry_run":true,"strategy":"merge","target":"t",
            "schema":"public","tables":[{"table":"a","remote_table":"public.a","key":["id"],
            "created":false,"source_rows":2,"inserts":1,"updates":0,"unchanged":1,"skipped":0,
            "deletes":0,"remote_only":0,"problems":0,"ms":3}],"totals":{"source_rows":2},
            "problems":[],"problems_total":0,"timings":{"connect_ms":1,"total_ms":2},
            "rows_per_s":1000,"local_only_tables":[],"remote_only_tables":[],"later":1}"#;
        let summary = Summary::parse(text).expect("loads");
        assert_eq!(summary.kind, Kind::Import);
        assert_eq!(summary.tables[0].counts.unchanged, 1);
        assert_eq!(summary.totals.inserts, 0);
        assert!(Summary::parse("{}").is_none());
    }
}
