//! The SQLite side: cloud_sync's own schema, and (later) the user's tables.

pub mod schema;
pub mod tables;
