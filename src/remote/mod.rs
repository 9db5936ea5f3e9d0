//! Everything that talks to the remote Postgres.

pub mod batch;
pub mod catalog;
pub mod conninfo;
pub mod constraints;
pub mod deadlines;
pub mod guard;
mod link;
pub mod schema;
pub mod session;
mod tls;

pub use conninfo::ConnInfo;
pub use session::Session;
pub use tls::BACKEND as TLS_BACKEND;
