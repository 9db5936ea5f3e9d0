//! Calls into the host's SQLite through the `sqlite3_api_routines` table it hands to the entry
//! point. sqlite-loadable keeps that pointer private and wraps only part of the API (no blob
//! binding, no error messages), so this module keeps its own copy and its own small wrappers.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use sqlite_loadable::ext::{sqlite3, sqlite3_api_routines, sqlite3_stmt};

use crate::error::{Error, Result};

static API: AtomicPtr<sqlite3_api_routines> = AtomicPtr::new(ptr::null_mut());

pub const SQLITE_OK: c_int = 0;
const SQLITE_ROW: c_int = 100;
const SQLITE_DONE: c_int = 101;
pub const SQLITE_INTEGER: c_int = 1;
pub const SQLITE_FLOAT: c_int = 2;
pub const SQLITE_TEXT: c_int = 3;
pub const SQLITE_NULL: c_int = 5;

/// Records the routines table handed to the entry point.
///
/// # Safety
/// `routines` must be the pointer SQLite passed to the extension's entry point.
pub unsafe fn install(routines: *mut sqlite3_api_routines) {
    if !routines.is_null() {
        API.store(routines, Ordering::Release);
        sqlite_loadable::ext::faux_sqlite_extension_init2(routines);
    }
}

pub(crate) fn routines() -> &'static sqlite3_api_routines {
    let p = API.load(Ordering::Acquire);
    assert!(!p.is_null(), "cloud_sync used before its entry point ran");
    // SAFETY: set once from the entry point; SQLite keeps the table alive for the process.
    unsafe { &*p }
}

/// Calls one routine of the table; a missing routine (a very old host) panics, and the panic is
/// caught at the SQL boundary.
macro_rules! call {
    ($name:ident($($arg:expr),* $(,)?)) => {
        (crate::sqlite::api::routines().$name.expect(concat!("SQLite routine ", stringify!($name))))($($arg),*)
    };
}
pub(crate) use call;

/// SQLite's `SQLITE_TRANSIENT`: SQLite copies the bound value before the call returns.
pub(crate) fn transient() -> Option<unsafe extern "C" fn(*mut c_void)> {
    // SAFETY: SQLite defines SQLITE_TRANSIENT as the destructor value -1 and never calls it.
    Some(unsafe { std::mem::transmute::<isize, unsafe extern "C" fn(*mut c_void)>(-1) })
}

pub fn libversion() -> String {
    // SAFETY: returns a static C string.
    unsafe { CStr::from_ptr(call!(libversion())) }
        .to_string_lossy()
        .into_owned()
}

/// One SQLite value in its storage class. Text is raw bytes: SQLite does not promise UTF-8.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a [u8]),
    Blob(&'a [u8]),
}

/// A SQLite connection handle owned by the host. Never crosses threads.
pub struct Db {
    raw: *mut sqlite3,
}

/// A value to bind to a statement parameter.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Null,
    Int(i64),
    Text(&'a str),
}

impl<'a> Param<'a> {
    /// Text, or NULL for `None`.
    pub fn text_or_null(text: Option<&'a str>) -> Param<'a> {
        text.map_or(Param::Null, Param::Text)
    }
}

impl Db {
    /// # Safety
    /// `raw` must be a live connection for as long as the returned `Db` is used.
    pub unsafe fn from_raw(raw: *mut sqlite3) -> Db {
        Db { raw }
    }

    fn last_error(&self, context: &str) -> Error {
        // SAFETY: errmsg returns a string owned by the connection, valid until the next call.
        let reason = unsafe { CStr::from_ptr(call!(errmsg(self.raw))) }
            .to_string_lossy()
            .into_owned();
        Error::Local {
            // SAFETY: valid handle.
            code: unsafe { call!(extended_errcode(self.raw)) },
            context: context.to_string(),
            reason,
        }
    }

    /// Runs one or more statements without results.
    pub fn exec(&self, sql: &str) -> Result<()> {
        let c_sql = CString::new(sql).map_err(|_| Error::invalid("SQL holds a NUL byte"))?;
        let mut message: *mut c_char = ptr::null_mut();
        // SAFETY: valid handle and C string; SQLite allocates `message` on error.
        let rc = unsafe {
            call!(exec(
                self.raw,
                c_sql.as_ptr(),
                None,
                ptr::null_mut(),
                &mut message
            ))
        };
        if rc == SQLITE_OK {
            return Ok(());
        }
        let text = if message.is_null() {
            "unknown error".to_string()
        } else {
            // SAFETY: a C string from sqlite3_malloc, released with sqlite3_free.
            let text = unsafe { CStr::from_ptr(message) }
                .to_string_lossy()
                .into_owned();
            unsafe { call!(free(message.cast())) };
            text
        };
        Err(Error::Local {
            // SAFETY: valid handle; exec's own return code is the primary one only.
            code: unsafe { call!(extended_errcode(self.raw)) },
            context: String::new(),
            reason: text,
        })
    }

    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_>> {
        let mut stmt: *mut sqlite3_stmt = ptr::null_mut();
        let len = c_int::try_from(sql.len()).map_err(|_| Error::invalid("SQL text too long"))?;
        // SAFETY: the pointer/length pair describes `sql`.
        let rc = unsafe {
            call!(prepare_v2(
                self.raw,
                sql.as_ptr().cast(),
                len,
                &mut stmt,
                ptr::null_mut()
            ))
        };
        if rc != SQLITE_OK {
            return Err(self.last_error("cannot prepare a statement"));
        }
        Ok(Stmt {
            db: self,
            raw: stmt,
        })
    }

