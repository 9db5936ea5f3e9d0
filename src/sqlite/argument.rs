//! The one rule by which an argument given as a SQL value counts as an integer, shared by the
//! scalar functions and the table-valued ones, and how a refused value is shown.
//!
//! Hosts do not always bind integers as INTEGER: JavaScript numbers arrive as REAL (`1.0`),
//! command-line and HTTP parameters as text (`'1'`). So an integer argument takes any value that
//! stands for one integer exactly: an INTEGER; a REAL with no fractional part within the 64-bit
//! range; text that, between optional spaces, is such a number (`'1'`, `' 1 '`, `'+1'`, `'1.0'`,
//! `'1e3'`). Everything else is refused: `1.5`, `'1.5'`, `'abc'`, `'1abc'`, `1e300`, infinities,
//! NULL and blobs. Integers in JSON options follow the same rule: built in SQL with
//! `json_object` from bound values, they hold `1.0` or `"1"` where an integer is meant.

use super::api::Value;
use crate::sql_text::sql_literal;

/// How much of a refused text an error message shows.
const SHOWN_CHARS: usize = 100;

/// The integer `value` stands for exactly, if it stands for one.
pub fn exact_integer(value: Value) -> Option<i64> {
    match value {
        Value::Integer(i) => Some(i),
        Value::Real(r) => whole(r),
        Value::Text(bytes) => {
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
                .and_then(whole)
        }
        Value::Null | Value::Blob(_) => None,
    }
}

/// The integer the JSON `value` stands for exactly, by the rule of `exact_integer`.
pub fn json_integer(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(whole)),
        serde_json::Value::String(s) => exact_integer(Value::Text(s.as_bytes())),
        _ => None,
    }
}

/// `r` as an integer when it has no fractional part and fits in 64 bits.
fn whole(r: f64) -> Option<i64> {
    // 2^63, exact as an f64 (i64::MAX is not: it rounds up to 2^63).
    const LIMIT: f64 = -(i64::MIN as f64);
    (r.is_finite() && r.fract() == 0.0 && (-LIMIT..LIMIT).contains(&r)).then_some(r as i64)
}

/// `value` as an error message shows it: a number as written, text quoted and cut after
/// `SHOWN_CHARS` characters.
pub fn shown(value: Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::Integer(i) => i.to_string(),
        // Debug writes 1e300 rather than 301 digits, and keeps the ".0" of 2.0.
        Value::Real(r) => format!("{r:?}"),
        Value::Text(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            let length = text.chars().count();
            if length <= SHOWN_CHARS {
                sql_literal(&text)
            } else {
                let start: String = text.chars().take(SHOWN_CHARS).collect();
                format!("{}... ({length} characters)", sql_literal(&start))
            }
        }
        Value::Blob(_) => "a blob".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value<'_> {
        Value::Text(s.as_bytes())
    }

    #[test]
    fn values_that_stand_for_one_integer_exactly_are_integers() {
        assert_eq!(exact_integer(Value::Integer(-7)), Some(-7));
        assert_eq!(exact_integer(Value::Real(1.0)), Some(1));
        assert_eq!(exact_integer(Value::Real(-0.0)), Some(0));
        assert_eq!(exact_integer(Value::Real(i64::MIN as f64)), Some(i64::MIN));
        for (given, expected) in [
            ("1", 1),
            (" 1", 1),
            ("1 \n", 1),
            ("+1", 1),
            ("-12", -12),
            ("1.0", 1),
            ("1e3", 1000),
            ("9223372036854775807", i64::MAX),
        ] {
            assert_eq!(exact_integer(text(given)), Some(expected), "{given:?}");
        }
    }

    #[test]
    fn anything_lossy_or_not_a_number_is_refused() {
        for real in [
            1.5,
            1e300,
            -1e300,
            -(i64::MIN as f64),
            f64::INFINITY,
            f64::NAN,
        ] {
            assert_eq!(exact_integer(Value::Real(real)), None, "{real}");
        }
        for given in [
            "",
            " ",
            "1.5",
            "abc",
            "1abc",
            "1 2",
            "0x10",
            "inf",
            "NaN",
            "1e",
            "--1",
            "1e300",
            "9223372036854775808",
        ] {
            assert_eq!(exact_integer(text(given)), None, "{given:?}");
        }
        assert_eq!(exact_integer(Value::Text(b"\xff1")), None);
        assert_eq!(exact_integer(Value::Null), None);
        assert_eq!(exact_integer(Value::Blob(b"1")), None);
    }

    #[test]
    fn json_numbers_and_text_follow_the_same_rule() {
        use serde_json::json;
        for (given, expected) in [
            (json!(5), Some(5)),
            (json!(5.0), Some(5)),
            (json!("5"), Some(5)),
            (json!(-0.0), Some(0)),
            (json!(1.5), None),
            (json!(1e300), None),
            (json!(u64::MAX), None),
            (json!("1.5"), None),
            (json!(true), None),
            (json!(null), None),
            (json!([1]), None),
        ] {
            assert_eq!(json_integer(&given), expected, "{given}");
        }
    }

    #[test]
    fn refused_values_are_shown_as_given_and_long_text_is_cut() {
        assert_eq!(shown(Value::Real(1.5)), "1.5");
        assert_eq!(shown(Value::Real(1e300)), "1e300");
        assert_eq!(shown(Value::Real(f64::INFINITY)), "inf");
        assert_eq!(shown(text("it's")), "'it''s'");
        assert_eq!(shown(Value::Null), "NULL");
        assert_eq!(shown(Value::Blob(b"x")), "a blob");
        let long = "x".repeat(150);
        assert_eq!(
            shown(text(&long)),
            format!("'{}'... (150 characters)", "x".repeat(100))
        );
    }
}
