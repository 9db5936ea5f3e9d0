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
use super::deadlines::Deadlines;
use super::guard::GuardHandle;
use super::link::{self, Link};
use super::tls::{self, Recorded, Rejection};
use crate::error::{ConnectFailure, Error, Result};

pub struct Session {
    pub client: Client,
    /// A TLS handshake completed: the session is encrypted.
    pub tls: bool,
    /// The server's certificate was checked against trusted roots.
    pub verified: bool,
    pub connect_time: Duration,
    deadlines: Deadlines,
    /// The job's guard, watching this session until it is dropped.
    guard: Option<GuardHandle>,
}

impl Drop for Session {
    fn drop(&mut self) {
        // Before the client closes the socket, so the guard never touches a closed descriptor.
        if let Some(guard) = &self.guard {
            guard.detach();
        }
    }
}

impl Session {
    /// Connects, with one deadline (`connect_timeout`, default 15 s) around TCP, TLS and the
    /// start-up exchange, where a sleeping Neon compute keeps a client waiting.
    pub fn connect(info: &ConnInfo) -> Result<Session> {
        let started = Instant::now();
        let deadline = started + info.connect_deadline;
        let (client, tls, link) = match info.sslmode {
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
        if let Some(link) = &link {
            link.set_unacknowledged_limit(info.deadlines.unacknowledged_limit());
        }
        if let Some(guard) = &info.guard {
            let token = client.cancel_token();
            let connector = tls::connector(info)?;
            guard.attach(
                link,
                Box::new(move || {
                    let _ = token.cancel_query(connector);
                }),
            );
        }
        Ok(Session {
            client,
            tls,
            verified: tls && info.effective_sslmode().verifies(),
            connect_time: started.elapsed(),
            deadlines: info.deadlines,
            guard: info.guard.clone(),
        })
    }

    /// The statements that give a transaction of this session its server-side deadlines, to
    /// run first in it (see [`Deadlines::transaction_settings`]).
    pub fn transaction_settings(&self) -> [String; 2] {
        self.deadlines.transaction_settings()
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

/// One connection attempt: the client, whether TLS is on, and its socket when found.
fn connect_once(
    info: &ConnInfo,
    mode: PgSslMode,
    deadline: Instant,
) -> Result<(Client, bool, Option<Link>)> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(timed_out(info));
    }
    let tag = link::tag(remaining);
    // Linux takes at most 32767 s.
    let keepalive = info.deadlines.keepalive.min(Duration::from_secs(32_767));
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
        // Bounds how long unacknowledged data may sit on a dead or black-holed peer while
        // connecting; its exact value tags the socket, so that it can be found (see `link`).
        .tcp_user_timeout(tag)
        .keepalives(true)
        .keepalives_idle(keepalive)
        .keepalives_interval(info.deadlines.keepalive_interval())
        .keepalives_retries(3);
    if let Some(password) = &info.password {
        config.password(password.expose());
    }
    if let Some(options) = &info.options {
        config.options(options);
    }
    let connector = Recorded::new(tls::connector(info)?);
    let handshake_done = connector.handshake_done.clone();

    // rust-postgres's connect_timeout covers only the TCP connect. The whole attempt runs on its
    // own thread so the caller can stop waiting at the deadline, or at a cancel; an abandoned
    // attempt ends on its own (tcp_user_timeout, or the server's authentication timeout) and its
    // result is dropped.
    let (sender, receiver) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("cloud_sync-connect".into())
        .spawn(move || {
            let _ = sender.send(config.connect(connector));
        })
        .map_err(|e| Error::local(format!("cannot start a connection thread: {e}")))?;
    match wait_for_connect(&receiver, deadline, info)? {
        Ok(client) => Ok((
            client,
            handshake_done.load(Ordering::SeqCst),
            link::find(tag),
        )),
        Err(e) => Err(classify(&e, info)),
    }
}

/// How long a connect waits between two looks at its job's guard.
const CANCEL_CHECK: Duration = Duration::from_millis(100);

/// Waits for the connect thread's result until `deadline`, or until the guard of the job that
/// connects says the job was cancelled.
fn wait_for_connect(
    receiver: &mpsc::Receiver<std::result::Result<Client, postgres::Error>>,
    deadline: Instant,
    info: &ConnInfo,
) -> Result<std::result::Result<Client, postgres::Error>> {
    loop {
        if info.guard.as_ref().is_some_and(GuardHandle::cancelled) {
            return Err(Error::Cancelled(format!(
                "cancelled while connecting to {}",
                info.target()
            )));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left.min(CANCEL_CHECK)) {
            Ok(result) => return Ok(result),
            Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => {}
            Err(_) => return Err(timed_out(info)),
        }
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
    match error.as_db_error() {
        Some(db) => refusal(db.code(), db.message(), info),
        None => driver_failure(error, info),
    }
}

/// The server, or a pooler in front of it, answered the connection with an error.
fn refusal(code: &SqlState, server_message: &str, info: &ConnInfo) -> Error {
    let target = info.target();
    if *code == SqlState::INVALID_PASSWORD || is_pooler_password_rejection(code, server_message) {
        return password_failed(info);
    }
    let server = remote_text(server_message, info);
    let (failure, message) = match code {
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
    Error::connect(failure, message)
}

fn password_failed(info: &ConnInfo) -> Error {
    Error::connect(
        ConnectFailure::Auth,
        format!(
            "password authentication failed for user \"{}\" at {}: check the password",
            info.user,
            info.target()
        ),
    )
}

/// Wrong-password answers from poolers that do not send Postgres's SQLSTATE 28P01 (Supavisor
/// does since July 2025), matched on the SQLSTATE each comes with and its exact text in the
/// pooler's source, so that no other failure is taken for a wrong password:
/// - PgBouncer (1.x through 1.25): 08P01 "SASL authentication failed" (SCRAM; also for a user
///   it does not know) and 08P01 "password authentication failed" (its md5 and plain modes);
/// - Neon's proxy: XX000 "password authentication failed for user '<user>'", and XX000 with a
///   compute's own "password authentication failed for user \"<user>\"", forwarded without
///   its SQLSTATE;
/// - Supavisor before July 2025: XX000 "Wrong password" (md5 auth_query).
fn is_pooler_password_rejection(code: &SqlState, message: &str) -> bool {
    match code.code() {
        "08P01" => matches!(
            message,
            "SASL authentication failed" | "password authentication failed"
        ),
        "XX000" => {
            message == "Wrong password"
                || message.starts_with("password authentication failed for user ")
        }
        _ => false,
    }
}

/// Supavisor before July 2025 ends a SCRAM exchange with a wrong password by putting
/// "e=Wrong password" in its final message, which the driver reports as this error.
const SUPAVISOR_SCRAM_REJECTION: &str = "SCRAM error: Wrong password";

/// The driver, not a server's error response, says why the connection failed (the network,
/// TLS, the authentication exchange).
fn driver_failure(error: &postgres::Error, info: &ConnInfo) -> Error {
    if chain(error).any(|e| e.to_string() == SUPAVISOR_SCRAM_REJECTION) {
        return password_failed(info);
    }
    let target = info.target();
    let detail = remote_text(&error_chain(error), info);
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
    } else if let Some(Rejection::OtherHost) = tls::rejected_certificate(error) {
        (
            ConnectFailure::Tls,
            format!(
                "TLS with {target} failed: the server's certificate does not name host \"{}\": \
                 connect by the name on the certificate, or use sslmode=verify-ca to check the \
                 chain only",
                info.host
            ),
        )
    } else if let Some(Rejection::Untrusted(reason)) = tls::rejected_certificate(error) {
        (
            ConnectFailure::Tls,
            format!(
                "TLS with {target} failed: the server's certificate is not signed by a trusted \
                 CA ({}): point sslrootcert at the CA that signed it, or use sslmode=require to \
                 encrypt without verifying",
                reason
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
    Error::connect(failure, message)
}

/// `error` and its sources, outermost first.
fn chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source())
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for text in chain(error).map(ToString::to_string) {
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

fn io_error_kind(error: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    chain(error).find_map(|e| e.downcast_ref::<std::io::Error>().map(std::io::Error::kind))
}

/// Passwords shorter than this are left in server and driver text (see `remote_text`).
const SHORTEST_REDACTED_PASSWORD: usize = 16;

/// Server or driver text, for a message. The driver is handed the password as a field of its
/// configuration and never formats it; Postgres, PgBouncer, Supavisor and Neon's proxy never
/// echo it. Only a hostile server could, after asking for the password in clear text. Such an
/// echo is cut out when the password is long enough that its text cannot also be ordinary
/// words of the message; a shorter one is left alone, as replacing its text wherever it
/// occurs mangles messages and spells the password out ("conn***ction r***fus***d" for `e`).
fn remote_text(text: &str, info: &ConnInfo) -> String {
    match &info.password {
        Some(p) if p.expose().chars().count() >= SHORTEST_REDACTED_PASSWORD => {
            text.replace(p.expose(), "***")
        }
        _ => text.to_string(),
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    use super::*;

    fn info_for_port(password: &str, port: u16) -> ConnInfo {
        ConnInfo::parse(&format!(
            "postgresql://u:{password}@127.0.0.1:{port}/d?sslmode=disable"
        ))
        .unwrap()
    }

    /// Where nothing listens.
    fn info(password: &str) -> ConnInfo {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        info_for_port(password, port)
    }

    /// Serves one connection as `pooler` does and returns what connecting to it gives.
    fn connect_to(pooler: fn(&mut TcpStream)) -> Error {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let info = info_for_port("pw", listener.local_addr().unwrap().port());
        let server = std::thread::spawn(move || pooler(&mut listener.accept().unwrap().0));
        let error = Session::connect(&info).err().unwrap();
        server.join().unwrap();
        error
    }

    /// Reads the start-up packet, or a message's type and body.
    fn read(stream: &mut TcpStream, typed: bool) -> Vec<u8> {
        let mut header = vec![0; if typed { 5 } else { 4 }];
        stream.read_exact(&mut header).unwrap();
        let len = u32::from_be_bytes(header[header.len() - 4..].try_into().unwrap());
        let mut body = vec![0; len as usize - 4];
        stream.read_exact(&mut body).unwrap();
        body
    }

    fn send(stream: &mut TcpStream, kind: u8, body: &[u8]) {
        let len = u32::try_from(body.len() + 4).unwrap().to_be_bytes();
        stream
            .write_all(&[&[kind][..], &len, body].concat())
            .unwrap();
    }

    fn send_auth(stream: &mut TcpStream, code: u32, data: &[u8]) {
        send(stream, b'R', &[&code.to_be_bytes()[..], data].concat());
    }

    /// Supavisor before July 2025: a SCRAM exchange whose final message is an error.
    fn supavisor_scram(stream: &mut TcpStream) {
        read(stream, false);
        send_auth(stream, 10, b"SCRAM-SHA-256\0\0");
        let first = String::from_utf8_lossy(&read(stream, true)).into_owned();
        let nonce = first.split_once(",r=").unwrap().1;
        let server_first = format!("r={nonce}pooler,s=c2FsdHNhbHQ=,i=4096");
        send_auth(stream, 11, server_first.as_bytes());
        read(stream, true);
        send_auth(stream, 12, b"e=Wrong password");
    }

    /// Neon's proxy: an error response with SQLSTATE XX000.
    fn neon(stream: &mut TcpStream) {
        read(stream, false);
        let fields = "SFATAL\0VFATAL\0CXX000\0Mpassword authentication failed for user 'u'\0\0";
        send(stream, b'E', fields.as_bytes());
    }

    #[test]
    fn the_driver_reports_pooler_rejections_as_wrong_passwords() {
        for pooler in [supavisor_scram as fn(&mut TcpStream), neon] {
            assert_wrong_password(&connect_to(pooler));
        }
    }

    /// Asserts that `error` says the password was wrong, and is not retried.
    fn assert_wrong_password(error: &Error) {
        assert!(
            matches!(
                error,
                Error::Connect {
                    failure: ConnectFailure::Auth,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(!error.is_transient());
        assert!(
            error
                .to_string()
                .starts_with("password authentication failed for user \"u\" at 127.0.0.1:"),
            "{error}"
        );
    }

    #[test]
    fn wrong_password_answers_of_poolers_are_known_by_code_and_exact_text() {
        let info = info("pw");
        let rejections = [
            ("28P01", "password authentication failed for user \"u\""),
            ("08P01", "SASL authentication failed"),
            ("08P01", "password authentication failed"),
            ("XX000", "password authentication failed for user 'u'"),
            ("XX000", "password authentication failed for user \"u\""),
            ("XX000", "Wrong password"),
        ];
        for (code, text) in rejections {
            assert_wrong_password(&refusal(&SqlState::from_code(code), text, &info));
        }
        let others = [
            ("08P01", "no such database: d"),
            ("08P01", "SASL authentication failed: server busy"),
            ("08006", "SASL authentication failed"),
            ("XX000", "SASL authentication failed"),
            ("XX000", "Tenant or user not found"),
            ("53300", "password authentication failed"),
        ];
        for (code, text) in others {
            let error = refusal(&SqlState::from_code(code), text, &info);
            assert!(error.is_transient(), "{code} {text}: {error:?}");
            assert!(error.to_string().contains(text), "{error}");
        }
    }

    #[test]
    fn a_short_password_leaves_messages_intact() {
        let info = info("e");
        let refused = Session::connect(&info).err().unwrap().to_string();
        assert_eq!(
            refused,
            format!(
                "connection refused by {}: is Postgres running and accepting TCP connections \
                 on port {}?",
                info.target(),
                info.port
            )
        );
        let busy = refusal(
            &SqlState::TOO_MANY_CONNECTIONS,
            "sorry, too many clients already",
            &info,
        );
        assert_eq!(
            busy.to_string(),
            format!(
                "{} cannot take the connection now: sorry, too many clients already; retry later",
                info.target()
            )
        );
    }

    #[test]
    fn a_long_password_echoed_by_a_server_is_cut_out() {
        let password = "Zq9LeakPw7-Zq9LeakPw7";
        let error = refusal(
            &SqlState::from_code("XX000"),
            &format!("bad password \"{password}\""),
            &info(password),
        );
        assert!(
            error
                .to_string()
                .ends_with("refused the connection: bad password \"***\""),
            "{error}"
        );
    }
}
