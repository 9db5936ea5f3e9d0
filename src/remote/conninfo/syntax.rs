//! The two spellings of a connection string, read into a list of `key=value` parameters with
//! no meaning yet: the URL (`postgresql://user:password@host:port/dbname?param=value`) and
//! libpq's keyword/value form (`host=... user=... key='value'`). The meaning is
//! [`super::ConnInfo`]'s. What a message may quote of each parameter is decided here, where
//! it is known whether a password may have spilled into it.

use percent_encoding::percent_decode_str;

use super::KNOWN_PARAMETERS;
use crate::error::{Error, Result};
use crate::shown;

/// One `key=value` of a connection string, and whether a message may quote it. A password can
/// spill into the parameters written after it when its special characters are not escaped
/// (`parse_url` and `parse_keywords` say how); those are named in messages, never quoted.
pub(super) struct Param {
    pub(super) key: String,
    pub(super) value: String,
    pub(super) quotable: bool,
}

/// What a message says in place of text that may be part of a password.
pub(super) const WITHHELD: &str = "(withheld: it may be part of a password)";

impl Param {
    pub(super) fn new(key: impl Into<String>, value: impl Into<String>, quotable: bool) -> Param {
        Param {
            key: key.into(),
            value: value.into(),
            quotable,
        }
    }

    pub(super) fn shown_value(&self) -> String {
        quoted(&self.value, self.quotable)
    }

    /// The name in quotes, for a message: only text shaped like a parameter name, as a
    /// fragment of a URL or of another connection string may hold a password.
    pub(super) fn shown_key(&self) -> String {
        let name_like = !self.key.is_empty()
            && self
                .key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        quoted(&self.key, self.quotable && name_like)
    }
}

/// `text` in quotes for a message, or [`WITHHELD`] in its place.
fn quoted(text: &str, quotable: bool) -> String {
    if quotable {
        shown::quoted(text, '"')
    } else {
        WITHHELD.to_string()
    }
}

/// A word that should have been `key=value`: named only when it is a parameter name, as a
/// password written without its key, or cut off by a space, is a bare word too.
fn shown_word(word: &str, quotable: bool) -> String {
    quoted(word, quotable && KNOWN_PARAMETERS.contains(&word))
}

pub(super) fn strip_scheme(s: &str) -> Option<&str> {
    ["postgresql://", "postgres://"]
        .iter()
        .find_map(|scheme| s.strip_prefix(scheme))
}

/// `text` as one part of a URL: the characters that end or split a part (`/ ? # @ : & = [ ]`),
/// `%` itself, spaces and control characters percent-encoded; everything else, non-ASCII
/// letters included, as it is, so that [`decode`] gives `text` back.
pub(super) fn url_encoded(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_control() || " %/?#@:&=[]".contains(c) {
            encoded.push_str(&format!("%{:02X}", c as u8));
        } else {
            encoded.push(c);
        }
    }
    encoded
}

/// Percent-decodes one part of a URL. Errors name the part, never quote it.
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

/// Splits a URL (after its scheme) into parameters, the password first. The user info ends at
/// the last `@` before the path or query (the first `/` or `?`), as in RFC 3986 and libpq,
/// tolerating an unencoded `@` in the password as browsers do; what follows it is free of the
/// password. Two mistakes can still leave part of a password there, so then nothing after the
/// user info is quoted:
/// - an unencoded `/` or `?` in the password ends the authority early (`u:pa/ss@host`), which
///   leaves an `@` after it;
/// - with no `@` at all, `user:password` missing its `@host` reads as `host:port`.
///
/// An unencoded `&` splits a `password=` in the query, so parameters after it are not quoted
/// either. (An unencoded `#` needs no care: like libpq, cloud_sync reads it as a character.)
pub(super) fn parse_url(rest: &str) -> Result<Vec<Param>> {
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (userinfo, after) = match rest[..authority_end].rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let mut quotable =
        !after.contains('@') && (userinfo.is_some() || !rest[..authority_end].contains(':'));

    let mut params = Vec::new();
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        params.push(Param::new("user", decode(user, "user name")?, true));
        if let Some(p) = password {
            params.push(Param::new("password", decode(p, "password")?, false));
        }
    }
    let (after, query) = match after.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (after, None),
    };
    let (hostport, path) = match after.find('/') {
        Some(i) => (&after[..i], Some(&after[i + 1..])),
        None => (after, None),
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
        params.push(Param::new("host", host, quotable));
    }
    if let Some(port) = port {
        params.push(Param::new("port", port, quotable));
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        params.push(Param::new("dbname", decode(db, "database name")?, quotable));
    }
    for param in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
    {
        let (key, value) = param.split_once('=').ok_or_else(|| {
            Error::invalid(format!(
                "malformed URL parameter {}: expected key=value",
                shown_word(param, quotable)
            ))
        })?;
        let key = decode(key, "parameter names")?;
        let value = decode(value, &format!("parameter {}", shown_word(&key, quotable)))?;
        let is_password = key == "password";
        params.push(Param::new(key, value, quotable && !is_password));
        quotable &= !is_password;
    }
    Ok(params)
}

/// Splits `key=value` pairs (values optionally in single quotes, `\` escaping) as libpq does.
/// An unquoted space or an unescaped quote ends a password early, and the rest of it reads as
/// more pairs: nothing after a password is quoted in messages.
pub(super) fn parse_keywords(input: &str) -> Result<Vec<Param>> {
    let mut params = Vec::new();
    let mut quotable = true;
    let mut chars = input.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(params);
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(Error::invalid(format!(
                "malformed connection string: expected \"=\" after {}",
                shown_word(&key, quotable)
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
                            "malformed connection string: the quoted value of {} is never closed",
                            shown_word(&key, quotable)
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
        let is_password = key == "password";
        params.push(Param::new(key, value, quotable && !is_password));
        quotable &= !is_password;
    }
}