    /// Runs a statement with parameters and returns the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[Param]) -> Result<i64> {
        let mut stmt = self.prepare(sql)?;
        stmt.bind_all(params)?;
        while stmt.step()? {}
        // SAFETY: valid handle.
        Ok(i64::from(unsafe { call!(changes(self.raw)) }))
    }

    /// Runs a query and maps its first row, if any.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: &[Param],
        map: impl FnOnce(&Stmt) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut stmt = self.prepare(sql)?;
        stmt.bind_all(params)?;
        if stmt.step()? {
            map(&stmt).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Whether the `main` database refuses writes (opened read-only, or a read-only file).
    pub fn is_readonly(&self) -> bool {
        // SAFETY: valid handle and a static C string.
        unsafe { call!(db_readonly(self.raw, c"main".as_ptr())) == 1 }
    }

    /// Runs `work` so that all of it lands or none of it. Outside a transaction this takes the
    /// write lock up front (BEGIN IMMEDIATE), so a busy database waits in the busy handler
    /// instead of failing when a read lock would have to be upgraded; inside the host's own
    /// transaction it nests as a savepoint.
    pub fn atomically<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<T> {
        self.transaction("BEGIN IMMEDIATE", "cloud_sync", true, work)
    }

    /// Runs `work` like `atomically`, then rolls everything back whatever happened: a dry run
    /// that meets every constraint, trigger and lock the real run would, and changes nothing.
    pub fn rehearse<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<T> {
        self.transaction("BEGIN IMMEDIATE", "cloud_sync_rehearsal", false, work)
    }

    /// Runs `work` inside one read transaction, so every read sees the same snapshot of the
    /// database; inside the host's own transaction it nests as a savepoint (the host's
    /// transaction is then the snapshot). Writes made by `work` land only if it succeeds.
    pub fn snapshot<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<T> {
        self.transaction("BEGIN DEFERRED", "cloud_sync_snapshot", true, work)
    }

    /// Whether the connection is inside a transaction (its own or the host's).
    pub fn in_transaction(&self) -> bool {
        // SAFETY: valid handle.
        unsafe { call!(get_autocommit(self.raw)) == 0 }
    }

    fn transaction<T>(
        &self,
        begin: &str,
        savepoint: &str,
        keep: bool,
        work: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let in_host_transaction = self.in_transaction();
        let (begin, commit, rollback) = if in_host_transaction {
            (
                format!("SAVEPOINT {savepoint}"),
                format!("RELEASE {savepoint}"),
                format!("ROLLBACK TO {savepoint}; RELEASE {savepoint}"),
            )
        } else {
            (begin.to_string(), "COMMIT".into(), "ROLLBACK".into())
        };
        self.exec(&begin).map_err(|e| match e {
            e if e.is_locally_busy() => Error::Busy(
                "the local database is locked by another connection and stayed locked for the \
                 whole busy timeout: try again, or raise it (PRAGMA busy_timeout = milliseconds)"
                    .into(),
            ),
            other => other,
        })?;
        // Rolls back on an error and also when a panic unwinds through `work`, so the host's
        // connection is never left inside a transaction it did not open.
        let mut guard = RollbackOnDrop {
            db: self,
            rollback: Some(rollback),
        };
        let value = work()?;
        if keep {
            self.exec(&commit)?;
            guard.rollback = None;
        }
        Ok(value)
    }
}

struct RollbackOnDrop<'a> {
    db: &'a Db,
    rollback: Option<String>,
}

impl Drop for RollbackOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(sql) = &self.rollback {
            // The original error (or panic) matters more than a failure to roll back.
            let _ = self.db.exec(sql);
        }
    }
}

/// A prepared statement, finalized on drop.
pub struct Stmt<'db> {
    db: &'db Db,
    raw: *mut sqlite3_stmt,
}

