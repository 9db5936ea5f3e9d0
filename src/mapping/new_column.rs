//! Choosing the type of a column we create: the Postgres type of a remote column made for a
//! local one (export), and the SQLite declared type of a local column made for a remote one
//! (import), each chosen so that values and storage classes come back as they were.

use super::{PgType, Profile};

/// SQLite's type affinity of a declared type (https://sqlite.org/datatype3.html, 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affinity {
    Integer,
    Text,
    Blob,
    Real,
    Numeric,
}

pub fn affinity(decl_type: &str) -> Affinity {
    let t = decl_type.to_ascii_uppercase();
    if t.contains("INT") {
        Affinity::Integer
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        Affinity::Text
    } else if t.contains("BLOB") || t.is_empty() {
        Affinity::Blob
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        Affinity::Real
    } else {
        Affinity::Numeric
    }
}

/// Whether choosing a type for `decl_type` needs to look at the values.
pub fn needs_profile(decl_type: &str) -> bool {
    matches!(affinity(decl_type), Affinity::Blob | Affinity::Numeric)
        && !is_blob_decl(decl_type)
        && declared_decimal(decl_type).is_none()
}

/// The `numeric` type a declared `NUMERIC` or `DECIMAL` asks for: with the declared precision
/// and scale when Postgres can hold them (`DECIMAL(10,2)` -> `numeric(10,2)`), unconstrained
/// otherwise. `None` for every other declared type.
pub fn declared_decimal(decl_type: &str) -> Option<PgType> {
    let decl = decl_type.trim().to_ascii_uppercase();
    let (name, modifier) = match decl.split_once('(') {
        Some((name, rest)) => (name.trim(), rest.split_once(')').map(|(m, _)| m)),
        None => (decl.split_whitespace().next().unwrap_or(""), None),
    };
    if !matches!(name, "NUMERIC" | "DECIMAL") {
        return None;
    }
    let limits = modifier.and_then(|m| {
        let mut parts = m.split(',').map(|p| p.trim().parse::<u32>().ok());
        let precision = parts.next()??;
        let scale = parts.next().unwrap_or(Some(0))?;
        // Postgres's limits: 1..=1000 digits, scale within them.
        ((1..=1000).contains(&precision) && scale <= precision && parts.next().is_none())
            .then_some((precision, scale))
    });
    Some(PgType::Numeric(limits))
}

fn is_blob_decl(decl_type: &str) -> bool {
    decl_type.to_ascii_uppercase().contains("BLOB")
}

/// The Postgres type for a column of a table we create, so that every value comes back with
/// its value and storage class. `Err` explains why no type is lossless for this column.
///
/// A declared `NUMERIC`/`DECIMAL` is always `numeric`, whatever it holds today: SQLite stores
/// `18.00` there as the integer 18 and `19.50` as the real 19.5, so a money column holding only
/// whole numbers now holds a real tomorrow, and `numeric` keeps both exactly. For `DECIMAL(p,s)`
/// the caller keeps `numeric(p,s)` only when every value fits it (`Profile::numbers_fit`).
pub fn type_for_new_column(decl_type: &str, profile: Option<&Profile>) -> Result<PgType, String> {
    match affinity(decl_type) {
        Affinity::Integer => return Ok(PgType::BigInt),
        Affinity::Text => return Ok(PgType::Text),
        Affinity::Real => return Ok(PgType::Double),
        _ if is_blob_decl(decl_type) => return Ok(PgType::Bytea),
        _ => {}
    }
    if let Some(numeric) = declared_decimal(decl_type) {
        return Ok(numeric);
    }
    let p = profile.copied().unwrap_or_default();
    let decl = decl_type.trim().to_ascii_uppercase();
    let only = |integer, real, text, blob| {
        (p.integer, p.real, p.text, p.blob) == (integer, real, text, blob)
    };
    if decl.starts_with("BOOL") && only(true, false, false, false) && p.zero_one {
        return Ok(PgType::Boolean);
    }
    if decl == "DATE" && only(false, false, true, false) && p.canonical_dates {
        return Ok(PgType::Date);
    }
    if (decl.starts_with("DATETIME") || decl.starts_with("TIMESTAMP"))
        && only(false, false, true, false)
        && p.canonical_datetimes
    {
        return Ok(PgType::Timestamp(Some(0)));
    }
    match p.classes().as_slice() {
        [] | ["text"] => Ok(PgType::Text),
        ["integer"] => Ok(PgType::BigInt),
        ["real"] => Ok(PgType::Double),
        // NUMERIC affinity stores whole reals as integers, so an import into a NUMERIC column
        // gives back the same split; an untyped column keeps whole reals, which would not.
        ["integer", "real"] if affinity(decl_type) == Affinity::Numeric => {
            Ok(PgType::Numeric(None))
        }
        ["blob"] => Ok(PgType::Bytea),
        several => Err(format!(
            "holds {} values, and no one Postgres type keeps them all as they are: declare the \
             column's type in SQLite, or name one in the column_types option",
            several.join(" and ")
        )),
    }
}

