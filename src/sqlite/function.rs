//! Scalar SQL functions: registration and the boundary every call crosses. A call's panic is
//! caught here and becomes a SQL error, so no path through a callback can abort the host.

use std::ffi::{c_int, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use sqlite_loadable::ext::{sqlite3, sqlite3_context, sqlite3_value};

use super::api::{
    call, transient, Db, Value, SQLITE_FLOAT, SQLITE_INTEGER, SQLITE_NULL, SQLITE_OK, SQLITE_TEXT,
};
use super::argument::{exact_integer, shown};
use super::caller::refuse_indirect;
use super::panic_message;
use super::per_connection::State;
use crate::error::{Error, Result};

const SQLITE_UTF8: c_int = 1;
const SQLITE_DETERMINISTIC: c_int = 0x800;
const SQLITE_DIRECTONLY: c_int = 0x80000;
const SQLITE_INNOCUOUS: c_int = 0x200000;

/// What a function may do, which decides the flags it is registered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effects {
    /// Same result for the same arguments, no side effects: callable from anywhere.
    Pure,
    /// Reads state (environment, tables) but changes nothing and reaches no network.
    Reads,
    /// Writes, reaches the network, or reveals what a saved connection does. Registered
    /// SQLITE_DIRECTONLY, so a view or trigger in an untrusted database file cannot call it,
    /// and each call is refused unless it comes straight from a running statement (see
    /// [`caller`](super::caller): SQLite lets a CHECK constraint through).
    Acts,
}

/// What a function returns.
pub enum Output {
    Int(i64),
    Text(String),
    Null,
}

pub type Handler = fn(&Call) -> Result<Output>;

/// One SQL function, as listed in the registration list of `lib.rs`.
pub struct Function {
    pub name: &'static str,
    /// Each accepted argument count.
    pub arities: &'static [c_int],
    pub effects: Effects,
    pub handler: Handler,
}

/// The arguments and connection of one call.
pub struct Call<'a> {
    pub name: &'static str,
    pub db: Db,
    /// What the extension keeps for this connection.
    pub connection: &'a State,
    args: &'a [*mut sqlite3_value],
}

impl Call<'_> {
    /// Who acts on this connection (`cloud_sync_set_actor`), if anyone was named.
    pub fn actor(&self) -> Option<String> {
        self.connection.actor()
    }

    pub fn arg_count(&self) -> usize {
        self.args.len()
    }

    /// Argument `i` (0-based) as SQLite holds it.
    pub fn value(&self, i: usize) -> Value<'_> {
        // SAFETY: `i` is checked against the argument slice SQLite gave us, whose values live
        // for the whole call.
        unsafe { read_value(self.args[i]) }
    }

    /// Whether argument `i` is a number (INTEGER or REAL), not text or anything else.
    pub fn is_number(&self, i: usize) -> bool {
        matches!(self.value(i), Value::Integer(_) | Value::Real(_))
    }

    /// Argument `i`, which must be non-NULL text; `what` names it in errors.
    pub fn text(&self, i: usize, what: &str) -> Result<String> {
        let kind = match self.value(i) {
            Value::Text(bytes) => {
                return String::from_utf8(bytes.to_vec()).map_err(|_| {
                    Error::invalid(format!("argument {} ({what}) is not valid UTF-8", i + 1))
                })
            }
            Value::Integer(_) => "an integer",
            Value::Real(_) => "a real number",
            Value::Null => "NULL",
            Value::Blob(_) => "a blob",
        };
        Err(Error::invalid(format!(
            "argument {} ({what}) must be text, not {kind}",
            i + 1
        )))
    }

    /// Argument `i` as an integer: any value that stands for one exactly (`1`, `1.0`, `'1'`;
    /// see [`argument`](super::argument)), or an error that shows what was given.
    pub fn int(&self, i: usize, what: &str) -> Result<i64> {
        let value = self.value(i);
        exact_integer(value).ok_or_else(|| {
            Error::invalid(format!(
                "argument {} ({what}) must be an integer, not {}",
                i + 1,
                shown(value)
            ))
        })
    }
}

/// Reads one value SQLite passed to a function or a table-valued function, without copying.
///
/// # Safety
/// `value` is a live protected value of the current call; the result must not outlive it.
pub unsafe fn read_value<'a>(value: *mut sqlite3_value) -> Value<'a> {
    let bytes = |p: *const u8, n: c_int| {
        if p.is_null() || n <= 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(p, n as usize)
        }
    };
    // The pointer is read before the length, as SQLite requires.
    match call!(value_type(value)) {
        SQLITE_NULL => Value::Null,
        SQLITE_INTEGER => Value::Integer(call!(value_int64(value))),
        SQLITE_FLOAT => Value::Real(call!(value_double(value))),
        SQLITE_TEXT => {
            let p = call!(value_text(value));
            Value::Text(bytes(p, call!(value_bytes(value))))
        }
        _ => {
            let p = call!(value_blob(value)).cast::<u8>();
            Value::Blob(bytes(p, call!(value_bytes(value))))
        }
    }
}

