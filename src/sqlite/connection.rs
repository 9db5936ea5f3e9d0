//! A SQLite connection that the extension opens and owns itself, for a thread of its own (the
//! worker). The host's connections are never handed to another thread; this one is opened
//! through the host's routines table (sqlite-loadable has no `open_v2`/`close_v2` wrappers), so
//! it runs on the same SQLite library, VFS and settings as the host's.

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr;

use sqlite_loadable::ext::sqlite3;

use super::api::{call, Db, SQLITE_OK};
use crate::error::{Error, Result};

const SQLITE_OPEN_READWRITE: c_int = 0x0000_0002;
const SQLITE_OPEN_FULLMUTEX: c_int = 0x0001_0000;
const SQLITE_WARNING: c_int = 28;

/// How long a statement of this connection waits for a lock another connection holds.
pub const BUSY_TIMEOUT_MS: u32 = 5000;

/// An open connection to a database file, closed (`sqlite3_close_v2`) when dropped.
pub struct Connection {
    raw: *mut sqlite3,
    db: Db,
    path: String,
    journal_mode: String,
}

// SAFETY: the connection is opened with SQLITE_OPEN_FULLMUTEX and `open` refuses a SQLite whose
// core mutexes are off (built single-threaded, or configured SQLITE_CONFIG_SINGLETHREAD), so
// SQLite serializes every call on it; moving it to another thread is what that mode allows.
// It is not `Sync`: one thread uses it at a time.
unsafe impl Send for Connection {}

impl Connection {
    /// Opens the existing database file `path` read-write, with a busy timeout of
    /// `BUSY_TIMEOUT_MS` and, when SQLite can switch it, WAL journaling (persistent: it is a
    /// property of the file). Refuses what another thread cannot share: an in-memory or
    /// temporary database, and a SQLite without thread safety.
    pub fn open(path: &str) -> Result<Connection> {
        if path.is_empty() || path == ":memory:" {
            return Err(in_memory());
        }
        // SAFETY: no arguments; a static property of the library.
        if unsafe { call!(xthreadsafe()) } == 0 {
            return Err(Error::invalid(
                "this SQLite was built without thread safety (SQLITE_THREADSAFE=0), so no other \
                 thread may use it: run jobs on your own thread with cloud_sync_run_jobs()",
            ));
        }
        let c_path = CString::new(path)
            .map_err(|_| Error::invalid("the database file name holds a NUL byte"))?;
        let mut raw: *mut sqlite3 = ptr::null_mut();
        // SAFETY: a valid C string and out-pointer; NULL selects the default VFS. No CREATE
        // flag: the file must exist already.
        let rc = unsafe {
            call!(open_v2(
                c_path.as_ptr(),
                &mut raw,
                SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
                ptr::null()
            ))
        };
        if rc != SQLITE_OK {
            // SQLite hands back a handle even when opening fails (unless out of memory): its
            // message says why, and it must be closed all the same.
            let message = if raw.is_null() {
                errstr(rc)
            } else {
                // SAFETY: a handle from open_v2, closed right after reading its message.
                unsafe {
                    let message = errmsg(raw);
                    call!(close_v2(raw));
                    message
                }
            };
            return Err(Error::local(format!(
                "cannot open the database file {path} for the worker: {message}"
            )));
        }
        // From here on, dropping `conn` closes the handle, whatever fails next.
        let conn = Connection {
            raw,
            // SAFETY: `raw` is open and outlives `db`: both are dropped together, `raw` last.
            db: unsafe { Db::from_raw(raw) },
            path: path.to_string(),
            journal_mode: String::new(),
        };
        conn.check_threads()?;
        conn.check_on_disk()?;
        conn.configure()
    }

    /// The connection, for the domain code.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The journal mode the database runs in (`wal` unless SQLite could not switch it).
    pub fn journal_mode(&self) -> &str {
        &self.journal_mode
    }

    /// Refuses a SQLite whose core mutexes are off at run time (SQLITE_CONFIG_SINGLETHREAD): a
    /// FULLMUTEX connection then gets no mutex, which `sqlite3_db_mutex` shows. This is the
    /// check `sqlite3_threadsafe()` cannot make, since it reports only how SQLite was built.
    fn check_threads(&self) -> Result<()> {
        // SAFETY: valid handle.
        if unsafe { call!(db_mutex(self.raw)) }.is_null() {
            return Err(Error::invalid(
                "the host runs SQLite single-threaded (SQLITE_CONFIG_SINGLETHREAD), so no \
                 other thread may use it: run jobs on your own thread with cloud_sync_run_jobs()",
            ));
        }
        Ok(())
    }

