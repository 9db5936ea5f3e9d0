//! One connection to the remote Postgres: connect under an overall deadline, say in plain words
//! why a connection failed, and report what the session is (TLS, verification, server).

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use postgres::config::{ChannelBinding as PgChannelBinding, SslMode as PgSslMode};
use postgres::error::SqlState;
use postgres::{Client, SimpleQueryMessage};
use serde_json::{json, Value};

use super::conninfo::{ChannelBinding, ConnInfo, SslMode};
use super::tls::{self, Recorded};
use crate::error::{ConnectFailure, Error, Result};

pub struct Session {
    pub client: Client,
    /// A TLS handshake completed: the session is encrypted.
    pub tls: bool,
    /// The server's certificate was checked against trusted roots.
    pub verified: bool,
    pub connect_time: Duration,
}

impl Session {
    /// Connects, with one deadline (`connect_timeout`, default 15 s) around TCP, TLS and the
    /// start-up exchange, where a sleeping Neon compute keeps a client waiting.
    pub fn connect(info: &ConnInfo) -> Result<Session> {
        let started = Instant::now();
        let deadline = started + info.connect_deadline;
        let (client, tls) = match info.sslmode {
            SslMode::Disable => connect_once(info, PgSslMode::Disable, deadline)?,
            // libpq's `allow`: plain text first, TLS only if the server turns plain text down.
            SslMode::Allow => match connect_once(info, PgSslMode::Disable, deadline) {
                Err(Error::Connect {
                    failure: ConnectFailure::Auth | ConnectFailure::Other,
                    ..
                }) => connect_once(info, PgSslMode::Require, deadline)?,
                other => other?,
            },
            SslMode::Prefer => connect_once(info, PgSslMode::Prefer, deadline)?,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                connect_once(info, PgSslMode::Require, deadline)?
            }
        };
        Ok(Session {
            client,
            tls,
            verified: tls && info.effective_sslmode().verifies(),
            connect_time: started.elapsed(),
        })
    }

    /// Runs a trivial query and reports what this session is.
    pub fn probe(&mut self) -> Result<Value> {
        let started = Instant::now();
        let messages = self
            .client
            .simple_query(
                "SELECT current_setting('server_version'), current_database(), current_user",
            )
            .map_err(|e| remote_error("the test query failed", &e))?;
        let rtt = started.elapsed();
        let row = messages
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(row),
                _ => None,
            })
            .ok_or_else(|| Error::remote("the test query returned no row"))?;
        Ok(json!({
            "ok": true,
            "server_version": row.get(0),
            "database": row.get(1),
            "user": row.get(2),
            "tls": self.tls,
            "verified": self.verified,
            "rtt_ms": round_ms(rtt),
            "connect_ms": round_ms(self.connect_time),
        }))
    }
}

fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

fn connect_once(info: &ConnInfo, mode: PgSslMode, deadline: Instant) -> Result<(Client, bool)> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(timed_out(info));
    }
    let mut config = postgres::Config::new();
    config
        .host(&info.host)
        .port(info.port)
        .user(&info.user)
        .dbname(&info.dbname)
        .ssl_mode(mode)
        .channel_binding(match info.channel_binding {
            ChannelBinding::Disable => PgChannelBinding::Disable,
            ChannelBinding::Prefer => PgChannelBinding::Prefer,
            ChannelBinding::Require => PgChannelBinding::Require,
        })
        .application_name(info.application_name.as_deref().unwrap_or("cloud_sync"))
        .connect_timeout(remaining)
        // Bounds how long unacknowledged data may sit on a dead or black-holed peer.
        .tcp_user_timeout(remaining)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30));
    if let Some(password) = &info.password {
        config.password(password.expose());
    }
    if let Some(options) = &info.options {
        config.options(options);
    }
    let connector = Recorded::new(tls::connector(info)?);
    let handshake_done = connector.handshake_done.clone();

    // rust-postgres's connect_timeout covers only the TCP connect. The whole attempt runs on its
    // own thread so the caller can stop waiting at the deadline; an abandoned attempt ends on
    // its own (tcp_user_timeout, or the server's authentication timeout) and its result is dropped.
    let (sender, receiver) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("cloud_sync-connect".into())
        .spawn(move || {
            let _ = sender.send(config.connect(connector));
        })
        .map_err(|e| Error::local(format!("cannot start a connection thread: {e}")))?;
    match receiver.recv_timeout(remaining) {
        Ok(Ok(client)) => Ok((client, handshake_done.load(Ordering::SeqCst))),
        Ok(Err(e)) => Err(classify(&e, info)),
        Err(_) => Err(timed_out(info)),
    }
}

fn timed_out(info: &ConnInfo) -> Error {
    Error::connect(
        ConnectFailure::Timeout,
        format!(
            "timed out after {} s connecting to {} (TCP, TLS and start-up): the host may be \
             unreachable or firewalled, or a Neon compute may still be waking up; retry, or raise \
             connect_timeout",
            info.connect_deadline.as_secs(),
            info.target()
        ),
    )
}