impl Stmt<'_> {
    pub fn bind_all(&mut self, params: &[Param]) -> Result<()> {
        for (i, param) in params.iter().enumerate() {
            self.bind(i as c_int + 1, *param)?;
        }
        Ok(())
    }

    pub fn bind(&mut self, index: c_int, param: Param) -> Result<()> {
        // SAFETY: valid statement; text is copied by SQLite (SQLITE_TRANSIENT).
        let rc = unsafe {
            match param {
                Param::Null => call!(bind_null(self.raw, index)),
                Param::Int(v) => call!(bind_int64(self.raw, index, v)),
                Param::Text(s) => call!(bind_text(
                    self.raw,
                    index,
                    s.as_ptr().cast(),
                    c_int::try_from(s.len()).map_err(|_| Error::invalid("text value too long"))?,
                    transient()
                )),
            }
        };
        if rc != SQLITE_OK {
            return Err(self.db.last_error("cannot bind a parameter"));
        }
        Ok(())
    }

    /// Binds any SQLite value (copied by SQLite).
    pub fn bind_value(&mut self, index: c_int, value: Value) -> Result<()> {
        let len = |n: usize| c_int::try_from(n).map_err(|_| Error::invalid("value too long"));
        // SAFETY: valid statement; text and blobs are copied (SQLITE_TRANSIENT).
        let rc = unsafe {
            match value {
                Value::Null => call!(bind_null(self.raw, index)),
                Value::Integer(v) => call!(bind_int64(self.raw, index, v)),
                Value::Real(v) => call!(bind_double(self.raw, index, v)),
                Value::Text(t) => call!(bind_text(
                    self.raw,
                    index,
                    t.as_ptr().cast(),
                    len(t.len())?,
                    transient()
                )),
                Value::Blob(b) => call!(bind_blob(
                    self.raw,
                    index,
                    b.as_ptr().cast(),
                    len(b.len())?,
                    transient()
                )),
            }
        };
        if rc != SQLITE_OK {
            return Err(self.db.last_error("cannot bind a parameter"));
        }
        Ok(())
    }

    /// Makes the statement ready to run again (bindings stay until rebound).
    pub fn reset(&mut self) {
        // SAFETY: valid statement. An error of the last step was already reported by step().
        unsafe { call!(reset(self.raw)) };
    }

    /// Advances; `true` while there is a row.
    pub fn step(&mut self) -> Result<bool> {
        // SAFETY: valid statement.
        match unsafe { call!(step(self.raw)) } {
            SQLITE_ROW => Ok(true),
            SQLITE_DONE => Ok(false),
            _ => Err(self.db.last_error("statement failed")),
        }
    }

    pub fn column_type(&self, i: c_int) -> c_int {
        // SAFETY: valid statement positioned on a row.
        unsafe { call!(column_type(self.raw, i)) }
    }

    pub fn int(&self, i: c_int) -> i64 {
        // SAFETY: valid statement positioned on a row.
        unsafe { call!(column_int64(self.raw, i)) }
    }

    /// The column's value, borrowed until the next step (which needs `&mut self`).
    pub fn value(&self, i: c_int) -> Value<'_> {
        // SAFETY: valid statement on a row; pointers read before bytes, as SQLite requires, and
        // the borrow cannot outlive the row because stepping needs `&mut self`.
        unsafe {
            match self.column_type(i) {
                SQLITE_INTEGER => Value::Integer(call!(column_int64(self.raw, i))),
                SQLITE_FLOAT => Value::Real(call!(column_double(self.raw, i))),
                SQLITE_TEXT => {
                    let p = call!(column_text(self.raw, i));
                    let n = call!(column_bytes(self.raw, i)) as usize;
                    Value::Text(if p.is_null() {
                        &[]
                    } else {
                        std::slice::from_raw_parts(p, n)
                    })
                }
                SQLITE_NULL => Value::Null,
                _ => {
                    let p = call!(column_blob(self.raw, i)).cast::<u8>();
                    let n = call!(column_bytes(self.raw, i)) as usize;
                    Value::Blob(if p.is_null() {
                        &[]
                    } else {
                        std::slice::from_raw_parts(p, n)
                    })
                }
            }
        }
    }

    /// The column as text, `None` for NULL. Copied: the borrow SQLite gives ends at the next step.
    pub fn text(&self, i: c_int) -> Option<String> {
        if self.column_type(i) == SQLITE_NULL {
            return None;
        }
        // SAFETY: text first, then bytes, as SQLite's documentation requires.
        unsafe {
            let p = call!(column_text(self.raw, i));
            let n = call!(column_bytes(self.raw, i));
            if p.is_null() {
                return Some(String::new());
            }
            let bytes = std::slice::from_raw_parts(p, n as usize);
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
    }
}

impl Drop for Stmt<'_> {
    fn drop(&mut self) {
        // SAFETY: finalized exactly once.
        unsafe { call!(finalize(self.raw)) };
    }
}
