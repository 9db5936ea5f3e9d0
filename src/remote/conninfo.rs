//! Connection strings with libpq's meaning, in both forms:
//! `postgresql://user:password@host:port/dbname?param=value` and `host=... user=... key='value'`.
//!
//! rust-postgres's own parser knows only part of libpq's parameters and rejects the rest
//! (`verify-full`, `sslrootcert`, `pgbouncer=true`), so we parse here and hand the driver a
//! ready configuration.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

mod syntax;

use super::deadlines::Deadlines;
use super::guard::GuardHandle;
use crate::error::{Error, Result};
use crate::secret::SecretString;
use syntax::{parse_keywords, parse_url, strip_scheme, url_encoded, Param};

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
    fn parse(param: &Param) -> Result<SslMode> {
        Ok(match param.value.as_str() {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(Error::invalid(format!(
                    "sslmode {} is not one of disable, allow, prefer, require, verify-ca, \
                     verify-full",
                    param.shown_value()
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
    /// The deadlines of a session opened with this info (a job's, from its options).
    pub deadlines: Deadlines,
    /// The guard of the job that connects, which a session opened with this info attaches to.
    pub guard: Option<GuardHandle>,
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnInfo({})", self.display())
    }
}

impl ConnInfo {
    /// Parses a connection string in URL or keyword/value form. Errors quote only what cannot
    /// hold the password (see [`Param`]).
    pub fn parse(input: &str) -> Result<ConnInfo> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(Error::invalid(
                "the connection string is empty: give postgresql://user:password@host:port/dbname",
            ));
        }
        if let Some(rest) = strip_scheme(trimmed) {
            return ConnInfo::from_params(parse_url(rest)?);
        }
        // Text with no parameter cloud_sync knows is something else (a password given in
        // place of the connection string, another scheme's URL): none of it is quoted.
        let params = if trimmed.contains('=') {
            parse_keywords(trimmed)?
        } else {
            Vec::new()
        };
        if !params
            .iter()
            .any(|p| KNOWN_PARAMETERS.contains(&p.key.as_str()))
        {
            return Err(Error::invalid(
                "not a Postgres connection string: expected \
                 postgresql://user:password@host:port/dbname or key=value pairs such as \
                 host=... user=... dbname=...",
            ));
        }
        ConnInfo::from_params(params)
    }

    fn from_params(params: Vec<Param>) -> Result<ConnInfo> {
        let unknown: Vec<String> = params
            .iter()
            .filter(|p| !KNOWN_PARAMETERS.contains(&p.key.as_str()))
            .map(Param::shown_key)
            .collect();
        if !unknown.is_empty() {
            return Err(Error::invalid(format!(
                "unknown connection parameter{} {}: known parameters are {}",
                if unknown.len() > 1 { "s" } else { "" },
                unknown.join(", "),
                KNOWN_PARAMETERS.join(", ")
            )));
        }
        // Later values win, as in libpq; an empty value means unset.
        let param = |key: &str| {
            params
                .iter()
                .rev()
                .find(|p| p.key == key)
                .filter(|p| !p.value.is_empty())
        };
        let get = |key: &str| param(key).map(|p| p.value.as_str());

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
        let port = port(param("port"))?;
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
        let sslmode = match (param("sslmode"), &sslrootcert) {
            (Some(mode), Some(RootCert::System)) if mode.value != "verify-full" => {
                return Err(Error::invalid(format!(
                    "sslmode {} is too weak for sslrootcert=system: use sslmode=verify-full",
                    mode.shown_value()
                )))
            }
            (None, Some(RootCert::System)) => SslMode::VerifyFull,
            (Some(mode), _) => SslMode::parse(mode)?,
            (None, _) => SslMode::Prefer,
        };
        let channel_binding = channel_binding(param("channel_binding"))?;
        let connect_deadline = connect_deadline(param("connect_timeout"))?;
        if let Some(p) = param("pgbouncer") {
            if p.value != "true" && p.value != "false" {
                return Err(Error::invalid(format!(
                    "pgbouncer must be true or false, not {}",
                    p.shown_value()
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
            deadlines: Deadlines::default(),
            guard: None,
        })
    }

    /// The connection string with the password replaced by `***`, safe to show anywhere. A URL
    /// that parses back to the same user, host and database: what the URL syntax reserves is
    /// percent-encoded in them (`my%20db`, `me%40corp`), other text is shown as it is.
    pub fn display(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            url_encoded(&self.host)
        };
        let secret = if self.password.is_some() { ":***" } else { "" };
        format!(
            "postgresql://{}{secret}@{host}:{}/{}?sslmode={}",
            url_encoded(&self.user),
            self.port,
            url_encoded(&self.dbname),
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

/// The `port` parameter (5432 when unset).
fn port(given: Option<&Param>) -> Result<u16> {
    Ok(match given {
        None => 5432,
        Some(p) => p
            .value
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "port must be a number between 1 and 65535, not {}",
                    p.shown_value()
                ))
            })?,
    })
}

/// The `channel_binding` parameter (`prefer` when unset).
fn channel_binding(given: Option<&Param>) -> Result<ChannelBinding> {
    Ok(match given {
        None => ChannelBinding::Prefer,
        Some(p) => match p.value.as_str() {
            "prefer" => ChannelBinding::Prefer,
            "disable" => ChannelBinding::Disable,
            "require" => ChannelBinding::Require,
            _ => {
                return Err(Error::invalid(format!(
                    "channel_binding {} is not one of disable, prefer, require",
                    p.shown_value()
                )))
            }
        },
    })
}

/// The `connect_timeout` parameter: cloud_sync always keeps a deadline.
fn connect_deadline(given: Option<&Param>) -> Result<Duration> {
    Ok(match given {
        None => DEFAULT_CONNECT_DEADLINE,
        Some(p) => match p.value.parse::<u64>() {
            Ok(secs) if secs > 0 => Duration::from_secs(secs),
            _ => {
                return Err(Error::invalid(format!(
                    "connect_timeout must be a positive number of seconds, not {} \
                     (cloud_sync always keeps a deadline)",
                    p.shown_value()
                )))
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

    use super::syntax::WITHHELD;
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
    fn display_shows_names_as_given_and_parses_back_to_them() {
        let c = parse("postgresql://al%40ice:pw@h/my%20db");
        assert_eq!(
            c.display(),
            "postgresql://al%40ice:***@h:5432/my%20db?sslmode=prefer"
        );
        let c = parse("host=h user=u dbname='données 100% a/b?c#d:e@f&g=h'");
        assert_eq!(
            c.display(),
            "postgresql://u@h:5432/données%20100%25%20a%2Fb%3Fc%23d%3Ae%40f%26g%3Dh?sslmode=prefer"
        );
        for given in [
            "postgresql://al%40ice:pw@h/my%20db",
            "host=h user='a:b@c' dbname='données 100% a/b?c#d:e@f&g=h[]'",
            "host=h user=u dbname='tab\tline'",
            "postgresql://u@[::1]:5433/d",
        ] {
            let c = parse(given);
            let back = parse(&c.display());
            assert_eq!(
                (&back.user, &back.host, back.port, &back.dbname),
                (&c.user, &c.host, c.port, &c.dbname),
                "{given}"
            );
        }
    }

    #[test]
    fn unencoded_at_and_hash_stay_in_the_password() {
        let c = parse("postgresql://u:Zq9@Le#ak@Pw@db.example.com:6543/d?sslmode=require");
        assert_eq!(c.password.as_ref().unwrap().expose(), "Zq9@Le#ak@Pw");
        assert_eq!((c.host.as_str(), c.port), ("db.example.com", 6543));
        let c = parse("postgresql://u:pw@h/d?application_name=me@example.com");
        assert_eq!(c.application_name.as_deref(), Some("me@example.com"));
    }

    /// Every part of `password` longer than 3 characters that starts or ends it, as written
    /// and percent-encoded.
    fn fragments(password: &str) -> Vec<String> {
        let encoded = utf8_percent_encode(password, NON_ALPHANUMERIC).to_string();
        let mut out = Vec::new();
        for form in [password, encoded.as_str()] {
            let chars: Vec<char> = form.chars().collect();
            for n in 4..=chars.len() {
                out.push(chars[..n].iter().collect());
                out.push(chars[chars.len() - n..].iter().collect());
            }
        }
        out
    }

    #[test]
    fn no_parse_error_quotes_any_part_of_the_password() {
        let templates = [
            "postgresql://u:{pw}",
            "postgresql://u:{pw}/d",
            "postgresql://u:{pw}?sslmode=require",
            "postgresql://u:{pw}@",
            "postgresql://u:{pw}@h:notaport/d",
            "postgresql://u:{pw}@h:0/d",
            "postgresql://u:{pw}@h/d?sslmode=bogus",
            "postgresql://u:{pw}@h/d?sslmode=require&sslrootcert=system",
            "postgresql://u:{pw}@h/d?channel_binding=bogus",
            "postgresql://u:{pw}@h/d?connect_timeout=-1",
            "postgresql://u:{pw}@h/d?pgbouncer=bogus",
            "postgresql://u:{pw}@h/d?frobnicate=1",
            "postgresql://u:{pw}@h/d?bare",
            "postgresql://u:{pw}@h/d?sslmode=%zz",
            "postgresql://u:{pw}@[::1/d",
            "postgresql://u:{pw}@[::1]x/d",
            "postgresql://u:{pw}@h1,h2/d",
            "postgresql://u:{pw}@%2Ftmp/d",
            "postgresql://u:{pw}@h%zz/d",
            "postgresql://:{pw}@h/d",
            "postgresql://u:{pw}%zz@h/d",
            "postgresql://u:{pw}%ff@h/d",
            "postgresql://u%zz:{pw}@h/d",
            "postgresql://h/d?user=u&password={pw}&sslmode=bogus",
            "postgresql://h/d?password={pw}",
            "mysql://u:{pw}@h/d",
            "mysql://u:{pw}@h/d?sslmode=require",
            "POSTGRESQL://u:{pw}@h/d?sslmode=require",
            "{pw}",
            "host=h user=u password={pw} port=bogus",
            "host=h user=u password={pw} sslmode=bogus",
            "host=h user=u password={pw} frobnicate=1",
            "host=h user=u password={pw} bare",
            "host=h user=u password='{pw}",
            "host=h user=u password='{pw}'",
        ];
        let mut passwords = vec!["Zq9LeakPw7".to_string()];
        passwords.extend(
            "/?#@&:;, '\"\\%=+[]"
                .chars()
                .map(|c| format!("Zq9Le{c}akPw7")),
        );
        let mut errors = 0;
        for password in &passwords {
            let forbidden = fragments(password);
            let encoded = utf8_percent_encode(password, NON_ALPHANUMERIC).to_string();
            for template in templates {
                for form in [password, &encoded] {
                    let input = template.replace("{pw}", form);
                    let Err(e) = ConnInfo::parse(&input) else {
                        continue;
                    };
                    errors += 1;
                    let message = e.to_string();
                    if let Some(leak) = forbidden.iter().find(|f| message.contains(f.as_str())) {
                        panic!("{input}: {message} quotes {leak:?}");
                    }
                }
            }
        }
        assert!(errors > templates.len() * passwords.len(), "{errors}");
    }

    #[test]
    fn what_may_hold_a_password_is_named_but_withheld() {
        let cases = [
            ("postgresql://u:Zq9LeakPw", "port must be a number"),
            ("postgresql://u:Zq9/LeakPw@h/d", "port must be a number"),
            (
                "postgresql://u:Zq9?Leak=Pw@h/d",
                "unknown connection parameter",
            ),
            (
                "postgresql://u@h/d?password=Zq9&Leak=Pw",
                "unknown connection parameter",
            ),
            (
                "host=h user=u password=Zq9 Leak=Pw",
                "unknown connection parameter",
            ),
            ("host=h user=u password=Zq9 LeakPw", "expected \"=\" after"),
            ("host=h user=u password=Zq9 sslmode=LeakPw", "sslmode"),
        ];
        for (input, expected) in cases {
            let message = err(input);
            assert!(message.contains(expected), "{input}: {message}");
            assert!(message.contains(WITHHELD), "{input}: {message}");
            assert!(!message.contains("Leak"), "{input}: {message}");
        }
        assert!(err("host=h user").contains("expected \"=\" after \"user\""));
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
