//! The watch over a job's remote session, from a thread of its own, so that neither a stalled
//! link nor a cancel leaves the job blocked inside the driver.
//!
//! The job's thread blocks in the driver whenever it waits on the server, and only the socket
//! breaking releases it. The guard's thread looks every `TICK`: when a cancel is requested (the
//! job's `cancelled` probe says so), it asks the server to cancel the running statement over a
//! connection of its own, then shuts the session's socket down; when the job's thread has been
//! waiting on the network for `read_timeout_s` and no byte moved either way, it shuts the socket
//! down as stalled. Either way the blocked call fails at once, the server rolls the job's
//! transaction back when it sees the connection end, and `explain` turns the driver's error
//! into one that says what happened and which option sets the deadline.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use postgres::error::SqlState;

use super::deadlines::{self, Deadlines};
use super::link::{self, Link, Traffic};
use crate::error::{Error, Result};

/// How often the guard looks at the job and its link.
const TICK: Duration = Duration::from_millis(100);
/// How long a cancel waits for its request to reach the server before closing the socket.
const CANCEL_REQUEST_WAIT: Duration = Duration::from_millis(300);

/// Sends the server a cancel request for the session's running statement (on a connection of
/// its own, TLS when the session's sslmode wants it).
pub type CancelRequest = Box<dyn FnOnce() + Send>;

/// Says whether a cancel of the job was requested; called from the guard's thread every tick.
pub type CancelProbe = Box<dyn FnMut() -> bool + Send>;

const NONE: u8 = 0;
const STALLED: u8 = 1;
const CANCELLED: u8 = 2;

/// The session the guard watches now.
struct Attached {
    link: Option<Link>,
    cancel_request: Option<CancelRequest>,
    /// The job's thread: the one that opened the session and waits inside the driver.
    thread: i32,
    /// Counts sessions, so the guard notices a new one.
    generation: u64,
}

struct Shared {
    deadlines: Deadlines,
    attached: Mutex<Option<Attached>>,
    generations: Mutex<u64>,
    /// How the guard ended the session: `NONE`, `STALLED` or `CANCELLED`; the first one holds.
    verdict: AtomicU8,
    /// The guard shut a session's socket down.
    closed: AtomicBool,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Shared {
    fn attached(&self) -> MutexGuard<'_, Option<Attached>> {
        // A panic while the lock was held leaves nothing half-updated.
        self.attached.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a session holds of its job's guard, to attach to it (cloned into the `ConnInfo` the
/// job connects with).
#[derive(Clone)]
pub struct GuardHandle(Arc<Shared>);

impl GuardHandle {
    /// Watches the session just opened on this thread; `link` is `None` when its socket could
    /// not be found (only the cancel request then reaches the server).
    pub fn attach(&self, link: Option<Link>, cancel_request: CancelRequest) {
        let generation = {
            let mut generations = self.0.generations.lock().unwrap_or_else(|e| e.into_inner());
            *generations += 1;
            *generations
        };
        if self.0.verdict.load(Ordering::SeqCst) == CANCELLED {
            // Cancelled before this session opened: it ends at once.
            if let Some(link) = &link {
                link.shut_down();
                self.0.closed.store(true, Ordering::SeqCst);
            }
        }
        *self.0.attached() = Some(Attached {
            link,
            cancel_request: Some(cancel_request),
            thread: link::current_thread(),
            generation,
        });
    }

    /// Whether the guard ended the job as cancelled: a connect in progress gives up.
    pub fn cancelled(&self) -> bool {
        self.0.verdict.load(Ordering::SeqCst) == CANCELLED
    }

    /// Stops watching the session, before it closes its socket.
    pub fn detach(&self) {
        *self.0.attached() = None;
    }
}

impl std::fmt::Debug for GuardHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GuardHandle")
    }
}