/// The declared type of a local column that import creates for a remote one, chosen so that
/// exporting it again gives back the same remote type. `numeric` becomes a NUMERIC column, where
/// SQLite keeps whole values as integers and the others as reals, as it did before the export.
pub fn sqlite_type_for(spelling: &str) -> String {
    match PgType::parse(spelling) {
        Some(PgType::SmallInt | PgType::Integer | PgType::BigInt) => "INTEGER".into(),
        Some(PgType::Real | PgType::Double) => "REAL".into(),
        Some(PgType::Boolean) => "BOOLEAN".into(),
        Some(PgType::Bytea) => "BLOB".into(),
        Some(PgType::Date) => "DATE".into(),
        Some(PgType::Timestamp(Some(0))) => "DATETIME".into(),
        Some(PgType::Numeric(None)) => "NUMERIC".into(),
        Some(PgType::Numeric(Some((p, s)))) => format!("NUMERIC({p},{s})"),
        _ => "TEXT".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_follows_sqlite() {
        assert_eq!(affinity("INTEGER"), Affinity::Integer);
        assert_eq!(affinity("BIGINT UNSIGNED"), Affinity::Integer);
        assert_eq!(affinity("VARCHAR(100)"), Affinity::Text);
        assert_eq!(affinity(""), Affinity::Blob);
        assert_eq!(affinity("DOUBLE PRECISION"), Affinity::Real);
        assert_eq!(affinity("DECIMAL(10,2)"), Affinity::Numeric);
        assert_eq!(affinity("BOOLEAN"), Affinity::Numeric);
        // "POINT" contains "INT": SQLite's rule, not ours.
        assert_eq!(affinity("POINT"), Affinity::Integer);
    }

    #[test]
    fn new_column_types_keep_values_and_storage_classes() {
        let p = |integer, real, text, blob| Profile {
            integer,
            real,
            text,
            blob,
            zero_one: true,
            canonical_dates: true,
            canonical_datetimes: true,
        };
        assert_eq!(type_for_new_column("INTEGER", None), Ok(PgType::BigInt));
        assert_eq!(type_for_new_column("VARCHAR(100)", None), Ok(PgType::Text));
        assert_eq!(type_for_new_column("REAL", None), Ok(PgType::Double));
        assert_eq!(type_for_new_column("BLOB", None), Ok(PgType::Bytea));
        let bools = p(true, false, false, false);
        assert_eq!(
            type_for_new_column("BOOLEAN", Some(&bools)),
            Ok(PgType::Boolean)
        );
        let not_bool = Profile {
            zero_one: false,
            ..bools
        };
        assert_eq!(
            type_for_new_column("BOOLEAN", Some(&not_bool)),
            Ok(PgType::BigInt)
        );
        let texts = p(false, false, true, false);
        assert_eq!(type_for_new_column("DATE", Some(&texts)), Ok(PgType::Date));
        assert_eq!(
            type_for_new_column("DATETIME", Some(&texts)),
            Ok(PgType::Timestamp(Some(0)))
        );
        let loose = Profile {
            canonical_datetimes: false,
            ..texts
        };
        assert_eq!(
            type_for_new_column("DATETIME", Some(&loose)),
            Ok(PgType::Text)
        );
        assert_eq!(
            type_for_new_column("", Some(&p(false, true, false, false))),
            Ok(PgType::Double)
        );
        assert_eq!(
            type_for_new_column("", Some(&Profile::default())),
            Ok(PgType::Text)
        );
        let mixed = type_for_new_column("", Some(&p(true, false, true, false))).unwrap_err();
        assert!(mixed.contains("integer and text"), "{mixed}");
        let money = p(true, true, false, false);
        assert_eq!(
            type_for_new_column("MONEY", Some(&money)),
            Ok(PgType::Numeric(None))
        );
        assert!(type_for_new_column("", Some(&money)).is_err());
    }

    #[test]
    fn declared_decimals_are_numeric_whatever_they_hold() {
        for (decl, expected) in [
            ("NUMERIC", Some(PgType::Numeric(None))),
            ("decimal", Some(PgType::Numeric(None))),
            ("DECIMAL(10,2)", Some(PgType::Numeric(Some((10, 2))))),
            ("NUMERIC(10, 2)", Some(PgType::Numeric(Some((10, 2))))),
            ("DECIMAL(5)", Some(PgType::Numeric(Some((5, 0))))),
            (
                "DECIMAL(10,2) UNSIGNED",
                Some(PgType::Numeric(Some((10, 2)))),
            ),
            ("NUMERIC NOT NULL", Some(PgType::Numeric(None))),
            // Beyond Postgres's limits: unconstrained, which keeps every value.
            ("DECIMAL(2000,2)", Some(PgType::Numeric(None))),
            ("DECIMAL(2,5)", Some(PgType::Numeric(None))),
            ("DECIMAL(x)", Some(PgType::Numeric(None))),
            ("MONEY", None),
            ("BOOLEAN", None),
            ("NUMERICAL", None),
        ] {
            assert_eq!(declared_decimal(decl), expected, "{decl}");
        }
        let whole = Profile {
            integer: true,
            ..Profile::default()
        };
        // Whole numbers today do not make it bigint: the first 19.5 would not fit.
        assert_eq!(
            type_for_new_column("DECIMAL(10,2)", Some(&whole)),
            Ok(PgType::Numeric(Some((10, 2))))
        );
        assert_eq!(
            type_for_new_column("NUMERIC", None),
            Ok(PgType::Numeric(None))
        );
        assert!(!needs_profile("DECIMAL(10,2)"));
        assert!(needs_profile("MONEY"));
    }

    #[test]
    fn remote_types_get_declared_types_that_export_back_the_same() {
        assert_eq!(
            sqlite_type_for("timestamp(0) without time zone"),
            "DATETIME"
        );
        assert_eq!(sqlite_type_for("jsonb"), "TEXT");
        assert_eq!(sqlite_type_for("numeric"), "NUMERIC");
        assert_eq!(sqlite_type_for("numeric(10,2)"), "NUMERIC(10,2)");
        for spelling in ["numeric", "numeric(10,2)", "bigint", "bytea"] {
            let declared = sqlite_type_for(spelling);
            let back = type_for_new_column(&declared, None).unwrap();
            assert_eq!(Some(back), PgType::parse(spelling), "{spelling}");
        }
    }
}
