//! Import: remote tables -> local ones, in one local transaction.

use serde_json::Value;

use super::options::ImportOptions;
use super::{JobLog, Progress};
use crate::error::{Error, Result};
use crate::local::tables;
use crate::remote::ConnInfo;
use crate::sqlite::Db;

pub struct ImportRequest<'a> {
    pub info: &'a ConnInfo,
    pub dry_run: bool,
    pub options: &'a ImportOptions,
}

/// The local tables an import with `options` covers before looking at the remote. A name in
/// `tables` that is not a local table is accepted only with `create_tables` (the import then
/// creates it from the remote definition); any other unknown name is an error.
pub fn select_tables(db: &Db, options: &ImportOptions) -> Result<Vec<String>> {
    let local = tables::eligible(db)?;
    let (known, to_create): (Vec<String>, Vec<String>) = options
        .tables
        .iter()
        .flatten()
        .cloned()
        .partition(|t| local.contains(t));
    if !to_create.is_empty() && !options.create_tables {
        return Err(Error::invalid(format!(
            "unknown table \"{}\" in option tables: it is not a local table; set \
             \"create_tables\": true to create it from the remote definition",
            to_create[0]
        )));
    }
    let tables_filter = options.tables.as_ref().map(|_| known);
    tables::select(db, tables_filter.as_deref(), &options.exclude, &[])
}

/// Runs one import. On any error nothing changes locally; a dry run never changes anything.
pub fn run(
    _db: &Db,
    _request: &ImportRequest,
    _progress: &Progress,
    _log: &mut JobLog,
) -> Result<Value> {
    Err(Error::invalid("import is not built yet"))
}
