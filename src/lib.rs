//! cloud_sync: a SQLite loadable extension that moves an application's tables to and from a
//! hosted Postgres. This file holds the entry points, the one list of SQL functions and virtual
//! tables, and how a load registers them: only once nothing can fail any more, and taken back
//! if registering itself fails, so that a failed load never leaves the host pointing into a
//! library SQLite unloads.

mod audit;
mod connections;
mod error;
mod integer;
mod jobs;
mod local;
mod mapping;
mod options_json;
mod remote;
mod secret;
mod shown;
mod sql;
mod sql_text;
mod sqlite;
mod sync;

use std::ffi::{c_char, c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use sqlite_loadable::ext::{sqlite3, sqlite3_api_routines};

use crate::error::{Error, Result};
use crate::sqlite::function::{register, unregister, Effects, Function};
use crate::sqlite::per_connection::State;
use crate::sqlite::vtab::{module, unregister_module, Module};
use crate::sqlite::{api, Db};

/// Every SQL function of the extension. A test compares this list, as SQLite sees it through
/// `pragma_function_list`, with docs/reference.md and the tests.
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
        name: "cloud_sync_set_actor",
        arities: &[1],
        // Directly only: a view or trigger of a database file must not name who acts.
        effects: Effects::Acts,
        handler: sql::actor::set_actor,
    },
    Function {
        name: "cloud_sync_actor",
        arities: &[0],
        effects: Effects::Reads,
        handler: sql::actor::actor,
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
        effects: Effects::Reads,
        handler: sql::report::report,
    },
    Function {
        name: "cloud_sync_schedule",
        arities: &[2],
        effects: Effects::Acts,
        handler: sql::schedule::schedule,
    },
    Function {
        name: "cloud_sync_unschedule",
        arities: &[1],
        effects: Effects::Acts,
        handler: sql::schedule::unschedule,
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
        effects: Effects::Reads,
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

fn init(raw: *mut sqlite3) -> Result<()> {
    // SAFETY: `raw` is the live connection SQLite is loading us into.
    let db = unsafe { Db::from_raw(raw) };
    // Everything that can fail comes before anything is registered: when a load fails,
    // SQLite unloads the library, and a function or module left registered would then point
    // into unmapped memory (the host's next call or close would crash).
    local::schema::prepare_at_load(&db)?;
    // SAFETY: as above.
    unsafe { register_all(raw) }
}

/// Registers every function, then every virtual table. If one fails (or panics), removes again
/// what this load registered; whatever SQLite refuses to remove (it cannot replace or delete a
/// function while a statement runs on the connection) keeps the library mapped for the rest of
/// the process, so that nothing registered ever points into unmapped memory.
///
/// # Safety
/// `db` must be a live connection.
unsafe fn register_all(db: *mut sqlite3) -> Result<()> {
    // Counted before each registration, so a partly registered entry is removed too.
    let (mut functions, mut modules) = (0, 0);
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<()> {
        // One state for the connection, shared by its functions (see `per_connection`).
        let state = State::new();
        for function in FUNCTIONS {
            functions += 1;
            register(db, function, &state)?;
        }
        for table in MODULES {
            modules += 1;
            (table.register)(db)?;
        }
        Ok(())
    }));
    let error = match outcome {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => e,
        Err(_) => Error::local("internal error while registering its functions"),
    };
    // No short-circuit: every removal is attempted.
    let removed = FUNCTIONS[..functions]
        .iter()
        .map(|function| unregister(db, function))
        .chain(
            MODULES[..modules]
                .iter()
                .map(|table| unregister_module(db, table.name)),
        )
        .fold(true, |all, removed| all & removed);
    if removed {
        return Err(error);
    }
    keep_library_mapped();
    Err(Error::local(format!(
        "{error}; SQLite would not remove the functions registered before the failure, so they \
         stay usable on this connection"
    )))
}

/// Marks this library as never to be unloaded (RTLD_NODELETE), as SQLITE_OK_LOAD_PERMANENTLY
/// does after a successful load. Best effort: nothing more can be done if the loader refuses.
fn keep_library_mapped() {
    // SAFETY: dladdr only reads the address of one of this library's functions and fills
    // `info`; dlopen with RTLD_NOLOAD opens nothing new, it only flags the loaded library. The
    // handle is deliberately never closed.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        let here = keep_library_mapped as fn() as *const libc::c_void;
        if libc::dladdr(here, &mut info) != 0 && !info.dli_fname.is_null() {
            libc::dlopen(
                info.dli_fname,
                libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
            );
        }
    }
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
