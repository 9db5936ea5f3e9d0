//! cloud_sync_report(job_id [, format]): the audit report of one job as JSON, CSV or Markdown,
//! for jobs made the real way (dry runs against the test server, a job with problems, a job
//! whose server is unreachable), with the built extension loaded into a rusqlite host and into
//! the sqlite3 shell.

mod common;

use common::jobs::{dry_run, job_row, run_job};
use common::local::{error_of, int_of, save, value_of, with_dead_server, with_fresh_schema};
use common::summary::{counts, summary_of, Counts};
use common::{open_temp, shell, Pg};
use rusqlite::Connection;
use serde_json::{json, Value};

/// The per-table counts, as CSV and Markdown head them.
const COUNTS_HEADER: &str =
    "table_name,source_rows,inserts,updates,unchanged,skipped,deletes,remote_only,problems";
/// The CSV header: the counts, then who asked for the job.
const CSV_HEADER: &str = "table_name,source_rows,inserts,updates,unchanged,skipped,deletes,\
                          remote_only,problems,requested_by";

/// The report of job `id`; `format` `None` calls the one-argument form.
fn report_of(conn: &Connection, id: i64, format: Option<&str>) -> String {
    let result = match format {
        None => conn.query_row("SELECT cloud_sync_report(?1)", [id], |r| r.get(0)),
        Some(f) => conn.query_row(
            "SELECT cloud_sync_report(?1, ?2)",
            rusqlite::params![id, f],
            |r| r.get(0),
        ),
    };
    result.unwrap_or_else(|e| panic!("report of job {id} as {format:?}: {e}"))
}

/// The id of a dry-run export into `schema`, run now.
fn dry_run_into(conn: &Connection, schema: &str) -> i64 {
    dry_run(conn, &json!({ "schema": schema }))["id"]
        .as_i64()
        .unwrap()
}

/// Every format of job `id`'s report, checked for the test server's password (plain and
/// percent-encoded), and returned as (json, csv, markdown).
fn reports_without_secret(conn: &Connection, pg: &Pg, id: i64) -> (Value, String, String) {
    let default = report_of(conn, id, None);
    let json_text = report_of(conn, id, Some("json"));
    assert_eq!(default, json_text, "json is the default format");
    let csv = report_of(conn, id, Some("csv"));
    let markdown = report_of(conn, id, Some("markdown"));
    for text in [&json_text, &csv, &markdown] {
        pg.assert_no_password(text, &format!("job {id}'s report"));
    }
    let parsed = serde_json::from_str(&json_text)
        .unwrap_or_else(|e| panic!("the JSON report does not parse: {e}\n{json_text}"));
    (parsed, csv, markdown)
}

/// The counts the report shows for `table`.
fn report_counts(report: &Value, table: &str) -> Counts {
    let entry = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == table)
        .unwrap_or_else(|| panic!("no table {table} in {report}"));
    Counts::of(entry)
}

/// The cells of a CSV record or Markdown table row: `table` as the report writes it there, then
/// its counts.
fn counts_cells(table: &str, counts: Counts) -> Vec<String> {
    [vec![table.to_string()], counts.cells()].concat()
}

