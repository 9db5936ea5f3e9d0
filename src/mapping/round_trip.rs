//! Whether a local value comes back as it was: exported into a Postgres type, then imported into
//! the local column it came from. The encoder says which values a type can hold; this says which
//! of those the import would give back in another storage class (text from `bytea` comes back a
//! blob, an integer in an untyped column sent to `text` comes back text) or as other text (an
//! upper-case UUID in lower case, a zoned time in UTC, JSON with its keys reordered), so that no
//! export changes a value without the dry run saying so. And, for a value that cannot go, the
//! type that would keep it, for the problem's message.

use super::datetime::DateTime;
use super::decimal::Decimal;
use super::encode::parse_uuid;
use super::{encode, jsonb_text, Affinity, PgType};
use crate::shown;
use crate::sqlite::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Integer,
    Real,
    Text,
    Blob,
}

impl Class {
    fn of(value: Value) -> Option<Class> {
        match value {
            Value::Null => None,
            Value::Integer(_) => Some(Class::Integer),
            Value::Real(_) => Some(Class::Real),
            Value::Text(_) => Some(Class::Text),
            Value::Blob(_) => Some(Class::Blob),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Class::Integer => "an integer",
            Class::Real => "a real",
            Class::Text => "text",
            Class::Blob => "a blob",
        }
    }
}

/// `Ok` when `value`, sent to a remote column of type `ty` (which takes it), comes back as it
/// was, storage class and content, when imported into a local column of `affinity` (the one it
/// left). `Err` says what it would come back as.
pub fn comes_back(ty: PgType, value: Value, affinity: Affinity) -> Result<(), String> {
    let Some(class) = Class::of(value) else {
        return Ok(());
    };
    let back = class_back(ty, value, class, affinity);
    if back == class {
        return text_comes_back(ty, value, affinity);
    }
    let column = match affinity {
        Affinity::Blob => "an untyped or BLOB".to_string(),
        other => format!("a {}", format!("{other:?}").to_ascii_uppercase()),
    };
    Err(format!(
        "{} would come back from {} as {} in {column} column",
        class.name(),
        ty.sql(),
        back.name()
    ))
}

/// `Ok` unless `value` is text that Postgres keeps as a value of `ty` and gives back written
/// another way.
fn text_comes_back(ty: PgType, value: Value, affinity: Affinity) -> Result<(), String> {
    let Value::Text(bytes) = value else {
        return Ok(());
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(());
    };
    match text_back(ty, text, affinity) {
        Some(back) if back != text => Err(format!(
            "text {} would come back from {} as {}",
            shown::quoted(text, '\''),
            ty.sql(),
            shown::quoted(&back, '\'')
        )),
        _ => Ok(()),
    }
}

/// The text the import gives back for `text` stored in `ty`, for the types that store a value
/// rather than the text; `None` for the others.
fn text_back(ty: PgType, text: &str, affinity: Affinity) -> Option<String> {
    match ty {
        PgType::Uuid => {
            let hex: String = parse_uuid(text)?
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            Some(format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            ))
        }
        PgType::Jsonb => jsonb_text::postgres_text(text),
        // Into any other affinity, numeric text comes back as a number (a class change).
        PgType::Numeric(limits) if affinity == Affinity::Text => {
            Some(Decimal::parse(text)?.postgres_text(limits.map(|(_, scale)| scale)))
        }
        PgType::Timestamp(_) => Some(DateTime::parse(text).ok()?.timestamp_text()),
        PgType::Timestamptz(_) => Some(DateTime::parse(text).ok()?.timestamptz_text()),
        _ => None,
    }
}