/// Turns a driver error at connect time into a message that says what to do.
fn classify(error: &postgres::Error, info: &ConnInfo) -> Error {
    let target = info.target();
    if let Some(db) = error.as_db_error() {
        let server = db.message();
        let (failure, message) = match db.code() {
            c if *c == SqlState::INVALID_PASSWORD => (
                ConnectFailure::Auth,
                format!(
                    "password authentication failed for user \"{}\" at {target}: check the password",
                    info.user
                ),
            ),
            c if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => (
                ConnectFailure::Auth,
                format!("{target} refused user \"{}\": {server}", info.user),
            ),
            c if *c == SqlState::INVALID_CATALOG_NAME => (
                ConnectFailure::DatabaseMissing,
                format!(
                    "database \"{}\" does not exist on {target}: check the database name",
                    info.dbname
                ),
            ),
            c if [
                SqlState::TOO_MANY_CONNECTIONS,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::ADMIN_SHUTDOWN,
            ]
            .contains(c) =>
            {
                (
                    ConnectFailure::Unavailable,
                    format!("{target} cannot take the connection now: {server}; retry later"),
                )
            }
            _ => (
                ConnectFailure::Other,
                format!("{target} refused the connection: {server}"),
            ),
        };
        return Error::connect(failure, scrub(&message, info));
    }

    let detail = error_chain(error);
    let io_kind = io_error_kind(error);
    let lower = detail.to_lowercase();
    let (failure, message) = if io_kind == Some(std::io::ErrorKind::ConnectionRefused) {
        (
            ConnectFailure::Refused,
            format!(
                "connection refused by {target}: is Postgres running and accepting TCP \
                 connections on port {}?",
                info.port
            ),
        )
    } else if io_kind == Some(std::io::ErrorKind::TimedOut) {
        return timed_out(info);
    } else if lower.contains("lookup address")
        || lower.contains("name or service not known")
        || lower.contains("name resolution")
        || lower.contains("no address associated")
    {
        (
            ConnectFailure::Dns,
            format!(
                "could not resolve host \"{}\" (DNS lookup failed): check the host name",
                info.host
            ),
        )
    } else if lower.contains("server does not support tls") {
        (
            ConnectFailure::Tls,
            format!(
                "{target} does not accept TLS, but sslmode={} requires it: enable ssl on the \
                 server, or use sslmode=prefer",
                info.sslmode.as_str()
            ),
        )
    } else if lower.contains("hostname mismatch") || lower.contains("ip address mismatch") {
        (
            ConnectFailure::Tls,
            format!(
                "TLS with {target} failed: the server's certificate does not name host \"{}\": \
                 connect by the name on the certificate, or use sslmode=verify-ca to check the \
                 chain only",
                info.host
            ),
        )
    } else if lower.contains("certificate verify failed") {
        (
            ConnectFailure::Tls,
            format!(
                "TLS with {target} failed: the server's certificate is not signed by a trusted \
                 CA ({}): point sslrootcert at the CA that signed it, or use sslmode=require to \
                 encrypt without verifying",
                verify_reason(&detail)
            ),
        )
    } else if lower.contains("tls") || lower.contains("ssl") {
        (
            ConnectFailure::Tls,
            format!("TLS with {target} failed: {detail}"),
        )
    } else if lower.contains("channel binding") {
        (
            ConnectFailure::Auth,
            format!(
                "channel binding with {target} failed ({detail}): use channel_binding=prefer, \
                 or a server that supports SCRAM-SHA-256-PLUS"
            ),
        )
    } else {
        (
            ConnectFailure::Other,
            format!("could not connect to {target}: {detail}"),
        )
    };
    Error::connect(failure, scrub(&message, info))
}

fn verify_reason(detail: &str) -> &str {
    detail.rsplit(": ").next().unwrap_or(detail)
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

fn io_error_kind(error: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = e.source();
    }
    None
}

/// Defence in depth: no driver message should ever hold the password, but if one did, it is
/// removed before the message leaves this module.
fn scrub(message: &str, info: &ConnInfo) -> String {
    match &info.password {
        Some(p) if !p.expose().is_empty() => message.replace(p.expose(), "***"),
        _ => message.to_string(),
    }
}

/// A driver error after connecting, for job errors and SQL errors: the server's error keeps
/// its SQLSTATE (which decides whether a retry may help); a connection lost without an answer
/// gives `Error::Interrupted`, which the retry policy retries.
pub fn remote_error(context: &str, error: &postgres::Error) -> Error {
    match error.as_db_error() {
        Some(db) => Error::Remote {
            state: Some(db.code().clone()),
            message: format!(
                "{context}: {} (SQLSTATE {})",
                db.message(),
                db.code().code()
            ),
        },
        None => Error::Interrupted(format!("{context}: {}", error_chain(error))),
    }
}
