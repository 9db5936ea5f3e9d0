//! The SQL surface: each function reads its arguments, calls the domain, returns the result.

pub mod connections;
pub mod export;
pub mod jobs;
pub mod meta;
