//! Read-only, eponymous virtual tables (table-valued functions) on top of sqlite-loadable's
//! table glue.
//!
//! Each table is a [`TableFunction`]: a name, its visible columns, the hidden columns that are
//! its arguments (all with declared types, so that comparisons convert values as they do with a
//! table's columns), and a function that computes every row up front from the arguments. The
//! glue here is the only code that sees the raw vtab and cursor pointers. It keeps three
//! promises:
//!
//! - **No method can abort the host.** Every VTab and VTabCursor method body runs inside
//!   `catch_unwind`; a panic becomes an SQL error.
//! - **Error messages reach SQL.** sqlite-loadable copies an error into `zErrMsg` only for its
//!   `Message` kind, and then passes the message to `sqlite3_mprintf` as the *format string*
//!   (a `%` in it is read as a conversion). We set `zErrMsg` ourselves, through `"%s"`, and hand
//!   the glue an error of another kind so it leaves our message alone.
//! - **Read-only.** The module has no xUpdate (sqlite-loadable's writable path reaches `todo!()`),
//!   so SQLite itself refuses INSERT, UPDATE and DELETE, and no xCreate: the tables exist only
//!   eponymously (`SELECT * FROM name` or `name(args)`), never through CREATE VIRTUAL TABLE.

use std::ffi::{c_int, CString};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};

use sqlite_loadable::ext::{
    sqlite3, sqlite3_context, sqlite3_value, sqlite3_vtab, sqlite3_vtab_cursor,
};
use sqlite_loadable::table::{
    define_table_function, BestIndexError, ConstraintOperator, IndexInfo, VTab, VTabArguments,
    VTabCursor,
};
use sqlite_loadable::{Error as GlueError, ErrorKind};

use super::api::{call, transient, Db, Value, SQLITE_OK};
use super::function::read_value;
use super::panic_message;
use crate::error::{Error, Result};

/// One value of a row or an argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Cell {
    /// The cell as a SQLite value, borrowed.
    pub fn as_value(&self) -> Value<'_> {
        match self {
            Cell::Null => Value::Null,
            Cell::Int(i) => Value::Integer(*i),
            Cell::Real(r) => Value::Real(*r),
            Cell::Text(s) => Value::Text(s.as_bytes()),
            Cell::Blob(b) => Value::Blob(b),
        }
    }
}

/// A copy of an argument (text that is not UTF-8 is read lossily).
impl From<Value<'_>> for Cell {
    fn from(value: Value) -> Cell {
        match value {
            Value::Null => Cell::Null,
            Value::Integer(i) => Cell::Int(i),
            Value::Real(r) => Cell::Real(r),
            Value::Text(bytes) => Cell::Text(String::from_utf8_lossy(bytes).into_owned()),
            Value::Blob(bytes) => Cell::Blob(bytes.to_vec()),
        }
    }
}

impl From<Option<String>> for Cell {
    fn from(value: Option<String>) -> Cell {
        value.map_or(Cell::Null, Cell::Text)
    }
}

impl From<Option<i64>> for Cell {
    fn from(value: Option<i64>) -> Cell {
        value.map_or(Cell::Null, Cell::Int)
    }
}

impl From<String> for Cell {
    fn from(value: String) -> Cell {
        Cell::Text(value)
    }
}

impl From<i64> for Cell {
    fn from(value: i64) -> Cell {
        Cell::Int(value)
    }
}

/// One row: its rowid and one cell per visible column.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub rowid: i64,
    pub cells: Vec<Cell>,
}

/// A column of a table function: its name and declared type. The type gives the column the
/// affinity a table's column has, so `WHERE id = '4'` finds what it finds in a plain table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub sql_type: &'static str,
}

impl Column {
    pub const fn integer(name: &'static str) -> Column {
        Column {
            name,
            sql_type: "INTEGER",
        }
    }

    pub const fn text(name: &'static str) -> Column {
        Column {
            name,
            sql_type: "TEXT",
        }
    }
}

