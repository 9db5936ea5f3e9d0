//! Makes the process's exit safe while a worker runs a job.
//!
//! The registry is a static that is never dropped and the threads are detached, so a process
//! may exit with a worker running. That is harmless, except inside OpenSSL: a host that
//! initialized OpenSSL itself (Python's `ssl` or `hashlib`, for one) registered
//! `OPENSSL_cleanup` as an exit handler, which frees OpenSSL's global state while the worker's
//! TLS session still uses it, and the process crashes on its way out.

use std::panic::catch_unwind;
use std::sync::Once;
use std::time::{Duration, Instant};

use super::registry;

/// How long a process's exit waits for its workers to finish the job they are running.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// Once per process: initializes OpenSSL (if the host has not, this initializes it with
/// `OPENSSL_INIT_NO_ATEXIT`, and no cleanup handler is ever registered), then registers an exit
/// handler of our own, which runs before any handler registered earlier, OpenSSL's included. It
/// stops the workers from starting another job and waits up to `EXIT_WAIT` for the jobs they
/// are running to end. A process forked from this one inherits both, and since the registry is
/// per process, the handler there waits only for that process's own workers.
pub(super) fn exit_guard() {
    static GUARD: Once = Once::new();
    GUARD.call_once(|| {
        openssl::init();
        register_exit_handler();
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn register_exit_handler() {
    extern "C" {
        // glibc: like atexit, and the handler receives the exit status.
        fn on_exit(
            handler: extern "C" fn(std::ffi::c_int, *mut std::ffi::c_void),
            arg: *mut std::ffi::c_void,
        ) -> std::ffi::c_int;
    }
    extern "C" fn at_exit(status: std::ffi::c_int, _: *mut std::ffi::c_void) {
        let idle = catch_unwind(|| workers_idle_at_exit(EXIT_WAIT)).unwrap_or(false);
        if !idle {
            // A job still runs after EXIT_WAIT: end the process now, with its status, as a kill
            // would, rather than let OpenSSL's cleanup pull its TLS state away. Its remote and
            // local transactions die with the process, and the job is recovered at the next
            // start. Output still buffered in stdio is written first.
            // SAFETY: fflush(NULL) flushes every stream; _exit ends the process.
            unsafe {
                libc::fflush(std::ptr::null_mut());
                libc::_exit(status);
            }
        }
    }
    // SAFETY: registers a handler that lives as long as the process (the library stays mapped:
    // the entry point returns SQLITE_OK_LOAD_PERMANENTLY).
    unsafe { on_exit(at_exit, std::ptr::null_mut()) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn register_exit_handler() {
    extern "C" fn at_exit() {
        // Without the exit status, a job that outlasts EXIT_WAIT is left to the exit.
        let _ = catch_unwind(|| workers_idle_at_exit(EXIT_WAIT));
    }
    // SAFETY: as above.
    unsafe { libc::atexit(at_exit) };
}

/// Asks every worker of this process to stop and waits up to `wait` until none is inside a
/// poll. `true` when none is.
fn workers_idle_at_exit(wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let Some(workers) = registry::all_by(deadline) else {
        return false;
    };
    for worker in &workers {
        worker.request_stop();
    }
    workers
        .iter()
        .all(|worker| worker.wait_idle(deadline.saturating_duration_since(Instant::now())))
}
