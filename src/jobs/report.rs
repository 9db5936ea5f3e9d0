//! The audit report of one job: JSON, CSV or Markdown.
//!
//! Everything comes from cloud_sync's own tables, read in one snapshot: the job, the redacted
//! display form of its saved connection, its attempts, the per-table counts and the problems of
//! its summary, and its log. Nothing reaches the network and nothing is decrypted: only stored
//! fields are used, and none of them ever holds a secret (a connection string is stored only
//! encrypted; `display`, errors and logs hold its redacted form).
//!
//! - JSON: one object `{"job", "attempts", "tables", "problems", "problems_total", "log"}`,
//!   pretty-printed, keys in that order.
//! - CSV (RFC 4180, CRLF between records, no line break after the last): the per-table counts,
//!   a header `table_name,source_rows,...,problems` and one record per table.
//! - Markdown (GitHub-flavoured): a title, then sections Job, Attempts, Tables, Problems, Log,
//!   each a table (or a sentence saying it is empty).

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::views::{self, LogLine};
use crate::error::{Error, Result};
use crate::local::schema;
use crate::sqlite::{Db, Param};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Markdown,
}

impl Format {
    fn parse(format: &str) -> Result<Format> {
        match format {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "markdown" => Ok(Format::Markdown),
            other => Err(Error::invalid(format!(
                "unknown format '{other}': the format is 'json' (the default), 'csv' or 'markdown'"
            ))),
        }
    }
}

/// Renders job `id`'s report in `format` (`json`, `csv` or `markdown`).
pub fn render(db: &Db, id: i64, format: &str) -> Result<String> {
    let format = Format::parse(format)?;
    let report = Report::load(db, id)?;
    Ok(match format {
        Format::Json => report.json(),
        Format::Csv => report.csv(),
        Format::Markdown => report.markdown(),
    })
}

/// The job row, with its connection's display form (`None` once the connection is deleted).
struct Job {
    id: i64,
    kind: String,
    dry_run: bool,
    status: String,
    connection_name: String,
    connection_display: Option<String>,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    /// When a job queued again for a retry is due.
    next_attempt_at: Option<String>,
    attempts: i64,
    max_attempts: i64,
    /// The stored options, parsed (kept as text should they not parse).
    options: Value,
    error: Option<String>,
    summary: Option<String>,
}

struct Attempt {
    attempt: i64,
    started_at: String,
    finished_at: Option<String>,
    outcome: Option<String>,
    error: Option<String>,
}

/// One element of the summary's `tables`: its name and its counts, in `crate::sync::summary::TableCounts::FIELDS` order, as
/// stored (a count the summary lacks is null).
struct TableCounts {
    table: Value,
    counts: Vec<Value>,
}

/// One element of the summary's `problems`, as stored.
struct Problem {
    table: Value,
    key: Value,
    column: Value,
    problem: Value,
}

struct Report {
    job: Job,
    attempts: Vec<Attempt>,
    tables: Vec<TableCounts>,
    problems: Vec<Problem>,
    problems_total: Value,
    log: Vec<LogLine>,
}

impl Report {
    /// Reads everything in one snapshot, so a job finishing meanwhile is seen before or after,
    /// never half-way.
    fn load(db: &Db, id: i64) -> Result<Report> {
        schema::require_installed(db)?;
        db.snapshot(|| {
            let job =
                load_job(db, id)?.ok_or_else(|| Error::invalid(format!("unknown job {id}")))?;
            let attempts = load_attempts(db, id)?;
            let log = views::job_log(db, id)?;
            let summary = match &job.summary {
                Some(text) => serde_json::from_str(text).map_err(|e| {
                    Error::local(format!("job {id}'s summary is not valid JSON: {e}"))
                })?,
                None => Value::Null,
            };
            let tables = elements(&summary, "tables")
                .map(|t| TableCounts {
                    table: t["table"].clone(),
                    counts: crate::sync::summary::TableCounts::FIELDS
                        .iter()
                        .map(|c| t[*c].clone())
                        .collect(),
                })
                .collect();
            let problems: Vec<Problem> = elements(&summary, "problems")
                .map(|p| Problem {
                    table: p["table"].clone(),
                    key: p["key"].clone(),
                    column: p["column"].clone(),
                    problem: p["problem"].clone(),
                })
                .collect();
            let problems_total = match &summary["problems_total"] {
                Value::Null => json!(problems.len()),
                total => total.clone(),
            };
            Ok(Report {
                job,
                attempts,
                tables,
                problems,
                problems_total,
                log,
            })
        })
    }