    /// Refuses a connection that did not reach a file: `file::memory:` when the host's SQLite
    /// takes URIs everywhere, and anything else that leaves `main` without a file name.
    fn check_on_disk(&self) -> Result<()> {
        // SAFETY: valid handle and a static C string; the name is owned by the connection.
        let name = unsafe { call!(db_filename(self.raw, c"main".as_ptr())) };
        // SAFETY: non-NULL, a C string that lives as long as the connection.
        if name.is_null() || unsafe { CStr::from_ptr(name) }.to_bytes().is_empty() {
            return Err(in_memory());
        }
        Ok(())
    }

    fn configure(mut self) -> Result<Connection> {
        if self.db.is_readonly() {
            return Err(Error::local(format!(
                "the worker cannot write the database file {}: SQLite opened it read-only \
                 (check the permissions of the file and of its directory)",
                self.path
            )));
        }
        self.db
            .exec(&format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"))?;
        // Read the file once, so a file that is not a database, or one locked for longer than
        // the busy timeout, fails here with its own message.
        self.db
            .query_row("SELECT count(*) FROM sqlite_schema", &[], |_| Ok(()))
            .map_err(|e| {
                Error::local(format!(
                    "cannot read the database file {} for the worker: {e}",
                    self.path
                ))
            })?;
        // WAL lets the host read while the worker writes. Switching needs a moment alone with
        // the file; if another connection holds it for longer than the busy timeout (or the
        // file cannot use WAL: a network file system, locking_mode=EXCLUSIVE elsewhere), the
        // worker runs in the current mode and says so through SQLite's error log.
        let mode = self.db.query_row("PRAGMA journal_mode = WAL", &[], |row| {
            Ok(row.text(0).unwrap_or_default())
        });
        self.journal_mode = match mode {
            Ok(Some(mode)) if mode.eq_ignore_ascii_case("wal") => {
                // A first read in WAL mode builds the shared WAL index now, while nothing else
                // runs; otherwise a host's first read could find it unbuilt while the worker
                // holds the write lock, and get SQLITE_BUSY without waiting.
                self.db
                    .query_row("SELECT count(*) FROM sqlite_schema", &[], |_| Ok(()))?;
                "wal".into()
            }
            other => {
                let current = self
                    .db
                    .query_row("PRAGMA journal_mode", &[], |row| {
                        Ok(row.text(0).unwrap_or_default())
                    })
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "unknown".into());
                let why = match other {
                    Err(e) => e.to_string(),
                    _ => "SQLite kept the current mode".into(),
                };
                log_warning(&format!(
                    "cloud_sync worker: {} stays in journal_mode {current}, not WAL: {why}",
                    self.path
                ));
                current
            }
        };
        Ok(self)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: closed exactly once. Every statement borrows `db`, so none is left; close_v2
        // would defer the close until they were finalized anyway, where close() would fail.
        unsafe { call!(close_v2(self.raw)) };
    }
}

/// The refusal of an in-memory or temporary database.
pub fn in_memory() -> Error {
    Error::invalid(
        "the database is in memory or temporary, so no other connection can reach it: the \
         worker needs a database file (run jobs on this connection with cloud_sync_run_jobs())",
    )
}

/// # Safety
/// `raw` must be a valid handle.
unsafe fn errmsg(raw: *mut sqlite3) -> String {
    let p = call!(errmsg(raw));
    if p.is_null() {
        return "unknown error".into();
    }
    CStr::from_ptr(p).to_string_lossy().into_owned()
}

fn errstr(rc: c_int) -> String {
    // SAFETY: returns a static C string for any code.
    let p = unsafe { call!(errstr(rc)) };
    if p.is_null() {
        return format!("error {rc}");
    }
    // SAFETY: static, NUL-terminated.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Writes to SQLite's error log (`SQLITE_CONFIG_LOG`), where the host collects SQLite's own
/// warnings; a no-op when the host configured none.
pub fn log_warning(message: &str) {
    if let Ok(text) = CString::new(message.replace('\0', " ")) {
        let format: *const c_char = c"%s".as_ptr();
        // SAFETY: a "%s" format with one C string argument.
        unsafe { call!(log(SQLITE_WARNING, format, text.as_ptr())) };
    }
}