/// A read-only table-valued function whose rows are computed when a scan starts.
pub trait TableFunction: 'static {
    /// The SQL name; also the prefix of its error messages.
    const NAME: &'static str;
    /// The visible columns, in order.
    const COLUMNS: &'static [Column];
    /// Hidden columns that are the function's arguments, in order; all are required.
    const PARAMS: &'static [Column];
    /// How to call it, for the error when an argument is missing.
    const USAGE: &'static str;

    /// Every row for the arguments (one per entry of `PARAMS`).
    fn rows(db: &Db, args: &[Cell]) -> Result<Vec<Row>>;
}

/// One entry of the registration list in `lib.rs`.
pub struct Module {
    pub name: &'static str,
    /// Registers the module on a connection.
    ///
    /// # Safety
    /// The argument must be a live connection.
    pub register: unsafe fn(*mut sqlite3) -> Result<()>,
}

/// The registration-list entry of `F`.
pub const fn module<F: TableFunction>() -> Module {
    Module {
        name: F::NAME,
        register: register::<F>,
    }
}

/// Registers `F` as an eponymous-only module on `db`.
///
/// # Safety
/// `db` must be a live connection.
unsafe fn register<F: TableFunction>(db: *mut sqlite3) -> Result<()> {
    // sqlite-loadable's module struct is a promoted constant ('static), so SQLite may keep it.
    define_table_function::<Table<F>>(db, F::NAME, None)
        // Never format a sqlite-loadable error: its Display reaches unreachable!().
        .map_err(|_| Error::local(format!("cannot register {}", F::NAME)))
}

/// Removes the module `name` from `db` (SQLite's way: registering it with no module). SQLite
/// never refuses; `false` only if the name cannot be passed to it.
///
/// # Safety
/// `db` must be a live connection.
pub unsafe fn unregister_module(db: *mut sqlite3, name: &str) -> bool {
    let Ok(name) = CString::new(name) else {
        return false;
    };
    let rc = call!(create_module_v2(
        db,
        name.as_ptr(),
        std::ptr::null(),
        std::ptr::null_mut(),
        None
    ));
    rc == SQLITE_OK
}

fn schema<F: TableFunction>() -> String {
    let columns: Vec<String> = F::COLUMNS
        .iter()
        .map(|c| format!("\"{}\" {}", c.name, c.sql_type))
        .chain(
            F::PARAMS
                .iter()
                .map(|p| format!("\"{}\" {} HIDDEN", p.name, p.sql_type)),
        )
        .collect();
    format!("CREATE TABLE x({})", columns.join(", "))
}

/// Puts `message` into the vtab's `zErrMsg`, where SQLite picks it up after a failed call, and
/// returns an error that sqlite-loadable's glue turns into SQLITE_ERROR without touching it.
///
/// # Safety
/// `vtab` is null or the live vtab SQLite passed to the method that failed.
unsafe fn fail(vtab: *mut sqlite3_vtab, message: &str) -> GlueError {
    if !vtab.is_null() {
        if !(*vtab).zErrMsg.is_null() {
            call!(free((*vtab).zErrMsg.cast()));
            (*vtab).zErrMsg = std::ptr::null_mut();
        }
        if let Ok(text) = CString::new(message.replace('\0', " ")) {
            // "%s": the message is data, never a format.
            (*vtab).zErrMsg = call!(mprintf(c"%s".as_ptr(), text.as_ptr()));
        }
    }
    GlueError::new(ErrorKind::TableFunction(1))
}

/// Runs one method body of `F` on `vtab`'s behalf: errors and panics become SQL errors.
fn guarded<F: TableFunction, T>(
    vtab: *mut sqlite3_vtab,
    body: impl FnOnce() -> Result<T>,
) -> sqlite_loadable::Result<T> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => Ok(value),
        // SAFETY: `vtab` is the vtab of the call being served (or null).
        Ok(Err(error)) => Err(unsafe { fail(vtab, &format!("{}: {error}", F::NAME)) }),
        Err(panic) => {
            let message = format!(
                "cloud_sync: internal error, please report it: {}",
                panic_message(&*panic)
            );
            // SAFETY: as above.
            Err(unsafe { fail(vtab, &message) })
        }
    }
}

