//! The only place that touches raw SQLite pointers.

pub mod api;
pub mod argument;
pub mod connection;
pub mod function;
pub mod vtab;

pub use api::{Db, Param, Value};
pub use function::{Call, Output};