/// The rows of `sql` as JSON arrays, for comparing with the report.
fn rows(conn: &Connection, sql: &str) -> Vec<Value> {
    let mut stmt = conn.prepare(sql).unwrap();
    let columns = stmt.column_count();
    stmt.query_map([], |row| {
        (0..columns)
            .map(|i| {
                Ok(match row.get::<_, rusqlite::types::Value>(i)? {
                    rusqlite::types::Value::Null => Value::Null,
                    rusqlite::types::Value::Integer(n) => json!(n),
                    rusqlite::types::Value::Text(t) => json!(t),
                    other => panic!("unexpected {other:?}"),
                })
            })
            .collect::<rusqlite::Result<Vec<Value>>>()
            .map(Value::Array)
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

/// The report's `tables` as rows in cloud_sync_job_tables's column order.
fn table_rows(report: &Value) -> Vec<Value> {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            Value::Array(
                [
                    "table",
                    "source_rows",
                    "inserts",
                    "updates",
                    "unchanged",
                    "skipped",
                    "deletes",
                    "remote_only",
                    "problems",
                ]
                .iter()
                .map(|k| t[*k].clone())
                .collect(),
            )
        })
        .collect()
}

/// The report's `log` as rows in cloud_sync_job_log's column order, checked against what that
/// view shows for job `id`.
fn log_rows(conn: &Connection, report: &Value, id: i64) -> Vec<Value> {
    let log: Vec<Value> = report["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            json!([
                l["time"],
                l["level"],
                l["table"],
                l["message"],
                l["attempt"]
            ])
        })
        .collect();
    assert_eq!(
        log,
        rows(
            conn,
            &format!(
                "SELECT time, level, table_name, message, attempt FROM cloud_sync_job_log({id})"
            )
        )
    );
    log
}

/// A small RFC 4180 reader: records end at CRLF (outside quotes), the last one may not; a
/// quoted field holds anything, `""` being one quote.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = vec![];
    let mut record = vec![];
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => {
                quoted = false;
                assert!(
                    matches!(chars.peek(), None | Some(',') | Some('\r')),
                    "text after a closing quote in {text:?}"
                );
            }
            (true, c) => field.push(c),
            (false, '"') => {
                assert!(
                    field.is_empty(),
                    "a quote inside an unquoted field: {text:?}"
                );
                quoted = true;
            }
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "a CR without LF: {text:?}");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => {
                assert!(c != '\n', "a bare LF outside quotes: {text:?}");
                field.push(c);
            }
        }
    }
    assert!(!quoted, "an unclosed quote: {text:?}");
    record.push(field);
    records.push(record);
    records
}

/// The cells of one Markdown table row: split at pipes not escaped by a backslash, trimmed.
fn cells(line: &str) -> Vec<String> {
    assert!(
        line.starts_with('|') && line.ends_with('|') && !line.ends_with("\\|"),
        "not a table row: {line:?}"
    );
    let mut cells = vec![];
    let mut cell = String::new();
    let mut previous = '|';
    for c in line[1..].chars() {
        if c == '|' && previous != '\\' {
            cells.push(cell.trim().to_string());
            cell.clear();
        } else {
            cell.push(c);
        }
        previous = c;
    }
    cells
}

/// The Markdown report's sections (`## Title` -> its lines), after checking every table in it
/// as GitHub renders them: a blank line before, a header row, a delimiter row (`---`, `---:`),
/// then rows with exactly as many cells as the header.
fn md_sections(md: &str) -> Vec<(String, Vec<String>)> {
    let lines: Vec<&str> = md.lines().collect();
    assert!(lines[0].starts_with("# cloud_sync job "), "title: {md}");
    let mut i = 0;
    while i < lines.len() {
        if lines[i].starts_with('|') {
            assert_eq!(
                lines[i - 1],
                "",
                "no blank line before the table at {i}:\n{md}"
            );
            let width = cells(lines[i]).len();
            let delimiter = cells(lines[i + 1]);
            assert_eq!(delimiter.len(), width, "{md}");
            assert!(
                delimiter.iter().all(|d| d == "---" || d == "---:"),
                "not a delimiter row: {}\n{md}",
                lines[i + 1]
            );
            i += 2;
            while i < lines.len() && lines[i].starts_with('|') {
                assert_eq!(
                    cells(lines[i]).len(),
                    width,
                    "row {i} has another number of cells than its header: {}\n{md}",
                    lines[i]
                );
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    let mut sections: Vec<(String, Vec<String>)> = vec![];
    for line in &lines[1..] {
        if let Some(title) = line.strip_prefix("## ") {
            sections.push((title.to_string(), vec![]));
        } else if let Some((_, body)) = sections.last_mut() {
            if !line.is_empty() {
                body.push(line.to_string());
            }
        }
    }
    let titles: Vec<&str> = sections.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        titles,
        ["Job", "Attempts", "Tables", "Problems", "Log"],
        "{md}"
    );
    sections
}

/// One section's lines.
fn section<'a>(sections: &'a [(String, Vec<String>)], title: &str) -> &'a [String] {
    &sections.iter().find(|(t, _)| t == title).unwrap().1
}

