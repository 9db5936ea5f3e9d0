//! Whether a local value comes back as it was: exported into a Postgres type, then imported into
//! the local column it came from. The encoder says which values a type can hold; this says which
//! of those the import would give back in another storage class (text from `bytea` comes back a
//! blob, an integer in an untyped column sent to `text` comes back text), so that no export
//! changes a value's class without the dry run saying so. And, for a value that cannot go, the
//! type that would keep it, for the problem's message.

use super::{encode, Affinity, PgType};
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

/// `Ok` when `value`, sent to a remote column of type `ty`, comes back with its storage class
/// when imported into a local column of `affinity` (the one it left). `Err` says what it would
/// come back as.
pub fn comes_back(ty: PgType, value: Value, affinity: Affinity) -> Result<(), String> {
    let Some(class) = Class::of(value) else {
        return Ok(());
    };
    let back = class_back(ty, value, class, affinity);
    if back == class {
        return Ok(());
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