/// The class the import gives back for `value` (of `class`) read from `ty` into `affinity`,
/// after SQLite applies the affinity. Some combinations cannot occur (SQLite's affinity would
/// have converted the local value already); they count as coming back unchanged.
fn class_back(ty: PgType, value: Value, class: Class, affinity: Affinity) -> Class {
    let whole = matches!(value, Value::Real(r) if r.fract() == 0.0);
    match ty {
        PgType::Bytea => Class::Blob,
        // Read as integers: back into a REAL column as reals; an untyped column keeps them.
        PgType::SmallInt | PgType::Integer | PgType::BigInt | PgType::Boolean => match affinity {
            _ if class == Class::Text => Class::Integer,
            Affinity::Real => Class::Real,
            Affinity::Blob => Class::Integer,
            _ => class,
        },
        // Read as reals: NUMERIC and INTEGER columns make whole ones integers again.
        PgType::Real | PgType::Double => match affinity {
            Affinity::Blob => Class::Real,
            _ => class,
        },
        // Read as exact text into TEXT columns, as integers and reals into the others.
        PgType::Numeric(_) => match (affinity, class) {
            (Affinity::Text, _) => class,
            (_, Class::Text) => Class::Real,
            (Affinity::Blob, Class::Real) if whole => Class::Integer,
            _ => class,
        },
        // Read as text, which SQLite's NUMERIC, INTEGER and REAL affinities turn back into the
        // number it was; an untyped column keeps it text.
        _ => match (affinity, class) {
            (_, Class::Blob) => Class::Text,
            (Affinity::Blob, _) => Class::Text,
            _ => class,
        },
    }
}

