//! The worker thread's loop: recover orphaned jobs once, then at each poll run the schedules
//! whose time has come (which may queue jobs) and the next due job, sleeping between polls that
//! run none. Nothing a job or a schedule does (an error, a panic) ends the loop; only a
//! requested stop does, between polls.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::registry::Worker;
use crate::error::Result;
use crate::jobs::runner;
use crate::jobs::schedule::Scheduler;
use crate::sqlite::connection::Connection;
use crate::sqlite::{panic_message, Db};

/// The worker thread: owns `conn` until it returns.
pub(super) fn run(worker: &Worker, conn: Connection) {
    // Marks the worker finished when the thread returns, also if it unwinds; declared before
    // `conn` so that the connection is closed first.
    let _finished = Finished(worker);
    let conn = conn;
    let db = conn.db();
    let mut recover = true;
    let mut scheduler = Scheduler::default();
    while worker.begin_step() {
        let ran = step(worker, db, &mut recover, &mut scheduler);
        worker.end_step(ran);
        if ran == 0 {
            worker.sleep();
        }
    }
}

/// One poll: recovers orphaned jobs when `recover` says so, runs the schedules whose time has
/// come, then runs the next due job, if any. Returns how many jobs it ran.
fn step(worker: &Worker, db: &Db, recover: &mut bool, scheduler: &mut Scheduler) -> usize {
    if std::mem::take(recover) {
        guarded(worker, None, "recovering orphaned jobs", || {
            runner::recover_orphans(db).map(|_| ())
        });
    }
    guarded(worker, None, "running schedules", || scheduler.poll(db));
    // The job `run_due` is about to run, for `status` to show.
    let next = guarded(worker, None, "looking for due jobs", || {
        runner::due_jobs(db, Some(1)).map(|due| due.first().copied())
    })
    .flatten();
    worker.state().current_job = next;
    let outcome = guarded(worker, next, "running jobs", || {
        runner::run_due(db, Some(1))
    });
    worker.state().current_job = None;
    if outcome.is_none() && next.is_some() {
        // A panic (or a failure to record the end) mid-job leaves the job `running` with nobody
        // running it: recover it at the next poll rather than at the next start. Its
        // transactions were rolled back, during the unwind or by the error.
        *recover = true;
    }
    outcome.map_or(0, |outcomes| outcomes.len())
}

/// Runs one step of the thread, recording its error or panic in `last_error`.
fn guarded<T>(
    worker: &Worker,
    job: Option<i64>,
    what: &str,
    step: impl FnOnce() -> Result<T>,
) -> Option<T> {
    let failure = match catch_unwind(AssertUnwindSafe(step)) {
        Ok(Ok(value)) => return Some(value),
        Ok(Err(e)) => e.to_string(),
        Err(panic) => format!(
            "internal error (panic), please report it: {}",
            panic_message(&*panic)
        ),
    };
    let prefix = match job {
        Some(id) => format!("{what} (job {id})"),
        None => what.to_string(),
    };
    worker.record_error(format!("{prefix}: {failure}"));
    None
}

struct Finished<'a>(&'a Worker);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::super::options::Options;
    use super::*;
    use crate::error::Error;

    #[test]
    fn guarded_records_errors_and_panics() {
        let w = Worker::new("/tmp/x.db".into(), &Options::default(), "wal".into());
        assert_eq!(guarded(&w, None, "step", || Ok(7)), Some(7));
        assert!(w.state().last_error.is_none());
        assert_eq!(
            guarded::<()>(&w, Some(5), "running jobs", || Err(Error::invalid("boom"))),
            None
        );
        let e = w.state().last_error.clone().unwrap();
        assert!(e.ends_with("running jobs (job 5): boom"), "{e}");
        assert_eq!(guarded::<()>(&w, None, "step", || panic!("kaboom")), None);
        let e = w.state().last_error.clone().unwrap();
        assert!(e.contains("panic") && e.ends_with("kaboom"), "{e}");
    }
}
