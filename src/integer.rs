//! The one rule by which a value a host gives counts as an integer, for SQL arguments and JSON
//! option values alike.
//!
//! Hosts do not always send integers as integers: JavaScript numbers arrive as REAL (`1.0`),
//! command-line and HTTP parameters as text (`'1'`), and options JSON built from them carries
//! `1.0` or `"1"`. So an integer is any value that stands for one integer exactly, as
//! `CAST(x AS INTEGER)` would give it without loss: an integer; a number with no fractional
//! part within the 64-bit range; text that, between optional spaces, is such a number (`1`,
//! ` 1 `, `+1`, `1.0`, `1e3`). Everything else is refused: `1.5`, `abc`, `1abc`, `1e300`,
//! infinities, and (in JSON) `true`, `null`, arrays and objects.

/// `r` as an integer when it has no fractional part and fits in 64 bits.
pub fn from_real(r: f64) -> Option<i64> {
    // 2^63, exact as an f64 (i64::MAX is not: it rounds up to 2^63).
    const LIMIT: f64 = -(i64::MIN as f64);
    (r.is_finite() && r.fract() == 0.0 && (-LIMIT..LIMIT).contains(&r)).then_some(r as i64)
}

/// The integer `bytes` (text as SQLite holds it) spells exactly, if it spells one.
pub fn from_text(bytes: &[u8]) -> Option<i64> {
    // SQLite's own blanks, as it skips them around a number.
    let text = std::str::from_utf8(bytes)
        .ok()?
        .trim_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    if let Ok(i) = text.parse::<i64>() {
        return Some(i);
    }
    // Rust's float syntax also takes "inf" and "NaN"; a decimal number has none of that.
    let decimal = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    decimal
        .then(|| text.parse::<f64>().ok())
        .flatten()
        .and_then(from_real)
}

/// The integer a JSON value stands for exactly: a number or a string, by the rules above.
pub fn from_json(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(from_real)),
        serde_json::Value::String(s) => from_text(s.as_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_numbers_and_strings_follow_the_sql_rule() {
        for (given, expected) in [
            (json!(1), 1),
            (json!(1.0), 1),
            (json!(-0.0), 0),
            (json!("1"), 1),
            (json!(" 100.0 "), 100),
            (json!("1e3"), 1000),
            (json!(i64::MIN), i64::MIN),
        ] {
            assert_eq!(from_json(&given), Some(expected), "{given}");
        }
        for given in [
            json!(1.5),
            json!(1e300),
            json!(u64::MAX),
            json!("1.5"),
            json!("abc"),
            json!(""),
            json!(true),
            json!(null),
            json!([1]),
            json!({"a": 1}),
        ] {
            assert_eq!(from_json(&given), None, "{given}");
        }
    }
}
