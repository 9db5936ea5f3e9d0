//! Export: local tables -> the remote Postgres, in one remote transaction.
//!
//! The summary this returns (stored as the job's `summary`) has this shape:
//! ```json
//! {"kind": "export", "dry_run": true, "target": "<redacted URL>", "schema": "public",
//!  "tables": [{"table": "items", "remote_table": "public.items", "key": ["id"],
//!              "created": true, "source_rows": 10, "inserts": 10, "updates": 0,
//!              "unchanged": 0, "skipped": 0, "deletes": 0, "remote_only": 0,
//!              "problems": 0, "columns": [{"name": "id", "sqlite_type": "INTEGER",
//!              "postgres_type": "bigint"}], "ms": 12}],
//!  "totals": {"source_rows": 10, "inserts": 10, "updates": 0, "unchanged": 0,
//!             "skipped": 0, "deletes": 0, "remote_only": 0, "problems": 0},
//!  "problems": [{"table": "t", "key": {"id": 5}, "column": "c", "problem": "..."}],
//!  "problems_total": 0, "timings": {"connect_ms": 1.0, "total_ms": 2.0}, "rows_per_s": 5.0}
//! ```

use serde_json::Value;

use super::options::ExportOptions;
use super::{JobLog, Progress};
use crate::error::{Error, Result};
use crate::remote::ConnInfo;
use crate::sqlite::Db;

pub struct ExportRequest<'a> {
    pub info: &'a ConnInfo,
    pub dry_run: bool,
    pub options: &'a ExportOptions,
}

/// The tables an export with `options` would cover, after `tables`, `exclude` and eligibility.
/// A name in `tables`, `exclude` or `use_rowid` that is not a local table is an error.
pub fn select_tables(_db: &Db, _options: &ExportOptions) -> Result<Vec<String>> {
    Err(Error::invalid("export is not built yet"))
}

/// Runs one export. Errors carry the table and statement at fault; the remote transaction is
/// rolled back on any error, and always for a dry run.
pub fn run(
    _db: &Db,
    _request: &ExportRequest,
    _progress: &Progress,
    _log: &mut JobLog,
) -> Result<Value> {
    Err(Error::invalid("export is not built yet"))
}
