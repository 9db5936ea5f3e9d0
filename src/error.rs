//! The one error type of the domain. Every message names what is wrong and what to do, and is
//! built so that it can never contain a secret: callers pass names and causes, never plaintext.

use std::fmt;

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
    /// Another sync holds the remote lock: try again later.
    #[error("{0}")]
    Busy(String),
    /// The remote server answered with an error after connecting.
    #[error("{0}")]
    Remote(String),
    /// The remote session broke off in a way worth retrying: the connection was lost, or the
    /// server reported a serialization failure, a deadlock, a shutdown or too many connections.
    #[error("{0}")]
    Interrupted(String),
    /// The job was cancelled; everything it did was rolled back.
    #[error("{0}")]
    Cancelled(String),
    /// The local SQLite database refused an operation.
    #[error("{0}")]
    Local(String),
}

impl Error {
    pub fn invalid(message: impl fmt::Display) -> Self {
        Error::Invalid(message.to_string())
    }

    pub fn secret(message: impl fmt::Display) -> Self {
        Error::Secret(message.to_string())
    }

    pub fn local(message: impl fmt::Display) -> Self {
        Error::Local(message.to_string())
    }

    /// Whether trying again later may succeed: the retry policy retries these and fails the
    /// others at once (wrong password, bad data, bad options, a missing confirmation...).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { failure, .. } => !matches!(
                failure,
                ConnectFailure::Auth | ConnectFailure::DatabaseMissing | ConnectFailure::Tls
            ),
            Error::Busy(_) | Error::Interrupted(_) => true,
            _ => false,
        }
    }

    pub fn connect(failure: ConnectFailure, message: impl fmt::Display) -> Self {
        Error::Connect {
            failure,
            message: message.to_string(),
        }
    }
}
