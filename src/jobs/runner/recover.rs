//! Recovering stale jobs: a job left `running` by a process that crashed or was killed is
//! failed with the reason and queued again per its retry policy.

use super::finish::finish;
use crate::error::{Error, Result};
use crate::jobs::retry::Policy;
use crate::jobs::{database_file, live_progress, RunKey};
use crate::sqlite::Db;
use crate::sync::summary::Summary;
use crate::sync::{JobLog, Level, Progress};

/// Whether the process that claimed a job (`claimed_by` = `pid:N`) still runs it: in this
/// process, only if it is in the registry of running jobs; elsewhere, if process N is alive.
fn claim_is_alive(db: &Db, id: i64, claimed_by: &str, started_at: &str) -> bool {
    let Some(pid) = claimed_by
        .strip_prefix("pid:")
        .and_then(|p| p.parse::<i32>().ok())
    else {
        return false;
    };
    if pid == std::process::id() as i32 {
        let key = RunKey {
            file: database_file(db).unwrap_or_default(),
            id,
            started_at: started_at.to_string(),
        };
        return live_progress(&key).is_some();
    }
    // Signal 0 checks existence; EPERM means it exists under another user.
    // SAFETY: kill with signal 0 sends nothing.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Finds jobs left `running` by a process that no longer runs them (it crashed or was killed),
/// records that attempt as failed with the reason, and queues them again per the retry policy.
/// Their remote transaction died with them (Postgres rolled it back), and SQLite rolled back
/// their local one, so running them again is safe. Returns how many it recovered.
pub fn recover_orphans(db: &Db) -> Result<usize> {
    let mut stale = Vec::new();
    {
        let mut stmt = db.prepare(
            "SELECT id, attempts, max_attempts, options, coalesce(claimed_by, ''),
                    coalesce(started_at, '')
             FROM cloud_sync_jobs WHERE status = 'running'",
        )?;
        while stmt.step()? {
            let (id, claimed_by, started_at) = (
                stmt.int(0),
                stmt.text(4).unwrap_or_default(),
                stmt.text(5).unwrap_or_default(),
            );
            if !claim_is_alive(db, id, &claimed_by, &started_at) {
                let policy = Policy::new(stmt.int(2), &stmt.text(3).unwrap_or_default());
                stale.push((id, stmt.int(1), policy, claimed_by));
            }
        }
    }
    for (id, attempt, policy, claimed_by) in &stale {
        let reason = format!(
            "the process that ran attempt {attempt} ({claimed_by}) stopped before it finished; \
             its changes were rolled back"
        );
        let mut log = JobLog::default();
        log.push(Level::Error, None, reason.clone());
        let interrupted: Result<Summary> = Err(Error::Interrupted(reason));
        finish(
            db,
            *id,
            *attempt,
            policy,
            &interrupted,
            &Progress::default(),
            &mut log,
        )?;
    }
    Ok(stale.len())
}