/// A section's table as cells: header first (the delimiter row left out).
fn md_table(sections: &[(String, Vec<String>)], title: &str) -> Vec<Vec<String>> {
    let lines = section(sections, title);
    let table: Vec<&String> = lines.iter().filter(|l| l.starts_with('|')).collect();
    assert!(table.len() >= 2, "section {title} has no table: {lines:?}");
    table
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| cells(l))
        .collect()
}

/// The job section's value for `field`.
fn job_field(sections: &[(String, Vec<String>)], field: &str) -> String {
    md_table(sections, "Job")
        .into_iter()
        .find(|row| row[0] == field)
        .unwrap_or_else(|| panic!("no job field {field}"))[1]
        .clone()
}

#[test]
fn a_dry_run_report_in_every_format() {
    let (_dir, conn, pg, schema) = with_fresh_schema("report_dry", "r_dry");
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO items (name) VALUES ('tea'), ('coffee'), ('juice');
         CREATE TABLE \"odd, \"\"name\"\"\" (id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO \"odd, \"\"name\"\"\" VALUES (1, 'x'), (2, 'y');
         CREATE TABLE \"two\nlines\" (id INTEGER PRIMARY KEY);
         INSERT INTO \"two\nlines\" VALUES (7);",
    )
    .unwrap();
    let items = counts!(source_rows: 3, inserts: 3);
    let odd = counts!(source_rows: 2, inserts: 2);
    let two_lines = counts!(source_rows: 1, inserts: 1);
    let id = dry_run_into(&conn, &schema);
    let (report, csv, md) = reports_without_secret(&conn, &pg, id);

    // JSON: the job, its connection's redacted form, its attempt, counts and log.
    let keys: Vec<&String> = report.as_object().unwrap().keys().collect();
    let mut expected_keys = [
        "attempts",
        "job",
        "log",
        "problems",
        "problems_total",
        "tables",
    ];
    expected_keys.sort();
    assert_eq!(keys, expected_keys);
    let job = &report["job"];
    let stored = &rows(
        &conn,
        &format!(
            "SELECT created_at, started_at, finished_at, options FROM cloud_sync_jobs WHERE id = {id}"
        ),
    )[0];
    let display: String = value_of(
        &conn,
        "SELECT display FROM cloud_sync_connections WHERE name = 'prod'",
    );
    assert!(display.contains(":***@"), "{display}");
    assert_eq!(
        *job,
        json!({
            "id": id, "kind": "export", "dry_run": true, "status": "succeeded",
            "connection": {"name": "prod", "display": display, "deleted": false},
            "requested_by": null, "created_at": stored[0], "started_at": stored[1], "finished_at": stored[2],
            "next_attempt_at": null, "attempts": 1, "max_attempts": 5, "options": {"schema": schema}, "error": null,
        })
    );
    assert_eq!(stored[3], json!({ "schema": schema }).to_string());
    assert_eq!(
        report["attempts"],
        json!([{"attempt": 1, "started_at": stored[1], "finished_at": stored[2],
                "outcome": "succeeded", "error": null}])
    );
    let tables = table_rows(&report);
    assert_eq!(
        tables,
        rows(&conn, &format!("SELECT * FROM cloud_sync_job_tables({id})"))
    );
    assert_eq!(tables.len(), 3);
    assert_eq!(report_counts(&report, "items"), items);
    assert_eq!(report_counts(&report, "odd, \"name\""), odd);
    assert_eq!(report_counts(&report, "two\nlines"), two_lines);
    assert_eq!(
        (&report["problems"], &report["problems_total"]),
        (&json!([]), &json!(0))
    );
    let log = log_rows(&conn, &report, id);
    assert!(
        log.first().unwrap()[3]
            .as_str()
            .unwrap()
            .starts_with("claimed (attempt 1"),
        "{log:?}"
    );
    assert_eq!(log.last().unwrap()[3], "job succeeded");
    assert!(log.iter().any(|l| l[2] == "odd, \"name\""), "{log:?}");
    // Keys in reading order: the job first, its id first.
    let json_text = report_of(&conn, id, Some("json"));
    assert!(
        json_text.starts_with("{\n  \"job\": {\n    \"id\": "),
        "{json_text}"
    );

    // CSV: the header, then one record per table, RFC 4180 quoting.
    let records = parse_csv(&csv);
    assert_eq!(records[0].join(","), CSV_HEADER);
    assert_eq!(records.len(), 1 + tables.len(), "{csv}");
    for (record, table) in records[1..].iter().zip(&tables) {
        let mut expected: Vec<String> = table
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect();
        // No one was named: requested_by is empty.
        expected.push(String::new());
        assert_eq!(*record, expected, "{csv}");
    }
    assert!(csv.starts_with(&format!("{CSV_HEADER}\r\n")), "{csv:?}");
    for (table, counts) in [
        ("\"odd, \"\"name\"\"\"", odd),
        ("\"two\nlines\"", two_lines),
        ("items", items),
    ] {
        let record = counts_cells(table, counts).join(",");
        assert!(csv.contains(&format!("\r\n{record},")), "{record}: {csv:?}");
    }
    assert!(!csv.ends_with('\n'), "{csv:?}");

    // Markdown: a title, the sections, valid tables.
    assert_eq!(
        md.lines().next().unwrap(),
        format!("# cloud_sync job {id}: export (dry run), succeeded")
    );
    let sections = md_sections(&md);
    assert_eq!(job_field(&sections, "id"), id.to_string());
    assert_eq!(job_field(&sections, "kind"), "export");
    assert_eq!(job_field(&sections, "dry run"), "yes");
    assert_eq!(job_field(&sections, "status"), "succeeded");
    assert_eq!(job_field(&sections, "connection"), "`prod`");
    assert_eq!(
        job_field(&sections, "connection display"),
        format!("`{display}`")
    );
    assert_eq!(job_field(&sections, "attempts"), "1 of 5");
    assert_eq!(
        job_field(&sections, "options"),
        format!("`{}`", json!({ "schema": schema }))
    );
    assert_eq!(job_field(&sections, "error"), "");
    assert_eq!(
        md_table(&sections, "Attempts"),
        [
            vec!["attempt", "started at", "finished at", "outcome", "error"],
            vec![
                "1",
                stored[1].as_str().unwrap(),
                stored[2].as_str().unwrap(),
                "succeeded",
                ""
            ],
        ]
    );
    let counts = md_table(&sections, "Tables");
    assert_eq!(
        counts[0].join(","),
        COUNTS_HEADER.replace("table_name", "table")
    );
    assert_eq!(counts.len(), 1 + tables.len());
    for (table, counts_of_table) in [("`items`", items), ("`two`<br>`lines`", two_lines)] {
        assert!(
            counts.contains(&counts_cells(table, counts_of_table)),
            "{table}: {counts:?}"
        );
    }
    assert!(
        md.contains(
            "\n\n| table | source_rows | inserts | updates | unchanged | skipped | deletes \
             | remote_only | problems |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: \
             | ---: |\n"
        ),
        "{md}"
    );
    assert_eq!(section(&sections, "Problems"), ["No problems."]);
    let log_table = md_table(&sections, "Log");
    assert_eq!(
        log_table[0],
        ["time", "level", "table", "message", "attempt"]
    );
    assert_eq!(log_table.len(), 1 + log.len());
    assert!(
        log_table[1][3].starts_with("`claimed (attempt 1"),
        "{log_table:?}"
    );
    assert!(
        log_table
            .iter()
            .any(|row| row[3].starts_with("`connecting to postgresql://")
                && row[3].contains(":***@")),
        "{log_table:?}"
    );
    pg.psql(&format!("DROP SCHEMA {schema} CASCADE"));
}

