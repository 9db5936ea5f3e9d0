//! The watch over a claimed job's remote sessions: its deadlines, read from the options stored
//! with it, and the guard (`remote::guard`) that ends a session stalled past them or cancelled.
//!
//! A cancel reaches the guard two ways: from this process, through the job's live progress
//! (`cloud_sync_cancel` on any connection sets it); from another process, through the job's row,
//! which the guard reads every `ROW_POLL` on a connection of its own. The row is read only in
//! WAL mode: in a rollback journal mode the job's own lock keeps any other process from writing
//! the request, and a reader there could make the job's own writes wait.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::Claim;
use crate::error::{Error, Result};
use crate::integer;
use crate::jobs::{database_file, journal};
use crate::remote::deadlines::{self, Deadlines};
use crate::remote::guard::{CancelProbe, LinkGuard};
use crate::remote::ConnInfo;
use crate::sqlite::connection::Connection;
use crate::sqlite::{Db, Param};
use crate::sync::Progress;

/// How often the guard reads the job's row for a cancel requested by another process.
const ROW_POLL: Duration = Duration::from_millis(200);

pub(super) struct Watch {
    deadlines: Deadlines,
    guard: LinkGuard,
}

impl Watch {
    pub(super) fn start(db: &Db, claim: &Claim, progress: &Progress) -> Result<Watch> {
        let deadlines = deadlines_of(&claim.options);
        let guard = LinkGuard::start(deadlines, cancel_probe(db, claim.id, progress)?)?;
        Ok(Watch { deadlines, guard })
    }

    /// Gives the job's connection its deadlines and its guard.
    pub(super) fn apply(&self, info: &mut ConnInfo) {
        info.deadlines = self.deadlines;
        info.guard = Some(self.guard.handle());
    }

    /// The attempt's error, saying what the guard did or which deadline ended it.
    pub(super) fn explain(&self, error: Error) -> Error {
        self.guard.explain(error)
    }
}

/// The deadlines the stored options set (checked when the job was queued), defaults elsewhere.
fn deadlines_of(options_json: &str) -> Deadlines {
    let options: Value = serde_json::from_str(options_json).unwrap_or(Value::Null);
    let mut deadlines = Deadlines::default();
    for (name, _) in deadlines::OPTIONS {
        if let Some(seconds) =
            integer::from_json(&options[name]).and_then(|s| u64::try_from(s).ok())
        {
            deadlines.set(name, seconds);
        }
    }
    deadlines
}

/// Whether a cancel of job `id` was requested: in this process, or in its row.
fn cancel_probe(db: &Db, id: i64, progress: &Progress) -> Result<CancelProbe> {
    let progress = progress.clone();
    let file = database_file(db)?;
    let mut row = (!file.is_empty() && journal::mode(db)?.eq_ignore_ascii_case("wal"))
        .then(|| RowPoll::new(file, id));
    Ok(Box::new(move || {
        if progress.cancel_requested() {
            return true;
        }
        let requested = row.as_mut().is_some_and(RowPoll::cancel_requested);
        if requested {
            // The engines stop at their next safe point too, when not waiting on the network.
            progress.request_cancel();
        }
        requested
    }))
}

/// Reads a job's `cancel_requested` every `ROW_POLL`, on a connection opened at the first read.
struct RowPoll {
    file: String,
    id: i64,
    conn: Option<Connection>,
    opened: bool,
    last: Option<Instant>,
}

impl RowPoll {
    fn new(file: String, id: i64) -> RowPoll {
        RowPoll {
            file,
            id,
            conn: None,
            opened: false,
            last: None,
        }
    }

    fn cancel_requested(&mut self) -> bool {
        if self.last.is_some_and(|last| last.elapsed() < ROW_POLL) {
            return false;
        }
        self.last = Some(Instant::now());
        if !std::mem::replace(&mut self.opened, true) {
            // Without it, only a cancel from this process reaches the job.
            self.conn = Connection::open(&self.file).ok();
        }
        let Some(conn) = &self.conn else {
            return false;
        };
        // A read that fails (the file busy a moment) is tried again at the next poll.
        conn.db()
            .query_row(
                "SELECT cancel_requested FROM cloud_sync_jobs WHERE id = ?1",
                &[Param::Int(self.id)],
                |row| Ok(row.int(0) != 0),
            )
            .ok()
            .flatten()
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_come_from_the_stored_options() {
        let given = deadlines_of(r#"{"read_timeout_s": 2, "statement_timeout_s": "5.0"}"#);
        assert_eq!(given.read_timeout, Duration::from_secs(2));
        assert_eq!(given.statement_timeout, Duration::from_secs(5));
        assert_eq!(
            given.idle_in_transaction_timeout,
            Deadlines::default().idle_in_transaction_timeout
        );
        assert_eq!(deadlines_of("{}"), Deadlines::default());
    }
}