/// The vtab. `#[repr(C)]` with `base` first: SQLite and sqlite-loadable cast between the two.
#[repr(C)]
pub struct Table<F: TableFunction> {
    base: sqlite3_vtab,
    db: *mut sqlite3,
    function: PhantomData<F>,
}

impl<'vtab, F: TableFunction> VTab<'vtab> for Table<F> {
    type Aux = ();
    type Cursor = Cursor<F>;

    fn connect(
        db: *mut sqlite3,
        _aux: Option<&()>,
        _args: VTabArguments,
    ) -> sqlite_loadable::Result<(String, Table<F>)> {
        catch_unwind(|| {
            let table = Table {
                // SAFETY: a plain C struct of pointers and integers; SQLite fills it in.
                base: unsafe { std::mem::zeroed() },
                db,
                function: PhantomData,
            };
            (schema::<F>(), table)
        })
        // A fixed message without '%': the glue passes it to mprintf as the format.
        .map_err(|_| GlueError::new_message("cloud_sync: internal error while connecting a table"))
    }

    fn best_index(&self, mut info: IndexInfo) -> std::result::Result<(), BestIndexError> {
        catch_unwind(AssertUnwindSafe(|| {
            let visible = F::COLUMNS.len() as c_int;
            // For each argument, the first usable constraint that supplies it, and whether an
            // unusable one exists.
            let mut chosen: Vec<Option<usize>> = vec![None; F::PARAMS.len()];
            let mut unusable = vec![false; F::PARAMS.len()];
            let mut constraints = info.constraints();
            for (i, constraint) in constraints.iter().enumerate() {
                let column = constraint.column_idx();
                if column < visible || constraint.op() != Some(ConstraintOperator::EQ) {
                    continue;
                }
                let param = (column - visible) as usize;
                if param >= F::PARAMS.len() {
                    continue;
                }
                if constraint.usable() {
                    chosen[param].get_or_insert(i);
                } else {
                    unusable[param] = true;
                }
            }
            // A plan where an argument is not known yet (a join order that puts this table
            // before the one that supplies it) is unusable; SQLite then tries another order.
            if chosen.iter().zip(&unusable).any(|(c, u)| c.is_none() && *u) {
                return Err(BestIndexError::Constraint);
            }
            let mut mask = 0;
            let mut argv = 0;
            for (param, slot) in chosen.iter().enumerate() {
                if let Some(i) = *slot {
                    argv += 1;
                    mask |= 1 << param;
                    constraints[i].set_argv_index(argv);
                    constraints[i].set_omit(true);
                }
            }
            info.set_idxnum(mask);
            info.set_estimated_cost(if argv as usize == F::PARAMS.len() {
                10.0
            } else {
                1e9
            });
            info.set_estimated_rows(100);
            Ok(())
        }))
        .unwrap_or(Err(BestIndexError::Error))
    }

    fn open(&'vtab mut self) -> sqlite_loadable::Result<Cursor<F>> {
        let vtab = &mut self.base as *mut sqlite3_vtab;
        let db = self.db;
        guarded::<F, _>(vtab, || {
            Ok(Cursor {
                // SAFETY: as for the vtab; SQLite sets pVtab after xOpen returns.
                base: unsafe { std::mem::zeroed() },
                db,
                args: Vec::new(),
                rows: Vec::new(),
                position: 0,
                function: PhantomData,
            })
        })
    }
}

/// A scan over rows computed by `filter`. `#[repr(C)]` with `base` first, as for the vtab.
#[repr(C)]
pub struct Cursor<F: TableFunction> {
    base: sqlite3_vtab_cursor,
    db: *mut sqlite3,
    args: Vec<Cell>,
    rows: Vec<Row>,
    position: usize,
    function: PhantomData<F>,
}

