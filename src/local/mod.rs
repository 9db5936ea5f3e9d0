//! The SQLite side: cloud_sync's own schema, and the application's tables as SQLite describes
//! them, with their constraints and indexes.

pub mod constraints;
pub mod schema;
pub mod tables;
