//! The Markdown report (GitHub-flavoured): a title, then sections Job, Attempts, Tables,
//! Problems and Log, each a table (or a sentence saying it is empty). Every stored text is
//! escaped for its cell, so nothing in a job can break the table or drive a terminal.

use std::fmt::Write as _;

use serde_json::Value;

use super::counts_as_text;
use super::load::{Job, Report};
use crate::sync::summary::TableCounts;

pub(super) fn render(report: &Report) -> String {
    let job = &report.job;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# cloud_sync job {}: {}{}, {}",
        job.id,
        md_text(&job.kind),
        if job.dry_run { " (dry run)" } else { "" },
        md_text(&job.status)
    );
    job_section(&mut out, job);
    attempts_section(&mut out, report);
    tables_section(&mut out, report);
    problems_section(&mut out, report);
    log_section(&mut out, report);
    // Like the other formats, no line break at the end: the sqlite3 shell adds one.
    out.truncate(out.trim_end_matches('\n').len());
    out
}

fn opt_text(value: &Option<String>) -> String {
    md_text(value.as_deref().unwrap_or(""))
}

fn opt_code(value: &Option<String>) -> String {
    md_code(value.as_deref().unwrap_or(""))
}

fn job_section(out: &mut String, job: &Job) {
    section(out, "Job");
    md_table(
        out,
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
            vec!["requested by".into(), opt_text(&job.requested_by)],
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
}

fn attempts_section(out: &mut String, report: &Report) {
    section(out, "Attempts");
    if report.attempts.is_empty() {
        out.push_str("No attempts.\n");
        return;
    }
    md_table(
        out,
        &[
            ("attempt", true),
            ("started at", false),
            ("finished at", false),
            ("outcome", false),
            ("error", false),
        ],
        report
            .attempts
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

fn tables_section(out: &mut String, report: &Report) {
    section(out, "Tables");
    if report.tables().is_empty() {
        out.push_str(if report.job.summary.is_some() {
            "No tables.\n"
        } else {
            "No tables: the job has no summary.\n"
        });
        return;
    }
    let mut header = vec![("table", false)];
    header.extend(TableCounts::FIELDS.iter().map(|c| (*c, true)));
    md_table(
        out,
        &header,
        report
            .tables()
            .iter()
            .map(|t| {
                std::iter::once(md_code(&t.table))
                    .chain(counts_as_text(&t.counts))
                    .collect()
            })
            .collect(),
    );
    let notes: Vec<Vec<String>> = report
        .tables()
        .iter()
        .flat_map(|t| {
            t.not_created
                .iter()
                .map(|note| vec![md_code(&t.table), md_code(note)])
        })
        .collect();
    if !notes.is_empty() {
        out.push_str("\nNot created on the other side (notes, not problems):\n\n");
        md_table(out, &[("table", false), ("not created", false)], notes);
    }
}

fn problems_section(out: &mut String, report: &Report) {
    section(out, "Problems");
    let listed = report.problems().len() as u64;
    let total = report.problems_total();
    if total == 0 && listed == 0 {
        out.push_str("No problems.\n");
        return;
    }
    let _ = write!(
        out,
        "{total} problem{} in total",
        if total == 1 { "" } else { "s" }
    );
    if listed < total {
        let _ = write!(out, "; the summary lists the first {listed}");
    }
    out.push_str(".\n");
    if listed == 0 {
        return;
    }
    out.push('\n');
    md_table(
        out,
        &[
            ("table", false),
            ("key", false),
            ("column", false),
            ("problem", false),
        ],
        report
            .problems()
            .iter()
            .map(|p| {
                vec![
                    md_code(&p.table),
                    md_value(&p.key),
                    p.column.as_deref().map(md_code).unwrap_or_default(),
                    md_code(&p.problem),
                ]
            })
            .collect(),
    );
}

fn log_section(out: &mut String, report: &Report) {
    section(out, "Log");
    if report.log.is_empty() {
        out.push_str("No log entries.\n");
        return;
    }
    md_table(
        out,
        &[
            ("time", false),
            ("level", false),
            ("table", false),
            ("message", false),
            ("attempt", true),
        ],
        report
            .log
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
}
