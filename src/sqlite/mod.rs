//! The only place that touches raw SQLite pointers.

pub mod api;
pub mod function;

pub use api::{Db, Param};
pub use function::{Call, Output};
