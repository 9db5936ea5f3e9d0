//! Whether the application can keep writing while a job runs on its connection.
//!
//! A job reads the database in one snapshot (an export) or writes it in one transaction (an
//! import). In a rollback journal mode that snapshot holds a SHARED lock for the whole job, so
//! every other connection's write fails with "database is locked"; in WAL mode readers and the
//! one writer go on side by side. cloud_sync does not switch the application's database to WAL
//! itself (the mode is persistent and the application's choice); it says so instead.

use crate::error::Result;
use crate::sqlite::Db;

use super::database_file;

/// The journal mode of the main database, as `PRAGMA journal_mode` names it.
pub fn mode(db: &Db) -> Result<String> {
    Ok(db
        .query_row("PRAGMA main.journal_mode", &[], |row| {
            Ok(row.text(0).unwrap_or_default())
        })?
        .unwrap_or_default())
}

/// The notice for a database that other connections cannot write while a job runs on it, or
/// `None`: in WAL mode, and for an in-memory or temporary database, which no one else can open.
pub fn notice(db: &Db) -> Result<Option<String>> {
    if database_file(db)?.is_empty() {
        return Ok(None);
    }
    Ok(notice_for_mode(&mode(db)?))
}

fn notice_for_mode(mode: &str) -> Option<String> {
    if mode.eq_ignore_ascii_case("wal") || mode.eq_ignore_ascii_case("memory") {
        return None;
    }
    Some(format!(
        "the database is in journal_mode {mode}, not WAL: while a job runs on this connection, \
         other connections cannot write to the database (they get \"database is locked\"), and \
         an import's writes also stop their reads; run PRAGMA journal_mode = WAL once to let the \
         application write while jobs run"
    ))
}

#[cfg(test)]
mod tests {
    use super::notice_for_mode;

    #[test]
    fn only_rollback_journal_modes_get_the_notice() {
        for mode in ["wal", "WAL", "memory"] {
            assert_eq!(notice_for_mode(mode), None, "{mode}");
        }
        for mode in ["delete", "truncate", "persist", "off"] {
            let notice = notice_for_mode(mode).expect(mode);
            assert!(
                notice.contains(&format!("journal_mode {mode}, not WAL")),
                "{notice}"
            );
            assert!(notice.contains("PRAGMA journal_mode = WAL"), "{notice}");
        }
    }
}