/// One registration's user data: the function and its connection's state. SQLite owns it and
/// drops it (`release`) when the function is removed or the connection closes.
struct Bound {
    function: &'static Function,
    connection: Arc<State>,
}

/// SQLite's destructor of a registration's user data.
unsafe extern "C" fn release(bound: *mut c_void) {
    // Nothing can be reported from here: a panic (there is none to expect) is only kept from
    // reaching SQLite.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        drop(Box::from_raw(bound.cast::<Bound>()));
    }));
}

/// Registers `function` on `db` for each of its arities, bound to the connection's `state`.
///
/// # Safety
/// `db` must be a live connection; `function` lives for the whole process (it is `'static`).
pub unsafe fn register(
    db: *mut sqlite3,
    function: &'static Function,
    state: &Arc<State>,
) -> Result<()> {
    let name = CString::new(function.name).expect("function names hold no NUL");
    let flags = SQLITE_UTF8
        | match function.effects {
            Effects::Pure => SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
            Effects::Reads => SQLITE_INNOCUOUS,
            Effects::Acts => SQLITE_DIRECTONLY,
        };
    for &arity in function.arities {
        let bound = Box::into_raw(Box::new(Bound {
            function,
            connection: Arc::clone(state),
        }));
        // SQLite calls `release` on `bound` also when the registration fails.
        let rc = call!(create_function_v2(
            db,
            name.as_ptr(),
            arity,
            flags,
            bound.cast::<c_void>(),
            Some(dispatch),
            None,
            None,
            Some(release),
        ));
        if rc != SQLITE_OK {
            return Err(Error::Local {
                code: rc,
                context: format!("cannot register {}", function.name),
                // SAFETY: a live connection; its message is copied at once.
                reason: std::ffi::CStr::from_ptr(call!(errmsg(db)))
                    .to_string_lossy()
                    .into_owned(),
            });
        }
    }
    Ok(())
}

/// Removes every arity of `function` from `db` (SQLite's way: registering it with no
/// callbacks). `false` when SQLite refused, which it does while a statement runs on `db`.
///
/// # Safety
/// `db` must be a live connection.
pub unsafe fn unregister(db: *mut sqlite3, function: &Function) -> bool {
    let name = CString::new(function.name).expect("function names hold no NUL");
    let mut removed = true;
    for &arity in function.arities {
        let rc = call!(create_function_v2(
            db,
            name.as_ptr(),
            arity,
            SQLITE_UTF8,
            std::ptr::null_mut(),
            None,
            None,
            None,
            None,
        ));
        removed &= rc == SQLITE_OK;
    }
    removed
}

unsafe extern "C" fn dispatch(
    ctx: *mut sqlite3_context,
    argc: c_int,
    argv: *mut *mut sqlite3_value,
) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let bound = &*call!(user_data(ctx)).cast::<Bound>();
        let function = bound.function;
        let args = if argc <= 0 || argv.is_null() {
            &[][..]
        } else {
            std::slice::from_raw_parts(argv, argc as usize)
        };
        let db = call!(context_db_handle(ctx));
        let call = Call {
            name: function.name,
            db: Db::from_raw(db),
            connection: &bound.connection,
            args,
        };
        let result = match function.effects {
            Effects::Acts => {
                refuse_indirect(db, function.name).and_then(|()| (function.handler)(&call))
            }
            Effects::Pure | Effects::Reads => (function.handler)(&call),
        };
        (function.name, result)
    }));
    let _ = catch_unwind(AssertUnwindSafe(|| match outcome {
        Ok((_, Ok(output))) => set_result(ctx, output),
        Ok((name, Err(error))) => {
            set_error(ctx, &format!("{name}: {error}"));
            // After the message: setting a message resets the code to SQLITE_ERROR.
            call!(result_error_code(ctx, error.sqlite_code()));
        }
        Err(panic) => set_error(
            ctx,
            &format!(
                "cloud_sync: internal error, please report it: {}",
                panic_message(&*panic)
            ),
        ),
    }));
}

unsafe fn set_result(ctx: *mut sqlite3_context, output: Output) {
    match output {
        Output::Int(v) => call!(result_int64(ctx, v)),
        Output::Text(s) => call!(result_text(
            ctx,
            s.as_ptr().cast(),
            s.len() as c_int,
            transient(),
        )),
        Output::Null => call!(result_null(ctx)),
    }
}

unsafe fn set_error(ctx: *mut sqlite3_context, message: &str) {
    call!(result_error(
        ctx,
        message.as_ptr().cast(),
        message.len() as c_int
    ));
}