#[test]
fn problems_are_listed_with_their_keys_and_pipes_and_line_breaks_are_escaped() {
    let (_dir, conn, pg, schema) = with_fresh_schema("report_problems", "r_problems");
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO t VALUES (1, 'a' || char(0));
         CREATE TABLE \"p|ipe\" (\"k|ey\" INTEGER PRIMARY KEY, t TEXT);
         INSERT INTO \"p|ipe\" VALUES (1, 'fine'), (2, 'nul' || char(0) || 'byte');
         CREATE TABLE mixed (id INTEGER PRIMARY KEY, \"line\nbreak\");
         INSERT INTO mixed VALUES (1, 5), (2, 'five');",
    )
    .unwrap();
    let id = dry_run_into(&conn, &schema);
    let (report, csv, md) = reports_without_secret(&conn, &pg, id);

    assert_eq!(
        report["problems"],
        summary_of(&job_row(&conn, id))["problems"]
    );
    assert_eq!(report["problems_total"], 3);
    let problems = report["problems"].as_array().unwrap();
    let find = |table: &str| problems.iter().find(|p| p["table"] == table).unwrap();
    assert_eq!(find("t")["key"], json!({"id": 1}));
    assert_eq!(find("t")["column"], "v");
    assert!(
        find("t")["problem"]
            .as_str()
            .unwrap()
            .starts_with("text holds a NUL byte"),
        "{problems:?}"
    );
    assert_eq!(find("p|ipe")["key"], json!({"k|ey": 2}));
    assert_eq!(find("mixed")["key"], Value::Null);
    assert!(
        find("mixed")["problem"]
            .as_str()
            .unwrap()
            .contains("line\nbreak"),
        "{problems:?}"
    );
    let pipe_counts = counts!(source_rows: 2, inserts: 1, skipped: 1, problems: 1);
    assert_eq!(
        report_counts(&report, "t"),
        counts!(source_rows: 1, skipped: 1, problems: 1)
    );
    assert_eq!(report_counts(&report, "p|ipe"), pipe_counts);

    // CSV: a pipe is nothing special there.
    let record = counts_cells("p|ipe", pipe_counts).join(",");
    assert!(csv.contains(&format!("\r\n{record}")), "{csv:?}");
    assert_eq!(parse_csv(&csv).len(), 4);

    // Markdown: every table still has its columns; pipes and line breaks are escaped.
    let sections = md_sections(&md);
    let listed = md_table(&sections, "Problems");
    assert_eq!(listed[0], ["table", "key", "column", "problem"]);
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(
        section(&sections, "Problems")[0] == "3 problems in total.",
        "{md}"
    );
    let pipe = listed.iter().find(|row| row[0] == "`p\\|ipe`").unwrap();
    assert_eq!(pipe[1], r#"`{"k\|ey":2}`"#);
    assert_eq!(pipe[2], "`t`");
    assert!(pipe[3].starts_with("`text holds a NUL byte"), "{pipe:?}");
    let mixed = listed.iter().find(|row| row[0] == "`mixed`").unwrap();
    assert_eq!(mixed[1], "");
    assert!(mixed[3].contains("`<br>`"), "{mixed:?}");
    assert!(!md.contains("line\nbreak"), "{md}");
    let log = md_table(&sections, "Log");
    assert!(
        log.iter()
            .any(|row| row[2] == "`p\\|ipe`" && row[3].contains("key (k\\|ey)")),
        "a pipe in a log message is escaped: {log:?}"
    );
    assert!(
        log.iter()
            .any(|row| row[1] == "warn" && row[2] == "`mixed`" && row[3].contains("`<br>`")),
        "a line break in a log message becomes <br>: {log:?}"
    );
    let row = counts_cells("`p\\|ipe`", pipe_counts).join(" | ");
    assert!(md.contains(&format!("| {row} |")), "{md}");
    pg.psql(&format!("DROP SCHEMA {schema} CASCADE"));
}

/// Job `id`'s row as the report's `job` object should show it (connection left out).
fn stored_job(conn: &Connection, id: i64) -> Value {
    let row = &rows(
        conn,
        &format!(
            "SELECT id, kind, dry_run, status, created_at, started_at, finished_at,
                    next_attempt_at, attempts, max_attempts, options, error, requested_by
             FROM cloud_sync_jobs WHERE id = {id}"
        ),
    )[0];
    json!({
        "id": row[0], "kind": row[1], "dry_run": row[2] == 1, "status": row[3],
        "created_at": row[4], "started_at": row[5], "finished_at": row[6],
        "next_attempt_at": row[7], "attempts": row[8], "max_attempts": row[9],
        "options": serde_json::from_str::<Value>(row[10].as_str().unwrap()).unwrap(),
        "error": row[11], "requested_by": row[12],
    })
}

/// The report's `job` without its `connection`.
fn without_connection(job: &Value) -> Value {
    let mut job = job.clone();
    job.as_object_mut().unwrap().remove("connection");
    job
}

#[test]
fn a_job_that_never_ran_then_failed_every_attempt_then_lost_its_connection() {
    // The test server's own password, so the checks below mean something.
    let (_dir, conn, pg, port) = with_dead_server("report_failed");
    let id = int_of(
        &conn,
        "SELECT cloud_sync_export('dead', 1, '{\"tables\": [\"items\"], \"max_attempts\": 2}')",
    );

    // Queued: nothing ran yet.
    let (queued, csv, md) = reports_without_secret(&conn, &pg, id);
    assert_eq!(without_connection(&queued["job"]), stored_job(&conn, id));
    assert_eq!(queued["job"]["status"], "queued");
    assert_eq!(queued["job"]["started_at"], Value::Null);
    assert_eq!(queued["job"]["attempts"], 0);
    assert_eq!(
        queued["job"]["options"],
        json!({"tables": ["items"], "max_attempts": 2})
    );
    for empty in ["attempts", "tables", "problems", "log"] {
        assert_eq!(queued[empty], json!([]), "{empty}");
    }
    assert_eq!(queued["problems_total"], 0);
    assert_eq!(csv, CSV_HEADER);
    let sections = md_sections(&md);
    assert_eq!(section(&sections, "Attempts"), ["No attempts."]);
    assert_eq!(
        section(&sections, "Tables"),
        ["No tables: the job has no summary."]
    );
    assert_eq!(section(&sections, "Problems"), ["No problems."]);
    assert_eq!(section(&sections, "Log"), ["No log entries."]);
    assert_eq!(job_field(&sections, "started at"), "");
    assert_eq!(job_field(&sections, "attempts"), "0 of 2");

    // Run until it is no longer queued (a refused connection may be retried, up to 2 attempts);
    // each report matches what is stored.
    let mut reason = String::new();
    for _ in 0..2 {
        let outcome = run_job(&conn, &id.to_string());
        reason = outcome["error"].as_str().unwrap().to_string();
        let (report, _, _) = reports_without_secret(&conn, &pg, id);
        assert_eq!(without_connection(&report["job"]), stored_job(&conn, id));
        if outcome["status"] != "queued" {
            break;
        }
        assert_ne!(report["job"]["next_attempt_at"], Value::Null, "{report}");
    }
    assert!(
        reason.contains(&format!("connection refused by 127.0.0.1:{port}")),
        "{reason}"
    );
    let (failed, csv, md) = reports_without_secret(&conn, &pg, id);
    assert_eq!(without_connection(&failed["job"]), stored_job(&conn, id));
    assert_eq!(failed["job"]["status"], "failed");
    assert_eq!(failed["job"]["error"], reason.as_str());
    let tries = failed["job"]["attempts"].as_i64().unwrap();
    assert!((1..=2).contains(&tries), "{failed}");
    assert_eq!(
        failed["attempts"],
        Value::Array(
            rows(
                &conn,
                &format!(
                    "SELECT attempt, started_at, finished_at, outcome, error
                     FROM cloud_sync_job_attempts WHERE job_id = {id} ORDER BY attempt"
                )
            )
            .into_iter()
            .map(
                |a| json!({"attempt": a[0], "started_at": a[1], "finished_at": a[2],
                            "outcome": a[3], "error": a[4]})
            )
            .collect()
        )
    );
    let attempts = failed["attempts"].as_array().unwrap();
    assert_eq!(attempts.len() as i64, tries);
    for (n, attempt) in attempts.iter().enumerate() {
        assert_eq!(attempt["attempt"], n as i64 + 1);
        assert_eq!(attempt["outcome"], "failed");
        assert!(
            attempt["error"]
                .as_str()
                .unwrap()
                .contains("connection refused"),
            "{attempt}"
        );
    }
    assert_eq!(
        attempts.last().unwrap()["finished_at"],
        failed["job"]["finished_at"]
    );
    assert_eq!(
        (&failed["tables"], &failed["problems"]),
        (&json!([]), &json!([]))
    );
    assert_eq!(failed["problems_total"], 0);
    let log = log_rows(&conn, &failed, id);
    for n in 1..=tries {
        assert!(
            log.iter()
                .any(|l| l[4] == n && l[1] == "error" && l[3].as_str().unwrap().contains(&reason)),
            "attempt {n} logged its error: {log:?}"
        );
    }
    assert_eq!(csv, CSV_HEADER);
    assert_eq!(
        md.lines().next().unwrap(),
        format!("# cloud_sync job {id}: export (dry run), failed")
    );
    let sections = md_sections(&md);
    assert_eq!(job_field(&sections, "status"), "failed");
    assert_eq!(job_field(&sections, "error"), format!("`{reason}`"));
    assert_eq!(job_field(&sections, "attempts"), format!("{tries} of 2"));
    let table = md_table(&sections, "Attempts");
    assert_eq!(
        table[0],
        ["attempt", "started at", "finished at", "outcome", "error"]
    );
    assert_eq!(table.len() as i64, 1 + tries);
    let last = table.last().unwrap();
    assert_eq!(
        (last[0].as_str(), last[3].as_str(), last[4].as_str()),
        (
            tries.to_string().as_str(),
            "failed",
            format!("`{reason}`").as_str()
        )
    );
    assert_eq!(
        section(&sections, "Tables"),
        ["No tables: the job has no summary."]
    );
    assert_eq!(section(&sections, "Problems"), ["No problems."]);
    let log_table = md_table(&sections, "Log");
    assert_eq!(log_table.len(), 1 + log.len());
    assert!(
        log_table
            .iter()
            .any(|row| row[1] == "error" && row[3].contains(&reason)),
        "{log_table:?}"
    );

    // The connection deleted since: the report says so, and shows nothing else about it.
    int_of(&conn, "SELECT cloud_sync_delete('dead')");
    let (orphan, _, md) = reports_without_secret(&conn, &pg, id);
    assert_eq!(
        orphan["job"]["connection"],
        json!({"name": "dead", "display": null, "deleted": true})
    );
    let sections = md_sections(&md);
    assert_eq!(job_field(&sections, "connection"), "`dead`");
    assert_eq!(
        job_field(&sections, "connection display"),
        "deleted since the job was queued"
    );
    // Another connection saved under another name later (it may reuse the id) is not it.
    save(&conn, "newer", "postgresql://someone@127.0.0.1:1/db");
    let (orphan, _, _) = reports_without_secret(&conn, &pg, id);
    assert_eq!(orphan["job"]["connection"]["deleted"], true);
}

#[test]
fn unknown_formats_and_unknown_jobs_are_errors() {
    let (_dir, conn) = open_temp("report_errors");
    conn.execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY)")
        .unwrap();
    save(&conn, "prod", "postgresql://someone@127.0.0.1:1/db");
    let id = int_of(&conn, "SELECT cloud_sync_export('prod')");
    for format in ["xml", "JSON", "md", ""] {
        let message = error_of(
            &conn,
            &format!("SELECT cloud_sync_report({id}, '{format}')"),
        );
        assert_eq!(
            message,
            format!(
                "cloud_sync_report: unknown format '{format}': the format is 'json' (the \
                 default), 'csv' or 'markdown'"
            )
        );
    }
    for format in ["json", "csv", "markdown"] {
        let message = error_of(&conn, &format!("SELECT cloud_sync_report(999, '{format}')"));
        assert_eq!(message, "cloud_sync_report: unknown job 999");
    }
    assert_eq!(
        error_of(&conn, "SELECT cloud_sync_report(999)"),
        "cloud_sync_report: unknown job 999"
    );
    let message = error_of(&conn, &format!("SELECT cloud_sync_report({id}, NULL)"));
    assert!(message.contains("format"), "{message}");
    let message = error_of(&conn, "SELECT cloud_sync_report('x')");
    assert!(message.contains("job id"), "{message}");
}

