//! The JSON report: one object `{"job", "attempts", "tables", "problems", "problems_total",
//! "log"}`, pretty-printed. The structs below are its layout: serde writes a struct's fields in
//! the order they are declared, so the report reads top-down (the job first, its id first).
//! Attempts and the summary's problems are written as they are read. Values stored as JSON
//! (the options, a problem's key) are written as serde_json writes any `Value`.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::load::{Attempt, Job, Report};
use crate::jobs::views::LogLine;
use crate::sync::summary::{Problem, TableCounts, TableSummary};

pub(super) fn render(report: &Report) -> String {
    let document = Document {
        job: JobView::of(&report.job),
        attempts: &report.attempts,
        tables: report.tables().iter().map(TableView).collect(),
        problems: report.problems(),
        problems_total: report.problems_total(),
        log: report.log.iter().map(LogView::of).collect(),
    };
    // Only strings, numbers and `Value`s: nothing here can fail to serialize.
    serde_json::to_string_pretty(&document).expect("a report always serializes")
}

#[derive(serde::Serialize)]
struct Document<'a> {
    job: JobView<'a>,
    attempts: &'a [Attempt],
    tables: Vec<TableView<'a>>,
    problems: &'a [Problem],
    problems_total: u64,
    log: Vec<LogView<'a>>,
}

#[derive(serde::Serialize)]
struct JobView<'a> {
    id: i64,
    kind: &'a str,
    dry_run: bool,
    status: &'a str,
    connection: ConnectionView<'a>,
    requested_by: &'a Option<String>,
    created_at: &'a str,
    started_at: &'a Option<String>,
    finished_at: &'a Option<String>,
    next_attempt_at: &'a Option<String>,
    attempts: i64,
    max_attempts: i64,
    options: &'a Value,
    error: &'a Option<String>,
}

#[derive(serde::Serialize)]
struct ConnectionView<'a> {
    name: &'a str,
    display: &'a Option<String>,
    deleted: bool,
}

impl<'a> JobView<'a> {
    fn of(job: &'a Job) -> Self {
        JobView {
            id: job.id,
            kind: &job.kind,
            dry_run: job.dry_run,
            status: &job.status,
            connection: ConnectionView {
                name: &job.connection_name,
                display: &job.connection_display,
                deleted: job.connection_display.is_none(),
            },
            requested_by: &job.requested_by,
            created_at: &job.created_at,
            started_at: &job.started_at,
            finished_at: &job.finished_at,
            next_attempt_at: &job.next_attempt_at,
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            options: &job.options,
            error: &job.error,
        }
    }
}

/// A table: `table`, then its counts in `TableCounts::FIELDS` order (null where not measured),
/// and nothing else of the table's summary.
struct TableView<'a>(&'a TableSummary);

impl Serialize for TableView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let counts = self.0.counts.values();
        let notes = &self.0.not_created;
        let entries = 1 + counts.len() + usize::from(!notes.is_empty());
        let mut map = serializer.serialize_map(Some(entries))?;
        map.serialize_entry("table", &self.0.table)?;
        for (name, count) in TableCounts::FIELDS.iter().zip(counts) {
            map.serialize_entry(name, &count)?;
        }
        if !notes.is_empty() {
            map.serialize_entry("not_created", notes)?;
        }
        map.end()
    }
}

#[derive(serde::Serialize)]
struct LogView<'a> {
    time: &'a str,
    level: &'a str,
    table: &'a Option<String>,
    message: &'a str,
    attempt: i64,
}

impl<'a> LogView<'a> {
    fn of(l: &'a LogLine) -> Self {
        LogView {
            time: &l.at,
            level: &l.level,
            table: &l.table_name,
            message: &l.message,
            attempt: l.attempt,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sync::summary::Summary;

    fn report() -> Report {
        let summary = Summary::parse(
            r#"{"kind": "export", "dry_run": true, "problems_total": 3,
                "tables": [{"table": "a", "source_rows": 2, "inserts": 1, "ms": 1.5,
                            "remote_only": null, "mode": "full"}],
                "problems": [{"table": "a", "key": {"id": 1}, "column": null,
                              "problem": "too long"}]}"#,
        )
        .expect("a summary");
        Report {
            job: Job {
                id: 7,
                kind: "export".into(),
                dry_run: true,
                status: "failed".into(),
                requested_by: Some("alice".into()),
                connection_name: "prod".into(),
                connection_display: None,
                created_at: "t0".into(),
                started_at: Some("t1".into()),
                finished_at: None,
                next_attempt_at: None,
                attempts: 1,
                max_attempts: 5,
                options: json!({"tables": ["a"], "schema": "s"}),
                error: Some("boom".into()),
                summary: Some(summary),
            },
            attempts: vec![Attempt {
                attempt: 1,
                started_at: "t1".into(),
                finished_at: None,
                outcome: None,
                error: None,
            }],
            log: vec![],
        }
    }

    #[test]
    fn keys_keep_the_report_order_and_the_text_is_valid_json() {
        let text = render(&report());
        assert!(
            text.starts_with("{\n  \"job\": {\n    \"id\": 7,\n"),
            "{text}"
        );
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        let mut top = keys(&parsed);
        top.sort();
        assert_eq!(
            top,
            [
                "attempts",
                "job",
                "log",
                "problems",
                "problems_total",
                "tables"
            ]
        );
        assert_eq!(
            parsed["job"]["connection"],
            json!({"name": "prod", "display": null, "deleted": true})
        );
        assert_eq!(parsed["job"]["requested_by"], json!("alice"));
        // Only the table and its counts; an unmeasured count is null.
        let mut table = keys(&parsed["tables"][0]);
        table.sort();
        let mut expected: Vec<&str> = TableCounts::FIELDS.to_vec();
        expected.push("table");
        expected.sort();
        assert_eq!(table, expected);
        assert_eq!(parsed["tables"][0]["inserts"], json!(1));
        assert_eq!(parsed["tables"][0]["remote_only"], Value::Null);
        assert_eq!(
            parsed["problems"],
            json!([{"table": "a", "key": {"id": 1}, "column": null, "problem": "too long"}])
        );
        assert_eq!(parsed["problems_total"], json!(3));
        // serde_json's map sorts keys: the order is read from the text, at each level's indent.
        let order = |indent: usize, keys: &[&str]| {
            let at: Vec<usize> = keys
                .iter()
                .map(|k| {
                    let line = format!("\n{}\"{k}\": ", " ".repeat(indent));
                    text.find(&line).expect(k)
                })
                .collect();
            assert!(at.windows(2).all(|w| w[0] < w[1]), "{keys:?}: {text}");
        };
        order(
            2,
            &[
                "job",
                "attempts",
                "tables",
                "problems",
                "problems_total",
                "log",
            ],
        );
        order(
            4,
            &[
                "id",
                "kind",
                "dry_run",
                "status",
                "connection",
                "requested_by",
                "created_at",
            ],
        );
        order(
            6,
            &std::iter::once("table")
                .chain(TableCounts::FIELDS)
                .collect::<Vec<_>>(),
        );
    }
}
