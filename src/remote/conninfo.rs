//! Connection strings with libpq's meaning, in both forms:
//! `postgresql://user:password@host:port/dbname?param=value` and `host=... user=... key='value'`.
//!
//! rust-postgres's own parser knows only part of libpq's parameters and rejects the rest
//! (`verify-full`, `sslrootcert`, `pgbouncer=true`), so we parse here and hand the driver a
//! ready configuration.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};
use crate::secret::SecretString;

pub const DEFAULT_CONNECT_DEADLINE: Duration = Duration::from_secs(15);

const KNOWN_PARAMETERS: &[&str] = &[
    "host",
    "port",
    "dbname",
    "user",
    "password",
    "sslmode",
    "sslrootcert",
    "channel_binding",
    "connect_timeout",
    "application_name",
    "options",
    "pgbouncer",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::invalid(format!(
                    "sslmode \"{other}\" is not one of disable, allow, prefer, require, \
                     verify-ca, verify-full"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    pub fn verifies(self) -> bool {
        self >= SslMode::VerifyCa
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// The operating system's trusted roots (libpq's `sslrootcert=system`).
    System,
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelBinding {
    Disable,
    Prefer,
    Require,
}

/// A parsed connection string. `Debug` never shows the password.
#[derive(Clone)]
pub struct ConnInfo {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    pub password: Option<SecretString>,
    pub sslmode: SslMode,
    pub sslrootcert: Option<RootCert>,
    pub channel_binding: ChannelBinding,
    /// The overall deadline for TCP, TLS and start-up together.
    pub connect_deadline: Duration,
    pub application_name: Option<String>,
    pub options: Option<String>,
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnInfo({})", self.display())
    }
}

impl ConnInfo {
    /// Parses a connection string in URL or keyword/value form. Errors never echo the input,
    /// which may hold a password.
    pub fn parse(input: &str) -> Result<ConnInfo> {
        let trimmed = input.trim();
        let pairs = if trimmed.is_empty() {
            return Err(Error::invalid(
                "the connection string is empty: give postgresql://user:password@host:port/dbname",
            ));
        } else if let Some(rest) = strip_scheme(trimmed) {
            parse_url(rest)?
        } else if trimmed.contains('=') {
            parse_keywords(trimmed)?
        } else {
            return Err(Error::invalid(
                "not a Postgres connection string: expected \
                 postgresql://user:password@host:port/dbname or key=value pairs such as \
                 host=... user=... dbname=...",
            ));
        };
        ConnInfo::from_pairs(pairs)
    }

    fn from_pairs(pairs: Vec<(String, String)>) -> Result<ConnInfo> {
        let unknown: Vec<&str> = pairs
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !KNOWN_PARAMETERS.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(Error::invalid(format!(
                "unknown connection parameter{} {}: known parameters are {}",
                if unknown.len() > 1 { "s" } else { "" },
                unknown
                    .iter()
                    .map(|k| format!("\"{k}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                KNOWN_PARAMETERS.join(", ")
            )));
        }
        // Later values win, as in libpq.
        let get = |key: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };

        let host = get("host").unwrap_or("localhost").to_string();
        if host.contains(',') {
            return Err(Error::invalid(
                "several hosts in one connection string are not supported yet: give one host",
            ));
        }
        if host.starts_with('/') {
            return Err(Error::invalid(
                "Unix-domain socket hosts are not supported: give a TCP host name",
            ));
        }
        let port = match get("port") {
            None => 5432,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                Error::invalid(format!(
                    "port must be a number between 1 and 65535, not \"{p}\""
                ))
            })?,
        };
        let user = get("user")
            .ok_or_else(|| {
                Error::invalid(
                    "the connection string names no user: add user=... (or user@ in a URL)",
                )
            })?
            .to_string();
        let dbname = get("dbname").unwrap_or(&user).to_string();
        let sslrootcert = get("sslrootcert").map(|v| match v {
            "system" => RootCert::System,
            path => RootCert::File(PathBuf::from(path)),
        });
        let sslmode = match (get("sslmode"), &sslrootcert) {
            (Some(mode), Some(RootCert::System)) if mode != "verify-full" => {
                return Err(Error::invalid(format!(
                    "sslmode \"{mode}\" is too weak for sslrootcert=system: use sslmode=verify-full"
                )))
            }
            (None, Some(RootCert::System)) => SslMode::VerifyFull,
            (Some(mode), _) => SslMode::parse(mode)?,
            (None, _) => SslMode::Prefer,
        };
        let channel_binding = match get("channel_binding") {
            None | Some("prefer") => ChannelBinding::Prefer,
            Some("disable") => ChannelBinding::Disable,
            Some("require") => ChannelBinding::Require,
            Some(other) => {
                return Err(Error::invalid(format!(
                    "channel_binding \"{other}\" is not one of disable, prefer, require"
                )))
            }
        };
        let connect_deadline = match get("connect_timeout") {
            None => DEFAULT_CONNECT_DEADLINE,
            Some(s) => match s.parse::<u64>() {
                Ok(secs) if secs > 0 => Duration::from_secs(secs),
                _ => {
                    return Err(Error::invalid(format!(
                        "connect_timeout must be a positive number of seconds, not \"{s}\" \
                         (cloud_sync always keeps a deadline)"
                    )))
                }
            },
        };
        if let Some(v) = get("pgbouncer") {
            if v != "true" && v != "false" {
                return Err(Error::invalid(format!(
                    "pgbouncer must be true or false, not \"{v}\""
                )));
            }
        }
        Ok(ConnInfo {
            host,
            port,
            user,
            dbname,
            password: get("password").map(|p| SecretString::new(p.to_string())),
            sslmode,
            sslrootcert,
            channel_binding,
            connect_deadline,
            application_name: get("application_name").map(str::to_string),
            options: get("options").map(str::to_string),
        })
    }

    /// The connection string with the password replaced by `***`, safe to show anywhere.
    pub fn display(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let secret = if self.password.is_some() { ":***" } else { "" };
        format!(
            "postgresql://{}{secret}@{host}:{}/{}?sslmode={}",
            self.user,
            self.port,
            self.dbname,
            self.sslmode.as_str()
        )
    }

    /// The TLS mode in force: libpq treats `require` with a root certificate file as `verify-ca`.
    pub fn effective_sslmode(&self) -> SslMode {
        match (self.sslmode, &self.sslrootcert) {
            (SslMode::Require, Some(RootCert::File(_))) => SslMode::VerifyCa,
            (mode, _) => mode,
        }
    }

    /// `host:port`, for messages.
    pub fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

fn strip_scheme(s: &str) -> Option<&str> {
    ["postgresql://", "postgres://"]
        .iter()
        .find_map(|scheme| s.strip_prefix(scheme))
}

fn decode(part: &str, what: &str) -> Result<String> {
    let bytes = part.as_bytes();
    let is_hex = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_hexdigit);
    if (0..bytes.len()).any(|i| bytes[i] == b'%' && !(is_hex(i + 1) && is_hex(i + 2))) {
        return Err(Error::invalid(format!(
            "malformed percent-encoding in the {what} of the URL: a % must be followed by \
             two hex digits (write %25 for a literal %)"
        )));
    }
    percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            Error::invalid(format!(
                "the {what} of the URL is not valid UTF-8 once decoded"
            ))
        })
}