    fn json(&self) -> String {
        let job = &self.job;
        let text = |v: &Option<String>| Json::Value(json!(v));
        let report = Json::Object(vec![
            (
                "job",
                Json::Object(vec![
                    ("id", Json::Value(json!(job.id))),
                    ("kind", Json::Value(json!(job.kind))),
                    ("dry_run", Json::Value(json!(job.dry_run))),
                    ("status", Json::Value(json!(job.status))),
                    (
                        "connection",
                        Json::Object(vec![
                            ("name", Json::Value(json!(job.connection_name))),
                            ("display", text(&job.connection_display)),
                            (
                                "deleted",
                                Json::Value(json!(job.connection_display.is_none())),
                            ),
                        ]),
                    ),
                    ("created_at", Json::Value(json!(job.created_at))),
                    ("started_at", text(&job.started_at)),
                    ("finished_at", text(&job.finished_at)),
                    ("next_attempt_at", text(&job.next_attempt_at)),
                    ("attempts", Json::Value(json!(job.attempts))),
                    ("max_attempts", Json::Value(json!(job.max_attempts))),
                    ("options", Json::Value(job.options.clone())),
                    ("error", text(&job.error)),
                ]),
            ),
            (
                "attempts",
                Json::Array(
                    self.attempts
                        .iter()
                        .map(|a| {
                            Json::Object(vec![
                                ("attempt", Json::Value(json!(a.attempt))),
                                ("started_at", Json::Value(json!(a.started_at))),
                                ("finished_at", text(&a.finished_at)),
                                ("outcome", text(&a.outcome)),
                                ("error", text(&a.error)),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "tables",
                Json::Array(
                    self.tables
                        .iter()
                        .map(|t| {
                            let mut fields = vec![("table", Json::Value(t.table.clone()))];
                            fields.extend(
                                crate::sync::summary::TableCounts::FIELDS
                                    .iter()
                                    .zip(&t.counts)
                                    .map(|(name, count)| (*name, Json::Value(count.clone()))),
                            );
                            Json::Object(fields)
                        })
                        .collect(),
                ),
            ),
            (
                "problems",
                Json::Array(
                    self.problems
                        .iter()
                        .map(|p| {
                            Json::Object(vec![
                                ("table", Json::Value(p.table.clone())),
                                ("key", Json::Value(p.key.clone())),
                                ("column", Json::Value(p.column.clone())),
                                ("problem", Json::Value(p.problem.clone())),
                            ])
                        })
                        .collect(),
                ),
            ),
            ("problems_total", Json::Value(self.problems_total.clone())),
            (
                "log",
                Json::Array(
                    self.log
                        .iter()
                        .map(|l| {
                            Json::Object(vec![
                                ("time", Json::Value(json!(l.at))),
                                ("level", Json::Value(json!(l.level))),
                                ("table", text(&l.table_name)),
                                ("message", Json::Value(json!(l.message))),
                                ("attempt", Json::Value(json!(l.attempt))),
                            ])
                        })
                        .collect(),
                ),
            ),
        ]);
        let mut out = String::new();
        report.write(0, &mut out);
        out
    }

    fn csv(&self) -> String {
        let mut records = vec![format!(
            "table_name,{}",
            crate::sync::summary::TableCounts::FIELDS.join(",")
        )];
        for table in &self.tables {
            let fields: Vec<String> = std::iter::once(&table.table)
                .chain(&table.counts)
                .map(|v| csv_field(&plain(v)))
                .collect();
            records.push(fields.join(","));
        }
        records.join("\r\n")
    }

    fn markdown(&self) -> String {
        let job = &self.job;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# cloud_sync job {}: {}{}, {}",
            job.id,
            md_text(&job.kind),
            if job.dry_run { " (dry run)" } else { "" },
            md_text(&job.status)
        );

        let opt_text = |v: &Option<String>| md_text(v.as_deref().unwrap_or(""));
        let opt_code = |v: &Option<String>| md_code(v.as_deref().unwrap_or(""));
        section(&mut out, "Job");
        md_table(
            &mut out,
            &[("field", false), ("value", false)],
            vec![
                vec!["id".into(), job.id.to_string()],
                vec!["kind".into(), md_text(&job.kind)],
                vec![
                    "dry run".into(),
                    if job.dry_run { "yes" } else { "no" }.into(),
                ],
                vec!["status".into(), md_text(&job.status)],
                vec!["connection".into(), md_code(&job.connection_name)],
                vec![
                    "connection display".into(),
                    match &job.connection_display {
                        Some(display) => md_code(display),
                        None => "deleted since the job was queued".into(),
                    },
                ],
                vec!["created at".into(), md_text(&job.created_at)],
                vec!["started at".into(), opt_text(&job.started_at)],
                vec!["finished at".into(), opt_text(&job.finished_at)],
                vec!["next attempt at".into(), opt_text(&job.next_attempt_at)],
                vec![
                    "attempts".into(),
                    format!("{} of {}", job.attempts, job.max_attempts),
                ],
                vec!["options".into(), md_value(&job.options)],
                vec!["error".into(), opt_code(&job.error)],
            ],
        );

        section(&mut out, "Attempts");
        if self.attempts.is_empty() {
            out.push_str("No attempts.\n");
        } else {
            md_table(
                &mut out,
                &[
                    ("attempt", true),
                    ("started at", false),
                    ("finished at", false),
                    ("outcome", false),
                    ("error", false),
                ],
                self.attempts
                    .iter()
                    .map(|a| {
                        vec![
                            a.attempt.to_string(),
                            md_text(&a.started_at),
                            opt_text(&a.finished_at),
                            opt_text(&a.outcome),
                            opt_code(&a.error),
                        ]
                    })
                    .collect(),
            );
        }

        section(&mut out, "Tables");
        if self.tables.is_empty() {
            out.push_str(if job.summary.is_some() {
                "No tables.\n"
            } else {
                "No tables: the job has no summary.\n"
            });
        } else {
            let mut header = vec![("table", false)];
            header.extend(
                crate::sync::summary::TableCounts::FIELDS
                    .iter()
                    .map(|c| (*c, true)),
            );
            md_table(
                &mut out,
                &header,
                self.tables
                    .iter()
                    .map(|t| {
                        std::iter::once(&t.table)
                            .chain(&t.counts)
                            .map(md_value)
                            .collect()
                    })
                    .collect(),
            );
        }

        section(&mut out, "Problems");
        let total = self
            .problems_total
            .as_u64()
            .unwrap_or(self.problems.len() as u64);
        if total == 0 && self.problems.is_empty() {
            out.push_str("No problems.\n");
        } else {
            let _ = write!(
                out,
                "{total} problem{} in total",
                if total == 1 { "" } else { "s" }
            );
            if (self.problems.len() as u64) < total {
                let _ = write!(out, "; the summary lists the first {}", self.problems.len());
            }
            out.push_str(".\n");
            if !self.problems.is_empty() {
                out.push('\n');
                md_table(
                    &mut out,
                    &[
                        ("table", false),
                        ("key", false),
                        ("column", false),
                        ("problem", false),
                    ],
                    self.problems
                        .iter()
                        .map(|p| {
                            [&p.table, &p.key, &p.column, &p.problem]
                                .into_iter()
                                .map(md_value)
                                .collect()
                        })
                        .collect(),
                );
            }
        }

        section(&mut out, "Log");
        if self.log.is_empty() {
            out.push_str("No log entries.\n");
        } else {
            md_table(
                &mut out,
                &[
                    ("time", false),
                    ("level", false),
                    ("table", false),
                    ("message", false),
                    ("attempt", true),
                ],
                self.log
                    .iter()
                    .map(|l| {
                        vec![
                            md_text(&l.at),
                            md_text(&l.level),
                            opt_code(&l.table_name),
                            md_code(&l.message),
                            l.attempt.to_string(),
                        ]
                    })
                    .collect(),
            );
        }
        // Like the other formats, no line break at the end: the sqlite3 shell adds one.
        out.truncate(out.trim_end_matches('\n').len());
        out
    }
}

fn load_job(db: &Db, id: i64) -> Result<Option<Job>> {
    // The job keeps the connection's id and name; a connection deleted since (its id set to
    // NULL, left dangling, or reused by another name) has no display form any more.
    db.query_row(
        "SELECT j.id, j.kind, j.dry_run, j.status, j.connection_name, c.display, j.created_at,
                j.started_at, j.finished_at, j.next_attempt_at, j.attempts, j.max_attempts,
                j.options, j.error, j.summary
         FROM cloud_sync_jobs j
         LEFT JOIN cloud_sync_connections c
           ON c.id = j.connection_id AND c.name = j.connection_name
         WHERE j.id = ?1",
        &[Param::Int(id)],
        |row| {
            let options = row.text(12).unwrap_or_default();
            Ok(Job {
                id: row.int(0),
                kind: row.text(1).unwrap_or_default(),
                dry_run: row.int(2) != 0,
                status: row.text(3).unwrap_or_default(),
                connection_name: row.text(4).unwrap_or_default(),
                connection_display: row.text(5),
                created_at: row.text(6).unwrap_or_default(),
                started_at: row.text(7),
                finished_at: row.text(8),
                next_attempt_at: row.text(9),
                attempts: row.int(10),
                max_attempts: row.int(11),
                options: serde_json::from_str(&options).unwrap_or(Value::String(options)),
                error: row.text(13),
                summary: row.text(14),
            })
        },
    )
}

fn load_attempts(db: &Db, id: i64) -> Result<Vec<Attempt>> {
    let mut stmt = db.prepare(
        "SELECT attempt, started_at, finished_at, outcome, error FROM cloud_sync_job_attempts
         WHERE job_id = ?1 ORDER BY attempt",
    )?;
    stmt.bind_all(&[Param::Int(id)])?;
    let mut attempts = Vec::new();
    while stmt.step()? {
        attempts.push(Attempt {
            attempt: stmt.int(0),
            started_at: stmt.text(1).unwrap_or_default(),
            finished_at: stmt.text(2),
            outcome: stmt.text(3),
            error: stmt.text(4),
        });
    }
    Ok(attempts)
}

/// The elements of the array `summary[key]` (none when it is missing).
fn elements<'a>(summary: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    summary[key].as_array().into_iter().flatten()
}

/// A JSON value whose objects keep the order they were built in (serde_json's map sorts its
/// keys), so the report reads top-down: the job first, its id first.
enum Json {
    Object(Vec<(&'static str, Json)>),
    Array(Vec<Json>),
    Value(Value),
}

impl Json {
    /// Pretty-prints at `depth` levels of two-space indentation.
    fn write(&self, depth: usize, out: &mut String) {
        let newline = |out: &mut String, depth: usize| {
            out.push('\n');
            out.push_str(&"  ".repeat(depth));
        };
        match self {
            // `{:#}` pretty-prints; a JSON string never holds a raw line break, so every line
            // break is layout and can take the indentation.
            Json::Value(value) => {
                let text = format!("{value:#}");
                out.push_str(&text.replace('\n', &format!("\n{}", "  ".repeat(depth))));
            }
            Json::Array(items) if items.is_empty() => out.push_str("[]"),
            Json::Object(fields) if fields.is_empty() => out.push_str("{}"),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    item.write(depth + 1, out);
                }
                newline(out, depth);
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    let _ = write!(out, "{}: ", Value::from(*key));
                    value.write(depth + 1, out);
                }
                newline(out, depth);
                out.push('}');
            }
        }
    }
}

/// A stored value as text: a string as itself, null as nothing, anything else as compact JSON.
fn plain(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a double quote, CR or LF (or starts
/// or ends with a space or tab, which some readers would trim), its double quotes doubled.
fn csv_field(field: &str) -> String {
    let edge = |c: char| c == ' ' || c == '\t';
    if field.contains([',', '"', '\r', '\n']) || field.starts_with(edge) || field.ends_with(edge) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

fn section(out: &mut String, title: &str) {
    let _ = write!(out, "\n## {title}\n\n");
}

/// A GitHub-flavoured Markdown table; `header` names each column and whether it is numeric
/// (right-aligned). Cells must already be escaped (`md_text`, `md_code`, `md_value`).
fn md_table(out: &mut String, header: &[(&str, bool)], rows: Vec<Vec<String>>) {
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = String>| {
        out.push('|');
        for cell in cells {
            if cell.is_empty() {
                out.push_str(" |");
            } else {
                let _ = write!(out, " {cell} |");
            }
        }
        out.push('\n');
    };
    line(out, &mut header.iter().map(|(name, _)| name.to_string()));
    line(
        out,
        &mut header
            .iter()
            .map(|(_, numeric)| if *numeric { "---:" } else { "---" }.to_string()),
    );
    for row in rows {
        line(out, &mut row.into_iter());
    }
}

/// A stored value in a Markdown cell: numbers and booleans as they are, text and JSON in code
/// spans, null as an empty cell.
fn md_value(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::String(s) => md_code(s),
        other => md_code(&other.to_string()),
    }
}

/// The lines of `text` (split at CRLF, CR or LF), for cells: a table row is one line, so line
/// breaks become `<br>`.
fn md_lines(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split("\r\n")
        .flat_map(|part| part.split(['\r', '\n']))
        .map(|line| line.chars().map(visible).collect())
}

/// Control characters (other than tab) as their visible Unicode symbols (NUL -> U+2400), so a
/// report shown in a terminal cannot drive it.
fn visible(c: char) -> char {
    match c {
        '\t' => c,
        '\u{0}'..='\u{1f}' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
        '\u{7f}' => '\u{2421}',
        _ => c,
    }
}

/// Text in a Markdown cell, every character that Markdown (or a table) could read as syntax
/// escaped with a backslash.
fn md_text(text: &str) -> String {
    md_lines(text)
        .map(|line| {
            let mut escaped = String::with_capacity(line.len());
            for c in line.chars() {
                if "\\`*_[]<>|~&$".contains(c) {
                    escaped.push('\\');
                }
                escaped.push(c);
            }
            escaped
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

/// Text in a Markdown cell as code spans, one per line: shown verbatim, only `|` escaped (a
/// table splits cells before code spans are read, and GFM takes `\|` as a pipe inside them).
fn md_code(text: &str) -> String {
    md_lines(text)
        .map(|line| {
            if line.trim().is_empty() {
                return String::new();
            }
            let line = line.replace('|', "\\|");
            let longest = line.split(|c| c != '`').map(str::len).max().unwrap_or(0);
            let fence = "`".repeat(longest + 1);
            // A code span drops one space at each end when both ends have one, and a backtick
            // at an end would join the fence.
            let pad = line.starts_with('`')
                || line.ends_with('`')
                || (line.starts_with(' ') && line.ends_with(' '));
            let pad = if pad { " " } else { "" };
            format!("{fence}{pad}{line}{pad}{fence}")
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("items"), "items");
        assert_eq!(csv_field("a|b c"), "a|b c");
        assert_eq!(csv_field("odd, \"name\""), "\"odd, \"\"name\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\rhere"), "\"cr\rhere\"");
        assert_eq!(csv_field(" spaced "), "\" spaced \"");
        assert_eq!(csv_field("in side"), "in side");
        assert_eq!(csv_field(""), "");
    }

    #[test]
    fn markdown_cells_escape_pipes_line_breaks_and_syntax() {
        assert_eq!(md_code("a|b"), "`a\\|b`");
        assert_eq!(md_code("a\\|b"), "`a\\\\|b`");
        assert_eq!(
            md_code("one\ntwo\r\nthree\rfour"),
            "`one`<br>`two`<br>`three`<br>`four`"
        );
        assert_eq!(md_code("x `y` z"), "``x `y` z``");
        assert_eq!(md_code("`y`"), "`` `y` ``");
        assert_eq!(md_code(" both "), "`  both  `");
        assert_eq!(md_code(""), "");
        assert_eq!(md_code("nul\u{0}esc\u{1b}"), "`nul\u{2400}esc\u{241b}`");
        assert_eq!(md_text("a|b*c_d"), "a\\|b\\*c\\_d");
        assert_eq!(md_text("x\\y"), "x\\\\y");
        assert_eq!(
            md_text("2024-01-02T03:04:05.678Z"),
            "2024-01-02T03:04:05.678Z"
        );
        assert_eq!(md_text("l1\nl2"), "l1<br>l2");
    }

    #[test]
    fn ordered_json_is_valid_and_keeps_its_order() {
        let value = Json::Object(vec![
            ("z", Json::Value(json!({"b": [1, 2], "a": "x\ny"}))),
            ("a", Json::Array(vec![])),
            (
                "m",
                Json::Array(vec![Json::Object(vec![]), Json::Value(json!(null))]),
            ),
        ]);
        let mut out = String::new();
        value.write(0, &mut out);
        let parsed: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            parsed,
            json!({"z": {"b": [1, 2], "a": "x\ny"}, "a": [], "m": [{}, null]})
        );
        assert!(
            out.find("\"z\"").unwrap() < out.find("\"a\": []").unwrap(),
            "{out}"
        );
    }

    #[test]
    fn unknown_formats_name_the_three() {
        let message = Format::parse("xml").unwrap_err().to_string();
        assert_eq!(
            message,
            "unknown format 'xml': the format is 'json' (the default), 'csv' or 'markdown'"
        );
        assert_eq!(Format::parse("markdown").unwrap(), Format::Markdown);
    }
}