impl<F: TableFunction> VTabCursor for Cursor<F> {
    fn filter(
        &mut self,
        idx_num: c_int,
        _idx_str: Option<&str>,
        values: &[*mut sqlite3_value],
    ) -> sqlite_loadable::Result<()> {
        let vtab = self.base.pVtab;
        guarded::<F, _>(vtab, || {
            let mut given = values.iter();
            let mut args = Vec::with_capacity(F::PARAMS.len());
            for (i, param) in F::PARAMS.iter().enumerate() {
                match given.next() {
                    // SAFETY: SQLite's argument values for this call.
                    Some(&value) if idx_num & (1 << i) != 0 => {
                        args.push(unsafe { read_value(value) }.into())
                    }
                    _ => {
                        return Err(Error::invalid(format!(
                            "needs its argument {}: {}",
                            param.name,
                            F::USAGE
                        )))
                    }
                }
            }
            // SAFETY: the connection this vtab was connected on, alive while it is.
            let db = unsafe { Db::from_raw(self.db) };
            self.rows = F::rows(&db, &args)?;
            self.args = args;
            self.position = 0;
            Ok(())
        })
    }

    fn next(&mut self) -> sqlite_loadable::Result<()> {
        let vtab = self.base.pVtab;
        guarded::<F, _>(vtab, || {
            self.position += 1;
            Ok(())
        })
    }

    fn eof(&self) -> bool {
        catch_unwind(AssertUnwindSafe(|| self.position >= self.rows.len())).unwrap_or(true)
    }

    fn column(&self, ctx: *mut sqlite3_context, i: c_int) -> sqlite_loadable::Result<()> {
        let vtab = self.base.pVtab;
        guarded::<F, _>(vtab, || {
            let i = usize::try_from(i).map_err(|_| Error::local("negative column index"))?;
            let row = self
                .rows
                .get(self.position)
                .ok_or_else(|| Error::local("column read past the last row"))?;
            let cell = if i < F::COLUMNS.len() {
                row.cells.get(i)
            } else {
                self.args.get(i - F::COLUMNS.len())
            };
            // SAFETY: `ctx` is the context SQLite passed to this xColumn call.
            unsafe { set_result(ctx, cell.unwrap_or(&Cell::Null)) }
        })
    }

    fn rowid(&self) -> sqlite_loadable::Result<i64> {
        let vtab = self.base.pVtab;
        guarded::<F, _>(vtab, || {
            self.rows
                .get(self.position)
                .map(|row| row.rowid)
                .ok_or_else(|| Error::local("rowid read past the last row"))
        })
    }
}

/// # Safety
/// `ctx` is the live context of the current xColumn call.
unsafe fn set_result(ctx: *mut sqlite3_context, cell: &Cell) -> Result<()> {
    match cell {
        Cell::Null => call!(result_null(ctx)),
        Cell::Int(v) => call!(result_int64(ctx, *v)),
        Cell::Real(v) => call!(result_double(ctx, *v)),
        Cell::Text(s) => {
            let n = c_int::try_from(s.len()).map_err(|_| Error::local("text value too long"))?;
            call!(result_text(ctx, s.as_ptr().cast(), n, transient()))
        }
        Cell::Blob(b) => {
            let n = c_int::try_from(b.len()).map_err(|_| Error::local("blob value too long"))?;
            call!(result_blob(ctx, b.as_ptr().cast(), n, transient()))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Demo;

    impl TableFunction for Demo {
        const NAME: &'static str = "demo";
        const COLUMNS: &'static [Column] = &[Column::integer("a"), Column::text("b")];
        const PARAMS: &'static [Column] = &[Column::integer("job_id")];
        const USAGE: &'static str = "SELECT * FROM demo(1)";

        fn rows(_: &Db, _: &[Cell]) -> Result<Vec<Row>> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn schemas_declare_column_types_and_arguments_as_hidden_columns() {
        assert_eq!(
            schema::<Demo>(),
            "CREATE TABLE x(\"a\" INTEGER, \"b\" TEXT, \"job_id\" INTEGER HIDDEN)"
        );
        assert_eq!(module::<Demo>().name, "demo");
    }

    #[test]
    fn method_bodies_turn_errors_and_panics_into_errors() {
        let null = std::ptr::null_mut();
        assert_eq!(guarded::<Demo, _>(null, || Ok(7)).ok(), Some(7));
        assert!(guarded::<Demo, ()>(null, || Err(Error::invalid("no"))).is_err());
        assert!(guarded::<Demo, ()>(null, || panic!("boom")).is_err());
    }
}
