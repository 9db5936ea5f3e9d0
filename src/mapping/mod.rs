//! Lossless type mapping between SQLite and Postgres: values go across unchanged, or not at all.
//!
//! Export: each column has a Postgres type: chosen by us when we create the remote table (from
//! the declared type and, where SQLite's typing leaves it open, from the values the column
//! holds), or the type of the existing remote column. Every value is encoded for binary COPY into
//! a staging column, either as that type itself or as text that Postgres casts, after we checked
//! that the cast keeps the value. Import: every remote value is read back as the SQLite value that
//! keeps it, and checked against the affinity of the local column it goes into. A value that
//! would change is a problem, never a silent edit.
//!
//! One job per file: the Postgres types (`pg_type`), what a local column holds (`profile`), the
//! type of a column we create on either side (`new_column`), SQLite -> Postgres values
//! (`encode`), Postgres -> SQLite values (`decode`), whether a value comes back in its storage
//! class and content and which type would keep it (`round_trip`), the text Postgres gives back
//! for decimals, date-times and jsonb (`decimal`, `datetime`, `jsonb_text`), row keys for problem reports (`keys`), and the constraints, indexes and defaults of a table
//! created on the other side (`constraints`, `defaults`).

mod constraints;
mod datetime;
mod decimal;
mod decode;
mod defaults;
mod encode;
mod jsonb_text;
mod keys;
mod new_column;
mod pg_type;
mod profile;
mod round_trip;

pub use constraints::{
    pg_foreign_key, pg_index, sqlite_index, sqlite_table_constraint, ForeignKey, ForeignKeyAction,
    Index, IndexColumn, RemoteNames,
};
pub use decode::Incoming;
pub use defaults::Constant;
pub use encode::{begin_row, encode, COPY_HEADER, COPY_TRAILER};
pub use keys::{key_json, rowid_key, ROWID_COLUMN};
pub use new_column::{affinity, needs_profile, sqlite_type_for, type_for_new_column, Affinity};
pub use pg_type::{PgType, SUPPORTED_TYPES};
pub use profile::Profile;
pub use round_trip::{comes_back, type_that_keeps};
