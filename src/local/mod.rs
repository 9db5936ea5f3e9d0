//! The SQLite side: cloud_sync's own schema, and the application's tables as SQLite describes
//! them.

pub mod schema;
pub mod tables;