/// The guard of one job attempt: its thread runs until the guard is dropped.
pub struct LinkGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LinkGuard {
    /// Starts watching, with the job's `deadlines` and the probe of its cancel requests.
    pub fn start(deadlines: Deadlines, cancelled: CancelProbe) -> Result<LinkGuard> {
        let shared = Arc::new(Shared {
            deadlines,
            attached: Mutex::new(None),
            generations: Mutex::new(0),
            verdict: AtomicU8::new(NONE),
            closed: AtomicBool::new(false),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let watched = shared.clone();
        let thread = std::thread::Builder::new()
            .name("cloud_sync-guard".into())
            .spawn(move || watch(&watched, cancelled))
            .map_err(|e| Error::local(format!("cannot start the job's guard thread: {e}")))?;
        Ok(LinkGuard {
            shared,
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> GuardHandle {
        GuardHandle(self.shared.clone())
    }

    /// The attempt's error as the guard explains it: a cancel or a stall the guard acted on,
    /// or a server-side deadline, named with the option that sets it. A step past a deadline
    /// is transient, so the retry policy tries the job again.
    pub fn explain(&self, error: Error) -> Error {
        let deadlines = &self.shared.deadlines;
        match self.shared.verdict.load(Ordering::SeqCst) {
            CANCELLED if !matches!(error, Error::Cancelled(_)) => {
                Error::Cancelled(if self.shared.closed.load(Ordering::SeqCst) {
                    format!(
                        "cancelled while the job waited on the remote: its connection was \
                         closed, so the server rolls back everything the attempt did ({error})"
                    )
                } else {
                    format!("cancelled: {error}")
                })
            }
            // The step's own error says where it stalled (a table's COPY, say), which is what
            // tells a stalled network from a server that never answers that step.
            STALLED => Error::Interrupted(format!(
                "the remote link stalled: the job waited on the server and no byte moved for \
                 {} s ({} = {}), so the connection was closed and the attempt abandoned; the \
                 server rolls back everything it did. The step that stalled: {error}",
                deadlines.read_timeout.as_secs(),
                deadlines::READ_TIMEOUT,
                deadlines.read_timeout.as_secs(),
            )),
            _ => server_deadline(error, deadlines),
        }
    }
}

/// A server-side deadline named with its option, and made transient; other errors unchanged.
fn server_deadline(error: Error, deadlines: &Deadlines) -> Error {
    let Error::Remote {
        state: Some(state),
        message,
    } = &error
    else {
        return error;
    };
    // The server's words depend on its language; the SQLSTATE does not. A statement cancelled
    // by anyone else (pg_cancel_backend) gets the same hint: it is worth retrying too.
    let (option, seconds) = if *state == SqlState::QUERY_CANCELED {
        (deadlines::STATEMENT_TIMEOUT, deadlines.statement_timeout)
    } else if *state == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT {
        (
            deadlines::IDLE_IN_TRANSACTION_TIMEOUT,
            deadlines.idle_in_transaction_timeout,
        )
    } else {
        return error;
    };
    Error::Interrupted(format!(
        "{message}: the server ended the step at the job's deadline ({option} = {}); raise \
         {option} if the job needs longer",
        seconds.as_secs()
    ))
}

impl Drop for LinkGuard {
    fn drop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How long the watched session has been quiet: waiting on the network with no traffic.
struct Quiet {
    generation: u64,
    traffic: Option<Traffic>,
    since: Instant,
}

/// The guard's thread.
fn watch(shared: &Shared, mut cancelled: CancelProbe) {
    let mut quiet = Quiet {
        generation: 0,
        traffic: None,
        since: Instant::now(),
    };
    let mut stop = shared.stop.lock().unwrap_or_else(|e| e.into_inner());
    while !*stop {
        drop(stop);
        if shared.verdict.load(Ordering::SeqCst) == NONE {
            if cancelled() {
                end_session(shared, CANCELLED);
            } else if stalled(shared, &mut quiet) {
                end_session(shared, STALLED);
            }
        }
        stop = shared.stop.lock().unwrap_or_else(|e| e.into_inner());
        if !*stop {
            stop = shared
                .wake
                .wait_timeout(stop, TICK)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Whether the watched session has waited on the network, with no byte moving either way, for
/// the read timeout.
fn stalled(shared: &Shared, quiet: &mut Quiet) -> bool {
    let attached = shared.attached();
    let Some(Attached {
        link: Some(link),
        thread,
        generation,
        ..
    }) = attached.as_ref()
    else {
        return false;
    };
    let traffic = link.traffic();
    let now = Instant::now();
    if quiet.generation != *generation
        || traffic != quiet.traffic
        || !link::waits_on_network(*thread)
    {
        *quiet = Quiet {
            generation: *generation,
            traffic,
            since: now,
        };
        return false;
    }
    now.duration_since(quiet.since) >= shared.deadlines.read_timeout
}

/// Ends the watched session: records `verdict`, sends a cancel request for a cancel (waiting
/// briefly for it to reach the server, so the server stops the statement at once), then shuts
/// the socket down, which fails whatever the job's thread waits for.
fn end_session(shared: &Shared, verdict: u8) {
    if shared
        .verdict
        .compare_exchange(NONE, verdict, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return;
    }
    let request = if verdict == CANCELLED {
        shared
            .attached()
            .as_mut()
            .and_then(|a| a.cancel_request.take())
    } else {
        None
    };
    if let Some(request) = request {
        // A server or pooler that does not answer would keep this thread: it is left to end
        // on its own, and the socket is closed all the same.
        let (sent, done) = mpsc::sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name("cloud_sync-cancel".into())
            .spawn(move || {
                request();
                let _ = sent.send(());
            });
        if spawned.is_ok() {
            let _ = done.recv_timeout(CANCEL_REQUEST_WAIT);
        }
    }
    if let Some(Attached {
        link: Some(link), ..
    }) = shared.attached().as_ref()
    {
        link.shut_down();
        shared.closed.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(deadlines: Deadlines) -> LinkGuard {
        LinkGuard::start(deadlines, Box::new(|| false)).unwrap()
    }

    #[test]
    fn server_deadlines_are_named_and_transient() {
        let guard = guard(Deadlines::default());
        let remote = |code: &str| Error::Remote {
            state: Some(SqlState::from_code(code)),
            message: "table t: upsert: canceling statement due to statement timeout (SQLSTATE \
                      57014)"
                .into(),
        };
        let explained = guard.explain(remote("57014"));
        assert!(explained.is_transient());
        assert!(
            explained.to_string().ends_with(
                "(statement_timeout_s = 600); raise statement_timeout_s if the job needs longer"
            ),
            "{explained}"
        );
        let idle = guard.explain(remote("25P03")).to_string();
        assert!(
            idle.contains("(idle_in_transaction_timeout_s = 300)"),
            "{idle}"
        );
        let other = guard.explain(remote("42501"));
        assert!(!other.is_transient(), "{other:?}");
    }

    #[test]
    fn a_cancel_ends_the_attempt_as_cancelled_and_the_guard_stops_promptly() {
        let guard = LinkGuard::start(Deadlines::default(), Box::new(|| true)).unwrap();
        let started = Instant::now();
        while guard.shared.verdict.load(Ordering::SeqCst) == NONE {
            assert!(started.elapsed() < Duration::from_secs(5), "no verdict");
            std::thread::sleep(Duration::from_millis(10));
        }
        // No session was open: nothing was closed.
        let explained = guard.explain(Error::Interrupted("timed out connecting".into()));
        assert!(matches!(explained, Error::Cancelled(_)), "{explained:?}");
        assert_eq!(explained.to_string(), "cancelled: timed out connecting");
        let started = Instant::now();
        drop(guard);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
