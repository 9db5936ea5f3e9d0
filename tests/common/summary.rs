//! A job's summary as tests read it: the counts per table (`Counts`, also as
//! cloud_sync_job_tables shows them) and what an export shipped (`Shipped`). The summary is JSON;
//! tests reach it only through this module, so a typed summary would change this file alone.

use rusqlite::Connection;
use serde_json::{json, Value};

use super::local::rows_of;

/// The summary of a job: what cloud_sync_run returned, or its stored row (`job_row`).
pub fn summary_of(job: &Value) -> &Value {
    &job["summary"]
}

/// The problems the summary lists, one line each: table, key, column and what is wrong, each
/// as JSON (`"p" {"id":2} "n" "text cannot become bigint"`, null where a problem has none).
pub fn listed_problems(job: &Value) -> Vec<String> {
    summary_of(job)["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems listed in {job}"))
        .iter()
        .map(|p| {
            format!(
                "{} {} {} {}",
                p["table"], p["key"], p["column"], p["problem"]
            )
        })
        .collect()
}

/// How many problems the job found in all (it lists only so many).
pub fn problems_total_of(job: &Value) -> i64 {
    summary_of(job)["problems_total"]
        .as_i64()
        .unwrap_or_else(|| panic!("no problems_total in {job}"))
}

/// The last tracked change the export covered, if it recorded one.
pub fn watermark_of(job: &Value) -> Option<i64> {
    summary_of(job)["watermark"].as_i64()
}

/// The summary's entry for table `name`.
pub fn table_of<'a>(job: &'a Value, name: &str) -> &'a Value {
    summary_of(job)["tables"]
        .as_array()
        .unwrap_or_else(|| panic!("no tables in {job}"))
        .iter()
        .find(|t| t["table"] == name)
        .unwrap_or_else(|| panic!("no table {name} in {job}"))
}

/// The counts the summary reports for table `name`.
pub fn counts_of(job: &Value, name: &str) -> Counts {
    Counts::of(table_of(job, name))
}

/// `Counts` with the named counts and every other one zero (remote_only `Some(0)`):
/// `counts!(source_rows: 3, inserts: 2, updates: 1)`. One line where a struct literal would
/// take one a field.
#[allow(unused_macros)] // each test binary builds this module; not all of them use it
macro_rules! counts {
    ($($field:ident: $n:expr),* $(,)?) => {
        $crate::common::summary::Counts { $($field: $n,)* ..$crate::common::summary::Counts::default() }
    };
}
#[allow(unused_imports)]
pub(crate) use counts;

/// What a job did to one table, as its summary, its report and cloud_sync_job_tables count it.
/// `Counts::default()` is all zero, so an expectation names only the counts that are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub source_rows: i64,
    pub inserts: i64,
    pub updates: i64,
    pub unchanged: i64,
    pub skipped: i64,
    pub deletes: i64,
    /// `None` where nothing counted them: an incremental export reads no whole remote table.
    pub remote_only: Option<i64>,
    pub problems: i64,
}

impl Default for Counts {
    fn default() -> Counts {
        Counts {
            source_rows: 0,
            inserts: 0,
            updates: 0,
            unchanged: 0,
            skipped: 0,
            deletes: 0,
            remote_only: Some(0),
            problems: 0,
        }
    }
}

impl Counts {
    /// The counts of one table entry of a summary or a report (every count must be there).
    pub fn of(entry: &Value) -> Counts {
        let count = |field: &str| {
            entry[field]
                .as_i64()
                .unwrap_or_else(|| panic!("no count {field} in {entry}"))
        };
        assert!(
            entry.get("remote_only").is_some(),
            "no count remote_only in {entry}"
        );
        Counts {
            source_rows: count("source_rows"),
            inserts: count("inserts"),
            updates: count("updates"),
            unchanged: count("unchanged"),
            skipped: count("skipped"),
            deletes: count("deletes"),
            remote_only: entry["remote_only"].as_i64(),
            problems: count("problems"),
        }
    }

    /// As a JSON table entry, the way summaries and reports write it.
    pub fn to_json(self, table: &str) -> Value {
        json!({
            "table": table, "source_rows": self.source_rows, "inserts": self.inserts,
            "updates": self.updates, "unchanged": self.unchanged, "skipped": self.skipped,
            "deletes": self.deletes, "remote_only": self.remote_only, "problems": self.problems,
        })
    }

    /// The counts as text, in cloud_sync_job_tables's column order (as CSV and Markdown
    /// reports write them; an uncounted remote_only is empty).
    pub fn cells(self) -> Vec<String> {
        [
            Some(self.source_rows),
            Some(self.inserts),
            Some(self.updates),
            Some(self.unchanged),
            Some(self.skipped),
            Some(self.deletes),
            self.remote_only,
            Some(self.problems),
        ]
        .iter()
        .map(|n| n.map_or_else(String::new, |n| n.to_string()))
        .collect()
    }
}

/// What an export did to one table: its mode, how many recorded changes it covered, and its
/// counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipped {
    pub mode: String,
    pub changes: i64,
    pub counts: Counts,
}

/// What the export `job` did to table `name`.
pub fn shipped(job: &Value, name: &str) -> Shipped {
    let entry = table_of(job, name);
    Shipped {
        mode: entry["mode"]
            .as_str()
            .unwrap_or_else(|| panic!("no mode in {entry}"))
            .to_string(),
        changes: entry["changes"]
            .as_i64()
            .unwrap_or_else(|| panic!("no changes in {entry}")),
        counts: Counts::of(entry),
    }
}

/// Checks what the export `job` did to table `name`.
pub fn assert_shipped(job: &Value, name: &str, expected: Shipped) {
    assert_eq!(shipped(job, name), expected, "{name}: {job}");
}

/// An incremental export that covered `changes` recorded changes, with `counts`: it reads no
/// whole remote table, so it counts no remote_only.
pub fn incremental(changes: i64, counts: Counts) -> Shipped {
    Shipped {
        mode: "incremental".into(),
        changes,
        counts: Counts {
            remote_only: None,
            ..counts
        },
    }
}

/// A full export (every local row compared, no recorded change used), with `counts`.
pub fn full(counts: Counts) -> Shipped {
    Shipped {
        mode: "full".into(),
        changes: 0,
        counts,
    }
}

/// The rows of cloud_sync_job_tables(`id`): each table's name and counts.
pub fn job_tables(conn: &Connection, id: i64) -> Vec<(String, Counts)> {
    rows_of::<(String, i64, i64, i64, i64, i64, i64, Option<i64>, i64)>(
        conn,
        &format!(
            "SELECT table_name, source_rows, inserts, updates, unchanged, skipped, deletes,
                    remote_only, problems FROM cloud_sync_job_tables({id})"
        ),
    )
    .into_iter()
    .map(|r| {
        let counts = Counts {
            source_rows: r.1,
            inserts: r.2,
            updates: r.3,
            unchanged: r.4,
            skipped: r.5,
            deletes: r.6,
            remote_only: r.7,
            problems: r.8,
        };
        (r.0, counts)
    })
    .collect()
}