/// A type that would keep `value` where `ty` cannot (neither encodes it nor gives back its
/// class into `affinity`), for the message that names the fix; `None` when no type would.
pub fn type_that_keeps(ty: PgType, value: Value, affinity: Affinity) -> Option<PgType> {
    let candidate = match value {
        Value::Null => return None,
        Value::Integer(_) if matches!(ty, PgType::Numeric(_) | PgType::Double | PgType::Real) => {
            PgType::Numeric(None)
        }
        Value::Integer(_) => PgType::BigInt,
        Value::Real(r) if !r.is_finite() || (r.fract() == 0.0 && affinity == Affinity::Blob) => {
            PgType::Double
        }
        Value::Real(_) => PgType::Numeric(None),
        Value::Text(_) => PgType::Text,
        Value::Blob(_) => PgType::Bytea,
    };
    let mut scratch = Vec::new();
    let keeps = candidate != ty
        && comes_back(candidate, value, affinity).is_ok()
        && encode(candidate, value, &mut scratch).is_ok();
    keeps.then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_that_would_change_are_named() {
        for (ty, value, affinity, expected) in [
            (
                PgType::Bytea,
                Value::Text(b"file.txt"),
                Affinity::Blob,
                "text would come back from bytea as a blob in an untyped or BLOB column",
            ),
            (
                PgType::Text,
                Value::Integer(12),
                Affinity::Blob,
                "an integer would come back from text as text",
            ),
            (
                PgType::Double,
                Value::Integer(3),
                Affinity::Blob,
                "an integer would come back from double precision as a real",
            ),
            (
                PgType::BigInt,
                Value::Real(3.0),
                Affinity::Blob,
                "a real would come back from bigint as an integer",
            ),
            (
                PgType::Numeric(None),
                Value::Real(3.0),
                Affinity::Blob,
                "as an integer",
            ),
            (
                PgType::Numeric(None),
                Value::Text(b"12.5"),
                Affinity::Blob,
                "text would come back from numeric as a real",
            ),
            (
                PgType::Boolean,
                Value::Text(b"true"),
                Affinity::Text,
                "text would come back from boolean as an integer in a TEXT column",
            ),
            (
                PgType::Uuid,
                Value::Blob(&[7; 16]),
                Affinity::Blob,
                "a blob would come back from uuid as text",
            ),
        ] {
            let message = comes_back(ty, value, affinity).unwrap_err();
            assert!(message.contains(expected), "{ty:?} {value:?}: {message}");
        }
    }

    #[test]
    fn texts_postgres_writes_another_way_are_named() {
        for (ty, text, affinity, expected) in [
            (
                PgType::Uuid,
                "123E4567E89B12D3A456426614174000",
                Affinity::Text,
                "would come back from uuid as '123e4567-e89b-12d3-a456-426614174000'",
            ),
            (
                PgType::Timestamptz(None),
                "2024-01-01T10:00+02:00",
                Affinity::Blob,
                "as '2024-01-01 08:00:00+00'",
            ),
            (
                PgType::Timestamptz(None),
                "2024-01-01 10:00:00",
                Affinity::Text,
                "as '2024-01-01 10:00:00+00'",
            ),
            (
                PgType::Timestamp(None),
                "2024-01-01 10:00:00.500",
                Affinity::Numeric,
                "as '2024-01-01 10:00:00.5'",
            ),
            (
                PgType::Jsonb,
                r#"{"b":1,"a":2}"#,
                Affinity::Text,
                r#"would come back from jsonb as '{"a": 2, "b": 1}'"#,
            ),
            (
                PgType::Numeric(Some((10, 2))),
                "19.5",
                Affinity::Text,
                "text '19.5' would come back from numeric(10,2) as '19.50'",
            ),
            (PgType::Numeric(None), "1e3", Affinity::Text, "as '1000'"),
        ] {
            let message = comes_back(ty, Value::Text(text.as_bytes()), affinity).unwrap_err();
            assert!(message.contains(expected), "{ty:?} {text}: {message}");
        }
        for (ty, text, affinity) in [
            (
                PgType::Uuid,
                "123e4567-e89b-12d3-a456-426614174000",
                Affinity::Text,
            ),
            (
                PgType::Timestamptz(None),
                "2024-01-01 08:00:00+00",
                Affinity::Text,
            ),
            (
                PgType::Timestamp(Some(0)),
                "2024-01-01 08:00:00",
                Affinity::Blob,
            ),
            (PgType::Jsonb, r#"{"a": 2, "b": 1}"#, Affinity::Text),
            (PgType::Json, r#"{"b":1,"a":2}"#, Affinity::Text),
            (PgType::Numeric(Some((10, 2))), "19.50", Affinity::Text),
            (PgType::Date, "2024-02-29", Affinity::Text),
        ] {
            assert_eq!(
                comes_back(ty, Value::Text(text.as_bytes()), affinity),
                Ok(()),
                "{ty:?} {text}"
            );
        }
    }

    #[test]
    fn classes_that_come_back_pass() {
        for (ty, value, affinity) in [
            (PgType::Bytea, Value::Blob(b"x"), Affinity::Blob),
            (PgType::Numeric(None), Value::Integer(18), Affinity::Numeric),
            (
                PgType::Numeric(Some((10, 2))),
                Value::Real(19.5),
                Affinity::Numeric,
            ),
            (PgType::Numeric(None), Value::Real(19.5), Affinity::Blob),
            (PgType::Numeric(None), Value::Text(b"12.50"), Affinity::Text),
            (PgType::Text, Value::Integer(12), Affinity::Numeric),
            (PgType::Text, Value::Real(1.5), Affinity::Integer),
            (PgType::Double, Value::Integer(3), Affinity::Numeric),
            (PgType::BigInt, Value::Real(3.0), Affinity::Real),
            (PgType::Boolean, Value::Integer(1), Affinity::Numeric),
            (
                PgType::Timestamp(Some(0)),
                Value::Text(b"x"),
                Affinity::Numeric,
            ),
            (PgType::Text, Value::Null, Affinity::Blob),
        ] {
            assert_eq!(comes_back(ty, value, affinity), Ok(()), "{ty:?} {value:?}");
        }
    }

    #[test]
    fn the_fix_names_a_type_that_keeps_the_value() {
        for (ty, value, affinity, expected) in [
            (
                PgType::Bytea,
                Value::Text(b"a"),
                Affinity::Blob,
                Some(PgType::Text),
            ),
            (
                PgType::Numeric(None),
                Value::Text(b"n/a"),
                Affinity::Numeric,
                Some(PgType::Text),
            ),
            (
                PgType::Text,
                Value::Blob(b"a"),
                Affinity::Text,
                Some(PgType::Bytea),
            ),
            (
                PgType::BigInt,
                Value::Real(1.5),
                Affinity::Integer,
                Some(PgType::Numeric(None)),
            ),
            (
                PgType::Numeric(Some((10, 2))),
                Value::Real(1.234),
                Affinity::Numeric,
                Some(PgType::Numeric(None)),
            ),
            (
                PgType::Numeric(None),
                Value::Real(f64::INFINITY),
                Affinity::Numeric,
                Some(PgType::Double),
            ),
            (
                PgType::Numeric(None),
                Value::Real(3.0),
                Affinity::Blob,
                Some(PgType::Double),
            ),
            (
                PgType::Integer,
                Value::Integer(1 << 40),
                Affinity::Integer,
                Some(PgType::BigInt),
            ),
            // Text that Postgres text cannot hold, and that bytea would give back as a blob.
            (PgType::Text, Value::Text(b"a\0b"), Affinity::Text, None),
        ] {
            assert_eq!(
                type_that_keeps(ty, value, affinity),
                expected,
                "{ty:?} {value:?}"
            );
        }
    }
}
