//! cloud_sync: a SQLite loadable extension that moves an application's tables to and from a
//! hosted Postgres. This file holds the entry points and the one list of SQL functions and
//! virtual tables.

pub mod connections;
pub mod error;
pub mod jobs;
pub mod local;
pub mod mapping;
pub mod remote;
pub mod secret;
mod sql;
mod sql_text;
mod sqlite;
pub mod sync;

use std::ffi::{c_char, c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use sqlite_loadable::ext::{sqlite3, sqlite3_api_routines};

use crate::error::Result;
use crate::sqlite::function::{register, Effects, Function};
use crate::sqlite::vtab::{module, Module};
use crate::sqlite::{api, Db};

/// Every SQL function of the extension. A test compares this list, as SQLite sees it through
/// `pragma_function_list`, with the README and the tests.
pub static FUNCTIONS: &[Function] = &[
    Function {
        name: "cloud_sync_version",
        arities: &[0],
        effects: Effects::Pure,
        handler: sql::meta::version,
    },
    Function {
        name: "cloud_sync_debug",
        arities: &[0],
        effects: Effects::Reads,
        handler: sql::meta::debug,
    },
    Function {
        name: "cloud_sync_save",
        arities: &[2],
        effects: Effects::Acts,
        handler: sql::connections::save,
    },
    Function {
        name: "cloud_sync_test",
        arities: &[1],
        effects: Effects::Acts,
        handler: sql::connections::test,
    },
    Function {
        name: "cloud_sync_delete",
        arities: &[1],
        effects: Effects::Acts,
        handler: sql::connections::delete,
    },
    Function {
        name: "cloud_sync_rekey",
        arities: &[0],
        effects: Effects::Acts,
        handler: sql::connections::rekey,
    },
    // One entry per arity where the arities read their arguments differently.
    Function {
        name: "cloud_sync_export",
        arities: &[1],
        effects: Effects::Acts,
        handler: sql::export::export_1,
    },
    Function {
        name: "cloud_sync_export",
        arities: &[2],
        effects: Effects::Acts,
        handler: sql::export::export_2,
    },
    Function {
        name: "cloud_sync_export",
        arities: &[3],
        effects: Effects::Acts,
        handler: sql::export::export_3,
    },
    Function {
        name: "cloud_sync_import",
        arities: &[1],
        effects: Effects::Acts,
        handler: sql::import::import_1,
    },
    Function {
        name: "cloud_sync_import",
        arities: &[2],
        effects: Effects::Acts,
        handler: sql::import::import_2,
    },
    Function {
        name: "cloud_sync_import",
        arities: &[3],
        effects: Effects::Acts,
        handler: sql::import::import_3,
    },
    Function {
        name: "cloud_sync_import",
        arities: &[4],
        effects: Effects::Acts,
        handler: sql::import::import_4,
    },
    Function {
        name: "cloud_sync_track",
        arities: &[1],
        effects: Effects::Acts,
        handler: sql::tracking::track,
    },
    Function {
        name: "cloud_sync_untrack",
        arities: &[1],
        effects: Effects::Acts,
        handler: sql::tracking::untrack,
    },
    Function {
        name: "cloud_sync_run_jobs",
        arities: &[0],
        effects: Effects::Acts,
        handler: sql::jobs::run_jobs_all,
    },
    Function {
        name: "cloud_sync_run_jobs",
        arities: &[1],
        effects: Effects::Acts,
        handler: sql::jobs::run_jobs_max,
    },
    Function {
        name: "cloud_sync_run",
        arities: &[1],
        effects: Effects::Acts,
        handler: sql::jobs::run,
    },
    Function {
        name: "cloud_sync_cancel",
        arities: &[1],
        effects: Effects::Acts,
        handler: sql::jobs::cancel,
    },
    Function {
        name: "cloud_sync_retry",
        arities: &[1],
        effects: Effects::Acts,
        handler: sql::jobs::retry,
    },
    Function {
        name: "cloud_sync_report",
        arities: &[1, 2],
        effects: Effects::Acts,
        handler: sql::report::report,
    },
    Function {
        name: "cloud_sync_worker_start",
        arities: &[0, 1],
        effects: Effects::Acts,
        handler: sql::worker::start,
    },
    Function {
        name: "cloud_sync_worker_stop",
        arities: &[0],
        effects: Effects::Acts,
        handler: sql::worker::stop,
    },
    Function {
        name: "cloud_sync_worker_status",
        arities: &[0],
        effects: Effects::Acts,
        handler: sql::worker::status,
    },
];

/// Every virtual table of the extension: read-only and eponymous (`SELECT * FROM name` or, with
/// arguments, `name(args)`). tests/jobs_surface.rs checks them through `pragma_module_list`.
pub static MODULES: &[Module] = &[
    module::<sql::jobs::JobsView>(),
    module::<sql::jobs::JobTables>(),
    module::<sql::jobs::JobLog>(),
];

const SQLITE_ERROR: c_int = 1;
const SQLITE_OK_LOAD_PERMANENTLY: c_int = 256;

fn init(db: *mut sqlite3) -> Result<()> {
    for function in FUNCTIONS {
        // SAFETY: `db` is the live connection SQLite is loading us into.
        unsafe { register(db, function)? };
    }
    for table in MODULES {
        // SAFETY: as above.
        unsafe { (table.register)(db)? };
    }
    // SAFETY: as above.
    let db = unsafe { Db::from_raw(db) };
    // A read-only database still gets the functions; those that write say why they cannot.
    if !db.is_readonly() {
        local::schema::apply(&db)?;
    }
    Ok(())
}

unsafe fn entry(
    db: *mut sqlite3,
    err_msg: *mut *mut c_char,
    routines: *mut sqlite3_api_routines,
    ok: c_int,
) -> c_int {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        api::install(routines);
        init(db)
    }));
    let message = match outcome {
        Ok(Ok(())) => return ok,
        Ok(Err(e)) => format!("cloud_sync: {e}"),
        Err(_) => "cloud_sync: internal error while loading".to_string(),
    };
    if !err_msg.is_null() && !routines.is_null() {
        if let Ok(text) = CString::new(message) {
            // The host frees the message with sqlite3_free, so SQLite must allocate it.
            *err_msg = api::call!(mprintf(c"%s".as_ptr(), text.as_ptr()));
        }
    }
    SQLITE_ERROR
}

/// Entry point for `.load` / `sqlite3_load_extension`. Asks SQLite to keep the library mapped
/// after the loading connection closes, for threads the extension may still run.
///
/// # Safety
/// Called by SQLite with a live connection and its routines table.
#[no_mangle]
pub unsafe extern "C" fn sqlite3_cloudsync_init(
    db: *mut sqlite3,
    err_msg: *mut *mut c_char,
    routines: *mut sqlite3_api_routines,
) -> c_int {
    entry(db, err_msg, routines, SQLITE_OK_LOAD_PERMANENTLY)
}

/// Entry point for `sqlite3_auto_extension`, which treats anything but 0 as a failure.
///
/// # Safety
/// Called by SQLite with a live connection and its routines table.
#[no_mangle]
pub unsafe extern "C" fn sqlite3_cloudsync_auto_init(
    db: *mut sqlite3,
    err_msg: *mut *mut c_char,
    routines: *mut sqlite3_api_routines,
) -> c_int {
    entry(db, err_msg, routines, 0)
}