fn parse_url(rest: &str) -> Result<Vec<(String, String)>> {
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut pairs = Vec::new();
    let hostport = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            pairs.push(("user".into(), decode(user, "user name")?));
            if let Some(p) = password {
                pairs.push(("password".into(), decode(p, "password")?));
            }
            hostport
        }
        None => authority,
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| {
            Error::invalid("malformed URL: an IPv6 host opened with [ is never closed with ]")
        })?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| {
                Error::invalid("malformed URL: expected :port after the ] of an IPv6 host")
            })?),
        };
        (host.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (decode(h, "host")?, Some(p)),
            None => (decode(hostport, "host")?, None),
        }
    };
    if !host.is_empty() {
        pairs.push(("host".into(), host));
    }
    if let Some(port) = port {
        pairs.push(("port".into(), port.to_string()));
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        pairs.push(("dbname".into(), decode(db, "database name")?));
    }
    for param in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
    {
        let (key, value) = param.split_once('=').ok_or_else(|| {
            Error::invalid(format!(
                "malformed URL parameter \"{}\": expected key=value",
                param.split('=').next().unwrap_or_default()
            ))
        })?;
        let key = decode(key, "parameter names")?;
        let value = decode(value, &format!("parameter {key}"))?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn parse_keywords(input: &str) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(Error::invalid(format!(
                "malformed connection string: expected \"=\" after \"{key}\""
            )));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => {
                        return Err(Error::invalid(format!(
                            "malformed connection string: the quoted value of \"{key}\" is never closed"
                        )))
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ConnInfo {
        ConnInfo::parse(s).unwrap()
    }

    fn err(s: &str) -> String {
        ConnInfo::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn url_with_everything_percent_decoded() {
        let c = parse(
            "postgresql://al%40ice:p%40ss%3Aw%2Frd%25@db.example.com:6543/my%20db?sslmode=verify-full&sslrootcert=/ca.pem&application_name=app&connect_timeout=7&pgbouncer=true",
        );
        assert_eq!(c.user, "al@ice");
        assert_eq!(c.password.as_ref().unwrap().expose(), "p@ss:w/rd%");
        assert_eq!(c.host, "db.example.com");
        assert_eq!(c.port, 6543);
        assert_eq!(c.dbname, "my db");
        assert_eq!(c.sslmode, SslMode::VerifyFull);
        assert_eq!(c.sslrootcert, Some(RootCert::File("/ca.pem".into())));
        assert_eq!(c.connect_deadline, Duration::from_secs(7));
        assert_eq!(c.application_name.as_deref(), Some("app"));
    }

    #[test]
    fn defaults_follow_libpq() {
        let c = parse("postgres://bob@localhost");
        assert_eq!((c.port, c.dbname.as_str()), (5432, "bob"));
        assert_eq!(c.sslmode, SslMode::Prefer);
        assert_eq!(c.channel_binding, ChannelBinding::Prefer);
        assert_eq!(c.connect_deadline, DEFAULT_CONNECT_DEADLINE);
        assert!(c.password.is_none());
        let sys = parse("postgres://bob@h/db?sslrootcert=system");
        assert_eq!(sys.sslmode, SslMode::VerifyFull);
        assert!(err("postgres://bob@h/db?sslrootcert=system&sslmode=require").contains("too weak"));
    }

    #[test]
    fn require_with_a_root_file_verifies_the_chain_as_in_libpq() {
        let c = parse("postgres://u@h/d?sslmode=require&sslrootcert=/ca.pem");
        assert_eq!(c.effective_sslmode(), SslMode::VerifyCa);
        assert_eq!(
            parse("postgres://u@h/d?sslmode=require").effective_sslmode(),
            SslMode::Require
        );
    }

    #[test]
    fn ipv6_hosts() {
        let c = parse("postgresql://u@[::1]:5433/d");
        assert_eq!((c.host.as_str(), c.port), ("::1", 5433));
        assert_eq!(c.display(), "postgresql://u@[::1]:5433/d?sslmode=prefer");
    }

    #[test]
    fn keyword_value_form_with_quotes_and_escapes() {
        let c = parse(r"host=h port = 5433 user=u password='it\'s \\ y' dbname=d sslmode=require");
        assert_eq!(c.password.as_ref().unwrap().expose(), r"it's \ y");
        assert_eq!(
            (c.host.as_str(), c.port, c.dbname.as_str()),
            ("h", 5433, "d")
        );
        assert_eq!(c.sslmode, SslMode::Require);
    }

    #[test]
    fn display_and_debug_hide_the_password() {
        let c = parse("postgresql://u:hunter2@h:5432/d?sslmode=require");
        assert_eq!(c.display(), "postgresql://u:***@h:5432/d?sslmode=require");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn bad_input_is_named_and_never_echoes_the_password() {
        let cases = [
            ("postgresql://u:hunter2@h/d?foo=1&bar=2", "\"foo\", \"bar\""),
            ("postgresql://u:hunter2@h:notaport/d", "port must be"),
            (
                "postgresql://u:hunter2@h/d?sslmode=verify",
                "sslmode \"verify\"",
            ),
            (
                "postgresql://u:hunter2@h/d?connect_timeout=0",
                "connect_timeout",
            ),
            ("postgresql://u:hunter2@h1,h2/d", "several hosts"),
            ("postgresql://u:hunt%zzer2@h/d", "percent-encoding"),
            ("postgresql://u:hunter2@[::1/d", "IPv6"),
            ("mysql://u:hunter2@h/d", "not a Postgres connection string"),
            ("host=h password='hunter2", "never closed"),
            ("host=h user", "expected \"=\""),
            ("postgresql://:hunter2@h/d", "no user"),
            ("", "empty"),
            (
                "postgresql://u:hunter2@h/d?channel_binding=maybe",
                "channel_binding",
            ),
        ];
        for (input, expected) in cases {
            let message = err(input);
            assert!(message.contains(expected), "{input}: {message}");
            assert!(!message.contains("hunter2"), "{input}: {message}");
        }
    }
}
