//! An argument given as a SQL value, read as an integer by the crate's one rule
//! ([`crate::integer`]: `1`, `1.0`, `'1'` alike), and how a refused value is shown.

use super::api::Value;
use crate::{integer, shown};

/// The integer `value` stands for exactly, if it stands for one (NULL and blobs never do).
pub fn exact_integer(value: Value) -> Option<i64> {
    match value {
        Value::Integer(i) => Some(i),
        Value::Real(r) => integer::from_real(r),
        Value::Text(bytes) => integer::from_text(bytes),
        Value::Null | Value::Blob(_) => None,
    }
}

/// `value` as an error message shows it: a number as written, text quoted and cut (see
/// [`crate::shown`]).
pub fn shown(value: Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::Integer(i) => i.to_string(),
        // Debug writes 1e300 rather than 301 digits, and keeps the ".0" of 2.0.
        Value::Real(r) => format!("{r:?}"),
        Value::Text(bytes) => shown::quoted(&String::from_utf8_lossy(bytes), '\''),
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
    fn refused_values_are_shown_as_given_and_long_text_is_cut() {
        assert_eq!(shown(Value::Real(1.5)), "1.5");
        assert_eq!(shown(Value::Real(1e300)), "1e300");
        assert_eq!(shown(Value::Real(f64::INFINITY)), "inf");
        assert_eq!(shown(text("it's")), "'it''s'");
        assert_eq!(shown(Value::Null), "NULL");
        assert_eq!(shown(Value::Blob(b"x")), "a blob");
        assert_eq!(
            shown(text("postgresql://u:secret@localhost/db")),
            "a connection string (not shown)"
        );
        let long = "x".repeat(150);
        assert_eq!(
            shown(text(&long)),
            format!("'{}…' (150 characters)", "x".repeat(100))
        );
    }
}
