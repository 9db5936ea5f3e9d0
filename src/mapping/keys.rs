//! Row keys as text, for problem reports.

use std::io::Write;

use crate::sqlite::Value;

/// Appends a plain text rendering of a value, for problem keys and logs.
pub fn describe_key_value(value: Value, out: &mut Vec<u8>) {
    let _ = match value {
        Value::Null => write!(out, "null"),
        Value::Integer(i) => write!(out, "{i}"),
        Value::Real(r) => write!(out, "{r}"),
        Value::Text(t) => write!(
            out,
            "{}",
            serde_json::Value::from(String::from_utf8_lossy(t))
        ),
        Value::Blob(b) => write!(
            out,
            "\"x'{}'\"",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ),
    };
}
