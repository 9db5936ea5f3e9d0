//! Postgres values (binary COPY fields) -> the SQLite values an import stores, or the reason a
//! value cannot go into a local column unchanged.

use super::{Affinity, PgType};
use crate::sqlite::Value;

/// How a remote column is read back into SQLite. Types with a lossless SQLite form are read in
/// binary; every other type is read as Postgres's canonical text (`::text`, with the session's
/// TimeZone UTC, DateStyle ISO and IntervalStyle iso_8601).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Bool,
    Bytea,
    /// Text, or any other type cast to text.
    Text,
    /// `numeric`, as text: exact, and checked when it goes into a REAL column.
    Numeric,
}

impl Incoming {
    /// The reading for a remote column of type `spelling` (`format_type()`), and whether the
    /// column is selected as `::text`.
    pub fn of(spelling: &str) -> (Incoming, bool) {
        match PgType::parse(spelling) {
            Some(PgType::SmallInt) => (Incoming::Int2, false),
            Some(PgType::Integer) => (Incoming::Int4, false),
            Some(PgType::BigInt) => (Incoming::Int8, false),
            Some(PgType::Real) => (Incoming::Float4, false),
            Some(PgType::Double) => (Incoming::Float8, false),
            Some(PgType::Boolean) => (Incoming::Bool, false),
            Some(PgType::Bytea) => (Incoming::Bytea, false),
            Some(PgType::Text | PgType::Varchar(_)) => (Incoming::Text, false),
            Some(PgType::Numeric(_)) => (Incoming::Numeric, true),
            _ => (Incoming::Text, true),
        }
    }

    /// Decodes one binary COPY field into the value SQLite will store; `Err` says why the value
    /// cannot go into a column of `affinity` unchanged.
    pub fn decode(self, bytes: &[u8], affinity: Affinity) -> Result<Value<'_>, String> {
        let wrong = || "the server sent a field of an unexpected size".to_string();
        let value = match self {
            Incoming::Int2 => {
                Value::Integer(i16::from_be_bytes(bytes.try_into().map_err(|_| wrong())?).into())
            }
            Incoming::Int4 => {
                Value::Integer(i32::from_be_bytes(bytes.try_into().map_err(|_| wrong())?).into())
            }
            Incoming::Int8 => {
                Value::Integer(i64::from_be_bytes(bytes.try_into().map_err(|_| wrong())?))
            }
            Incoming::Float4 => {
                Value::Real(f32::from_be_bytes(bytes.try_into().map_err(|_| wrong())?).into())
            }
            Incoming::Float8 => {
                Value::Real(f64::from_be_bytes(bytes.try_into().map_err(|_| wrong())?))
            }
            Incoming::Bool => {
                Value::Integer(i64::from(bytes.first().copied().ok_or_else(wrong)? != 0))
            }
            Incoming::Bytea => Value::Blob(bytes),
            Incoming::Numeric if affinity != Affinity::Text => {
                let text = std::str::from_utf8(bytes).map_err(|_| wrong())?;
                return decimal_value(text, affinity);
            }
            Incoming::Text | Incoming::Numeric => Value::Text(bytes),
        };
        if let (Affinity::Real, Value::Integer(i)) = (affinity, value) {
            if i.unsigned_abs() > 1 << 53 {
                return Err(format!("integer {i} would lose digits in a REAL column"));
            }
        }
        Ok(value)
    }
}

/// A `numeric` as the SQLite value that holds it exactly, as SQLite's own NUMERIC affinity
/// would store its text: a whole number in int64's range as an integer (`18.00` -> 18), any
/// other as a real when the real is the same number (`19.50` -> 19.5). A REAL column takes
/// whole numbers as reals too. A number no SQLite value holds exactly (more digits than a real
/// keeps, NaN) is `Err`, never rounded.
fn decimal_value(text: &str, affinity: Affinity) -> Result<Value<'static>, String> {
    if let Some(whole) = whole_number(text) {
        if let Ok(i) = whole.parse::<i64>() {
            if affinity != Affinity::Real || i.unsigned_abs() <= 1 << 53 {
                return Ok(if affinity == Affinity::Real {
                    Value::Real(i as f64)
                } else {
                    Value::Integer(i)
                });
            }
        }
    }
    match text {
        "Infinity" => return Ok(Value::Real(f64::INFINITY)),
        "-Infinity" => return Ok(Value::Real(f64::NEG_INFINITY)),
        _ => {}
    }
    if decimal_is_exact_double(text) {
        if let Ok(real) = text.parse() {
            return Ok(Value::Real(real));
        }
    }
    Err(format!(
        "numeric {text} has more digits than a REAL keeps, so SQLite has no value that holds \
         it exactly"
    ))
}

