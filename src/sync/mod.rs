//! The sync engines: plain Rust over the local database and the remote session.

pub mod export;
pub mod import;
pub mod options;
pub mod summary;
pub mod tracking;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// One step of a job, kept in memory while the job runs and written with its outcome.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// ISO-8601 UTC with milliseconds.
    pub at: String,
    pub level: Level,
    pub table: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// The log of one running job.
#[derive(Debug, Default)]
pub struct JobLog {
    pub entries: Vec<LogEntry>,
}

impl JobLog {
    pub fn push(&mut self, level: Level, table: Option<&str>, message: impl Into<String>) {
        self.entries.push(LogEntry {
            at: now_iso(),
            level,
            table: table.map(str::to_string),
            message: message.into(),
        });
    }

    pub fn info(&mut self, table: Option<&str>, message: impl Into<String>) {
        self.push(Level::Info, table, message);
    }
}

/// Live progress of a running job, readable from any thread of the process, and the flag that
/// asks it to stop at its next safe point.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    rows_total: Arc<AtomicU64>,
    rows_done: Arc<AtomicU64>,
    cancel: Arc<AtomicBool>,
}

impl Progress {
    pub fn request_cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn cancel_requested(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once a cancel was requested: engines call it at their safe points
    /// (between tables and between chunks of rows), where returning rolls everything back.
    pub fn check_cancel(&self, table: &str) -> crate::error::Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(crate::error::Error::Cancelled(format!(
                "cancelled during table {table}; everything it did was rolled back"
            )));
        }
        Ok(())
    }

    pub fn set_total(&self, rows: u64) {
        self.rows_total.store(rows, Ordering::Relaxed);
    }

    pub fn add_done(&self, rows: u64) {
        self.rows_done.fetch_add(rows, Ordering::Relaxed);
    }

    pub fn total(&self) -> u64 {
        self.rows_total.load(Ordering::Relaxed)
    }

    pub fn done(&self) -> u64 {
        self.rows_done.load(Ordering::Relaxed)
    }
}

/// A problem a plan finds before any row is read: about the whole table, or about one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanProblem {
    pub column: Option<String>,
    pub problem: String,
}

impl PlanProblem {
    pub fn table(problem: impl Into<String>) -> PlanProblem {
        PlanProblem {
            column: None,
            problem: problem.into(),
        }
    }

    pub fn column(column: &str, problem: impl Into<String>) -> PlanProblem {
        PlanProblem {
            column: Some(column.to_string()),
            problem: problem.into(),
        }
    }
}

/// Problems found in the data, listed up to a limit (the summary stays small) and all counted.
#[derive(Default)]
pub struct Problems {
    pub listed: Vec<summary::Problem>,
    pub total: u64,
}

impl Problems {
    const MAX_LISTED: usize = 100;

    /// The problems the plans found, per table (they have no key: they are not about a row).
    pub fn of_plans<'a>(plans: impl IntoIterator<Item = (&'a str, &'a [PlanProblem])>) -> Problems {
        let mut problems = Problems::default();
        for (table, found) in plans {
            for p in found {
                let column = p.column.as_deref();
                problems.add(table, serde_json::Value::Null, column, &p.problem);
            }
        }
        problems
    }

    /// A full run refuses to start while its plan has problems; the error names the first few.
    pub fn refuse_full_run(&self, job: &str) -> crate::error::Result<()> {
        if self.total == 0 {
            return Ok(());
        }
        let first: Vec<String> = self
            .listed
            .iter()
            .take(3)
            .map(|p| format!("{}: {}", p.table, p.problem))
            .collect();
        Err(crate::error::Error::invalid(format!(
            "the {job} found {} problem{} before changing anything, so nothing changed: {}; run \
             a dry run to see them all",
            self.total,
            if self.total == 1 { "" } else { "s" },
            first.join("; ")
        )))
    }

    pub fn add(
        &mut self,
        table: &str,
        key: serde_json::Value,
        column: Option<&str>,
        problem: &str,
    ) {
        self.total += 1;
        if self.listed.len() < Self::MAX_LISTED {
            self.listed.push(summary::Problem {
                table: table.to_string(),
                key,
                column: column.map(str::to_string),
                problem: problem.to_string(),
            });
        }
    }
}

/// Connects for a job and logs how: the session and the milliseconds since the job `started`.
pub fn connect(
    info: &crate::remote::ConnInfo,
    started: std::time::Instant,
    log: &mut JobLog,
) -> crate::error::Result<(crate::remote::Session, f64)> {
    let session = crate::remote::Session::connect(info)?;
    let connect_ms = elapsed_ms(started);
    log.info(
        None,
        format!(
            "connected in {connect_ms:.0} ms (tls: {}, verified: {})",
            session.tls, session.verified
        ),
    );
    Ok((session, connect_ms))
}

/// Milliseconds since `since`, to two decimals, for summaries and logs.
pub fn elapsed_ms(since: std::time::Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 100_000.0).round() / 100.0
}

/// Now, as ISO-8601 UTC with milliseconds (the format of every cloud_sync timestamp).
pub fn now_iso() -> String {
    iso_after(std::time::Duration::ZERO)
}

/// The time `delay` from now, as ISO-8601 UTC with milliseconds.
pub fn iso_after(delay: std::time::Duration) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    iso_from_unix_ms((now + delay).as_millis() as i64)
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn iso_from_unix_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::{iso_from_unix_ms, PlanProblem, Problems};

    #[test]
    fn a_full_run_refuses_to_start_while_the_plan_has_problems() {
        let none = Problems::of_plans([("a", &[][..])]);
        assert!(none.refuse_full_run("export").is_ok());
        let found = [
            PlanProblem::table("has no primary key"),
            PlanProblem::column("x", "column x holds mixed values"),
        ];
        let problems = Problems::of_plans([("a", &found[..]), ("b", &found[..1])]);
        assert_eq!(problems.total, 3);
        let message = problems.refuse_full_run("import").unwrap_err().to_string();
        assert!(
            message.starts_with("the import found 3 problems before changing anything"),
            "{message}"
        );
        assert!(
            message.contains(
                "a: has no primary key; a: column x holds mixed values; b: has no primary key"
            ),
            "{message}"
        );
        // A column's problem names its column; a table's names none.
        let columns: Vec<Option<&str>> = problems
            .listed
            .iter()
            .map(|p| p.column.as_deref())
            .collect();
        assert_eq!(columns, [None, Some("x"), None]);
    }

    #[test]
    fn iso_timestamps() {
        assert_eq!(iso_from_unix_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso_from_unix_ms(951_782_400_123),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            iso_from_unix_ms(1_795_000_000_000),
            "2026-11-18T11:06:40.000Z"
        );
    }
}