#[test]
fn the_sqlite3_shell_saves_reports_to_files() {
    let (dir, conn, pg, schema) = with_fresh_schema("report_shell", "r_shell");
    conn.execute_batch(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO items (name) VALUES ('tea'), ('coffee');
         CREATE TABLE \"odd, \"\"name\"\"\" (id INTEGER PRIMARY KEY);
         INSERT INTO \"odd, \"\"name\"\"\" VALUES (1);",
    )
    .unwrap();
    let id = dry_run_into(&conn, &schema);
    let path: std::path::PathBuf = conn.path().unwrap().into();
    let out = dir.path();
    let (json_file, md_file, csv_file) = (
        out.join("report.json"),
        out.join("report.md"),
        out.join("report.csv"),
    );
    // As docs/reference.md shows it: `.once FILE` then the SELECT; `.output FILE` ... `.output`.
    // No key is configured: a report needs none.
    let run = shell(
        &path,
        &[],
        &format!(
            ".once {json}\nSELECT cloud_sync_report({id});\n\
             .once {md}\nSELECT cloud_sync_report({id}, 'markdown');\n\
             .output {csv}\nSELECT cloud_sync_report({id}, 'csv');\n.output\n\
             SELECT 'done';",
            json = json_file.display(),
            md = md_file.display(),
            csv = csv_file.display(),
        ),
    );
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.stdout, "done");
    for (file, format) in [
        (&json_file, "json"),
        (&md_file, "markdown"),
        (&csv_file, "csv"),
    ] {
        let saved = std::fs::read_to_string(file).unwrap();
        // Byte for byte the report, plus the shell's line break.
        assert_eq!(
            saved,
            format!("{}\n", report_of(&conn, id, Some(format))),
            "{format}"
        );
    }
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&json_file).unwrap()).unwrap();
    assert_eq!(saved["job"]["id"], id);
    assert_eq!(saved["tables"].as_array().unwrap().len(), 2);
    let csv = std::fs::read_to_string(&csv_file).unwrap();
    let records = parse_csv(csv.trim_end_matches('\n'));
    assert_eq!(records.len(), 3);
    let mut odd = counts_cells("odd, \"name\"", counts!(source_rows: 1, inserts: 1));
    odd.push(String::new());
    assert!(records.contains(&odd), "{records:?}");
    md_sections(&std::fs::read_to_string(&md_file).unwrap());
    pg.psql(&format!("DROP SCHEMA {schema} CASCADE"));
}