/// The digits of a decimal with no fraction (`-18.00` -> `-18`); `None` when it has one.
fn whole_number(text: &str) -> Option<&str> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = whole.strip_prefix('-').unwrap_or(whole);
    (!digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b == b'0'))
    .then_some(whole)
}

/// Whether SQLite's REAL affinity keeps the decimal `text` exactly (it converts it to the nearest
/// double): true when the double's shortest rendering is the same number.
fn decimal_is_exact_double(text: &str) -> bool {
    fn normal(s: &str) -> String {
        let s = s.trim_start_matches('+');
        let (sign, digits) = s.strip_prefix('-').map_or(("", s), |d| ("-", d));
        let digits = if digits.contains('.') {
            digits.trim_end_matches('0').trim_end_matches('.')
        } else {
            digits
        };
        let digits = digits.trim_start_matches('0');
        let digits = if digits.is_empty() || digits.starts_with('.') {
            format!("0{digits}")
        } else {
            digits.to_string()
        };
        if digits == "0" {
            digits
        } else {
            format!("{sign}{digits}")
        }
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => normal(text) == normal(&value.to_string()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_values_come_back_with_their_storage_class() {
        let (int8, cast) = Incoming::of("bigint");
        assert!(!cast);
        assert_eq!(
            int8.decode(&i64::MIN.to_be_bytes(), Affinity::Integer),
            Ok(Value::Integer(i64::MIN))
        );
        let bits = (-0.0f64).to_be_bytes();
        assert_eq!(
            Incoming::Float8
                .decode(&bits, Affinity::Blob)
                .map(|v| match v {
                    Value::Real(r) => r.to_bits(),
                    _ => 0,
                }),
            Ok((-0.0f64).to_bits())
        );
        assert_eq!(
            Incoming::Bool.decode(&[1], Affinity::Numeric),
            Ok(Value::Integer(1))
        );
        assert_eq!(
            Incoming::of("timestamp with time zone"),
            (Incoming::Text, true)
        );
        assert_eq!(Incoming::of("numeric(10,2)"), (Incoming::Numeric, true));
        assert_eq!(Incoming::of("uuid"), (Incoming::Text, true));
        assert_eq!(
            Incoming::Numeric.decode(b"12.50", Affinity::Real),
            Ok(Value::Real(12.5))
        );
        assert_eq!(
            Incoming::Numeric.decode(b"0.1", Affinity::Real),
            Ok(Value::Real(0.1))
        );
        let long = Incoming::Numeric
            .decode(b"1234567890.123456789", Affinity::Real)
            .unwrap_err();
        assert!(long.contains("more digits than a REAL keeps"), "{long}");
        assert!(Incoming::Numeric
            .decode(b"1234567890.123456789", Affinity::Text)
            .is_ok());
        assert!(Incoming::Int8
            .decode(&i64::MAX.to_be_bytes(), Affinity::Real)
            .is_err());
        assert!(Incoming::Int4.decode(&[0, 1], Affinity::Integer).is_err());
    }

    #[test]
    fn numerics_come_back_as_sqlite_would_store_their_text() {
        for (text, affinity, expected) in [
            ("18.00", Affinity::Numeric, Value::Integer(18)),
            ("19.50", Affinity::Numeric, Value::Real(19.5)),
            ("0", Affinity::Numeric, Value::Integer(0)),
            ("-0.00", Affinity::Numeric, Value::Integer(0)),
            ("-7", Affinity::Integer, Value::Integer(-7)),
            ("0.1", Affinity::Blob, Value::Real(0.1)),
            (
                "9223372036854775807",
                Affinity::Numeric,
                Value::Integer(i64::MAX),
            ),
            // Beyond int64: a real, when the real is that very number.
            (
                "100000000000000000000",
                Affinity::Numeric,
                Value::Real(1e20),
            ),
            ("18.00", Affinity::Real, Value::Real(18.0)),
            ("Infinity", Affinity::Numeric, Value::Real(f64::INFINITY)),
            ("18.00", Affinity::Text, Value::Text(b"18.00")),
        ] {
            assert_eq!(
                Incoming::Numeric.decode(text.as_bytes(), affinity),
                Ok(expected),
                "{text} {affinity:?}"
            );
        }
        for text in ["NaN", "9223372036854775809", "0.1000000000000000000001"] {
            let problem = Incoming::Numeric
                .decode(text.as_bytes(), Affinity::Numeric)
                .unwrap_err();
            assert!(
                problem.contains("more digits than a REAL keeps"),
                "{problem}"
            );
        }
    }
}
