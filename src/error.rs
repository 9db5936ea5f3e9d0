//! The one error type of the domain. Every message names what is wrong and what to do, and is
//! built so that it can never contain a secret: callers pass names and causes, never plaintext.

use std::ffi::c_int;
use std::fmt;

use postgres::error::SqlState;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a connection attempt failed, in the terms a user can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    Dns,
    Refused,
    Timeout,
    Tls,
    Auth,
    DatabaseMissing,
    /// The server is there but not ready (starting up, too many connections).
    Unavailable,
    Other,
}

/// SQLite's primary result codes that cloud_sync's errors map to at the SQL boundary.
pub mod code {
    use std::ffi::c_int;

    pub const ERROR: c_int = 1;
    pub const BUSY: c_int = 5;
    pub const LOCKED: c_int = 6;
    pub const INTERRUPT: c_int = 9;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller passed something wrong; nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// Key configuration or a saved ciphertext that does not open.
    #[error("{0}")]
    Secret(String),
    /// The remote server could not be reached or refused us.
    #[error("{message}")]
    Connect {
        failure: ConnectFailure,
        message: String,
    },
    /// Another sync holds the remote lock, or another connection the local database: try
    /// again later.
    #[error("{0}")]
    Busy(String),
    /// The remote server answered with an error after connecting. `state` is its SQLSTATE
    /// (`None` when the error came from the driver, not the server).
    #[error("{message}")]
    Remote {
        state: Option<SqlState>,
        message: String,
    },
    /// The remote session broke off without an answer (the connection was lost mid-stream):
    /// worth retrying.
    #[error("{0}")]
    Interrupted(String),
    /// The job was cancelled; everything it did was rolled back.
    #[error("{0}")]
    Cancelled(String),
    /// The local SQLite database refused an operation. `code` is SQLite's extended result
    /// code, `reason` SQLite's own words, `context` what cloud_sync was doing (may be empty).
    #[error("{}{reason}", if context.is_empty() { String::new() } else { format!("{context}: ") })]
    Local {
        code: c_int,
        context: String,
        reason: String,
    },
}

impl Error {
    pub fn invalid(message: impl fmt::Display) -> Self {
        Error::Invalid(message.to_string())
    }

    pub fn secret(message: impl fmt::Display) -> Self {
        Error::Secret(message.to_string())
    }

    /// A local failure found by cloud_sync itself (SQLite reported no code).
    pub fn local(message: impl fmt::Display) -> Self {
        Error::Local {
            code: code::ERROR,
            context: String::new(),
            reason: message.to_string(),
        }
    }

    /// A remote failure found by cloud_sync itself (the server sent no SQLSTATE).
    pub fn remote(message: impl fmt::Display) -> Self {
        Error::Remote {
            state: None,
            message: message.to_string(),
        }
    }

    /// Whether trying again later may succeed: the retry policy retries these and fails the
    /// others at once (wrong password, bad data, bad options, a missing confirmation...).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { failure, .. } => !matches!(
                failure,
                ConnectFailure::Auth | ConnectFailure::DatabaseMissing | ConnectFailure::Tls
            ),
            Error::Remote { state, .. } => state.as_ref().is_some_and(is_transient_state),
            Error::Busy(_) | Error::Interrupted(_) => true,
            _ => false,
        }
    }

    /// The SQLite result code a SQL function reports this error with, so that hosts can tell
    /// a busy database or a cancelled job from other failures without reading the message.
    pub fn sqlite_code(&self) -> c_int {
        match self {
            Error::Local { code, .. } => *code,
            Error::Busy(_) => code::BUSY,
            Error::Cancelled(_) => code::INTERRUPT,
            _ => code::ERROR,
        }
    }

    /// Whether the local database was busy or locked (SQLite's codes, extended or not).
    pub fn is_locally_busy(&self) -> bool {
        matches!(self, Error::Local { code, .. } if matches!(code & 0xff, code::BUSY | code::LOCKED))
    }

    pub fn connect(failure: ConnectFailure, message: impl fmt::Display) -> Self {
        Error::Connect {
            failure,
            message: message.to_string(),
        }
    }
}

/// SQLSTATEs after which the same work may succeed on a later attempt: connection exceptions
/// (class 08), serialization failure, deadlock, lock not available, too many connections, and
/// the server shutting down or starting up.
fn is_transient_state(state: &SqlState) -> bool {
    const TRANSIENT: &[&str] = &[
        "40001", "40P01", "55P03", "53300", "57P01", "57P02", "57P03",
    ];
    let code = state.code();
    code.starts_with("08") || TRANSIENT.contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_errors_are_transient_by_their_sqlstate() {
        let remote = |state: Option<SqlState>| Error::Remote {
            state,
            message: "m".into(),
        };
        assert!(remote(Some(SqlState::T_R_SERIALIZATION_FAILURE)).is_transient());
        assert!(remote(Some(SqlState::CONNECTION_FAILURE)).is_transient());
        assert!(remote(Some(SqlState::ADMIN_SHUTDOWN)).is_transient());
        assert!(!remote(Some(SqlState::INSUFFICIENT_PRIVILEGE)).is_transient());
        assert!(!remote(None).is_transient());
    }

    #[test]
    fn errors_keep_their_sqlite_codes() {
        let busy = Error::Local {
            code: 517, // SQLITE_BUSY_SNAPSHOT
            context: "statement failed".into(),
            reason: "database is locked".into(),
        };
        assert!(busy.is_locally_busy());
        assert_eq!(busy.sqlite_code(), 517);
        assert_eq!(busy.to_string(), "statement failed: database is locked");
        assert_eq!(Error::local("no context").to_string(), "no context");
        assert!(!Error::local("database is locked").is_locally_busy());
        assert_eq!(Error::Busy("b".into()).sqlite_code(), code::BUSY);
        assert_eq!(Error::Cancelled("c".into()).sqlite_code(), code::INTERRUPT);
        assert_eq!(Error::invalid("i").sqlite_code(), code::ERROR);
    }
}
